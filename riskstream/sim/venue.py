"""A second, independent market generator for detection benchmarks (pure: yields records).

Written apart from :mod:`riskstream.sim.market` (shared: only the :class:`Label` type and the
record classes) so that a detector tuned on one can be checked on the other. Where that
simulator has four similar large caps quoted at one or two ticks, this one lists names of very
different character (:data:`LISTINGS`): a $4 small cap with a wide spread and a thin tape, a
mid cap, a deep large cap, and a $600 name quoted tens of ticks wide. Each name's fair price
follows its own noise level with volatility bursts (twice the noise for a minute or two).

The firm's population, all trading on the lit book unless said otherwise:

- ``LP-A``, ``LP-B``: market makers quoting every name on both sides, re-quoting by cancel and
  new whenever the market moves (well over 95 % of their orders are cancelled), more often in a
  volatility burst;
- ``HFT-1``: small aggressive orders in quick round trips, flat within seconds;
- ``AM-1``, ``AM-2``: asset managers working parent orders in slices at 3-8 % of the tape, and
  icebergs (a small displayed slice refilled as it fills);
- ``DESK-1``: a hedger trading two names at once in sizes of very different lots;
- ``RET-01``..: retail, small market and limit orders, and stink bids resting 8-25 % away;
- the tape: other participants' prints at the touch, off-book block prints of many touches, and
  the closing cross at 16:00.

Abuse cases are injected every ``every_s`` by dedicated accounts, each written from the
enforcement record of its typology rather than from riskstream's rules, and labelled.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from riskstream.core.calendar import SessionCalendar
from riskstream.records import OrderEvent, OrderEventType, Print, Quote, Side
from riskstream.records.alerts import Category
from riskstream.records.codec import NS_PER_S
from riskstream.records.market_data import MarketEvent
from riskstream.sim.market import Label

NS = NS_PER_S
MS = 1_000_000
VENUE = "XVEN"
CLOSE = SessionCalendar.parse("16:00", "America/New_York")


@dataclass(frozen=True, slots=True)
class Listing:
    """What sets a name apart: its price, tick, usual spread, noise, book depth and tape."""

    symbol: str
    price: float
    tick: float
    spread_ticks: int
    noise_per_s: float
    """Standard deviation of the fair price's log return over one second, calm regime."""
    touch_shares: float
    """Typical displayed size at each touch."""
    tape_per_s: float
    """Prints per second from the rest of the market."""
    lot: int


LISTINGS = (
    Listing("PNYX", 4.10, 0.01, 5, 0.0009, 2_500, 0.8, 100),
    Listing("HARB", 38.40, 0.01, 2, 0.00035, 900, 2.0, 100),
    Listing("KEEL", 182.0, 0.01, 1, 0.00012, 4_000, 5.0, 100),
    Listing("SUMT", 612.0, 0.01, 30, 0.0002, 120, 1.2, 1),
)
LINKED_ACCOUNTS = ("WX-1", "WX-2")
"""One beneficial owner's two accounts (deploy/limits.venue.toml links them)."""
LIMITED_ACCOUNT = "LIM-9"
"""An account whose position limit (deploy/limits.venue.toml) the limit cases breach."""


@dataclass(slots=True)
class _Name:
    listing: Listing
    fair: float
    ts_ns: int
    burst_until_ns: int = 0
    drift_per_s: float = 0.0
    spread_ticks: int = 0
    bid: float = 0.0
    ask: float = 0.0
    bid_extra: float = 0.0
    """Size the firm's own orders add at the bid (spoofed or layered size shows in the book)."""
    ask_extra: float = 0.0


@dataclass(slots=True)
class _Resting:
    account: str
    symbol: str
    side: Side
    qty: float
    price: float
    at_touch: bool
    crossed: bool = False
    """The market moved through it once; what is left holds the price (a large order is
    not swept again and again by the same move)."""


@dataclass(order=True)
class _Due:
    ts_ns: int
    seq: int
    item: OrderEvent | MarketEvent | Callable[[int], object] = field(compare=False)


INJECTED = (
    Category.SPOOFING,
    Category.LAYERING,
    Category.WASH_TRADE,
    Category.MOMENTUM_IGNITION,
    Category.RAMPING,
    Category.MARKING_THE_CLOSE,
    Category.QUOTE_STUFFING,
    Category.FAT_FINGER,
    Category.LIMIT_BREACH,
    Category.MARKET_SHOCK,
)


class VenueSimulator:
    def __init__(
        self,
        seed: int,
        start_ns: int,
        typology: Category | None,
        cases: int,
        every_s: float,
        first_s: float = 90.0,
        retail_accounts: int = 24,
    ) -> None:
        self.rng = random.Random(seed)
        self.names = {
            lst.symbol: _Name(lst, lst.price * math.exp(self.rng.gauss(0, 0.05)), start_ns)
            for lst in LISTINGS
        }
        for name in self.names.values():
            self._requote(name)
        self.labels: list[Label] = []
        self.lit_volume: dict[str, float] = {}
        """Volume printed on the lit book per symbol so far (what an account's share is of)."""
        self._due: list[_Due] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._resting: dict[str, _Resting] = {}
        self._positions: dict[tuple[str, str], float] = {}
        self._retail = [f"RET-{i:02d}" for i in range(1, retail_accounts + 1)]
        self._lp_orders: dict[tuple[str, str, Side], str] = {}
        self._busy_until: dict[str, int] = {}
        self._am_side = {sym: self.rng.choice((Side.BUY, Side.SELL)) for sym in self.names}
        self.start_ns = start_ns
        for symbol in self.names:
            self._at(start_ns, partial(self._market_tick, symbol=symbol))
            self._at(start_ns + self._exp_ns(1.0), partial(self._tape, symbol=symbol))
        self._at(start_ns + self._exp_ns(0.4), self._retail_flow)
        self._at(start_ns + self._exp_ns(0.5), self._hft)
        self._at(start_ns + self._exp_ns(2.0), self._asset_manager)
        self._at(start_ns + self._exp_ns(6.0), self._hedger)
        self._at(start_ns + self._exp_ns(20.0), self._block_print)
        self._at(start_ns + self._exp_ns(90.0), self._volatility_burst)
        close_ns = CLOSE.next_close_ns(start_ns)
        self._at(close_ns, self._closing_cross)
        if typology is not None and cases > 0:
            inject = self._injector(typology)
            for k in range(cases):
                self._at(start_ns + int((first_s + k * every_s) * NS), inject)

    # -- plumbing ---------------------------------------------------------------------------
    def _at(self, ts_ns: int, item: OrderEvent | MarketEvent | Callable[[int], object]) -> None:
        heapq.heappush(self._due, _Due(ts_ns, next(self._seq), item))

    def _exp_ns(self, mean_s: float) -> int:
        return max(1, int(self.rng.expovariate(1.0 / mean_s) * NS))

    def _oid(self, account: str) -> str:
        return f"{account}-{next(self._ids):08d}"

    def events(self) -> Iterator[OrderEvent | MarketEvent]:
        while self._due:
            due = heapq.heappop(self._due)
            if callable(due.item):
                due.item(due.ts_ns)
            else:
                if isinstance(due.item, Print) and due.item.venue == VENUE:
                    self.lit_volume[due.item.symbol] = (
                        self.lit_volume.get(due.item.symbol, 0.0) + due.item.size
                    )
                yield due.item

    def _label(
        self, category: Category, account: str | None, symbol: str, oids: list[str], start: int, end: int
    ) -> None:
        self.labels.append(Label(category, account, symbol, tuple(oids), start, end))

    # -- the market ---------------------------------------------------------------------------
    def _walk(self, name: _Name, ts: int) -> None:
        dt_s = (ts - name.ts_ns) / NS
        if dt_s <= 0:
            return
        noise = name.listing.noise_per_s * (2.0 if ts < name.burst_until_ns else 1.0)
        name.fair *= math.exp(name.drift_per_s * dt_s + self.rng.gauss(0.0, noise * math.sqrt(dt_s)))
        name.ts_ns = ts

    def _requote(self, name: _Name) -> None:
        lst = name.listing
        wide = 2 if name.ts_ns < name.burst_until_ns else 1
        spread = max(1, round(lst.spread_ticks * wide * self.rng.uniform(0.7, 1.4)))
        name.spread_ticks = spread
        bid_ticks = math.floor(name.fair / lst.tick - spread / 2 + 0.5)
        name.bid = round(bid_ticks * lst.tick, 4)
        name.ask = round((bid_ticks + spread) * lst.tick, 4)

    def _quote(self, ts: int, name: _Name) -> None:
        lst = name.listing
        rng = self.rng
        bid_size = max(lst.lot, round(lst.touch_shares * rng.lognormvariate(0, 0.5) / lst.lot) * lst.lot)
        ask_size = max(lst.lot, round(lst.touch_shares * rng.lognormvariate(0, 0.5) / lst.lot) * lst.lot)
        self._at(
            ts,
            Quote(
                lst.symbol,
                VENUE,
                ts,
                name.bid,
                name.ask,
                bid_size + name.bid_extra,
                ask_size + name.ask_extra,
            ),
        )

    def _market_tick(self, ts: int, symbol: str) -> None:
        name = self.names[symbol]
        self._walk(name, ts)
        old = (name.bid, name.ask)
        self._requote(name)
        self._quote(ts, name)
        if (name.bid, name.ask) != old:
            # Makers pull their quotes before a sweep reaches them, mostly.
            self._market_makers(ts, name)
            self._fill_crossed(ts, name)
        elif self.rng.random() < 0.6:
            # Makers also re-size and refresh quotes on an unchanged touch.
            self._market_makers(ts, name)
        self._at(ts + self._exp_ns(0.25), lambda t: self._market_tick(t, symbol))

    def _tape(self, ts: int, symbol: str) -> None:
        """Another participant's trade at the touch; it may fill the firm's resting orders there."""
        name = self.names[symbol]
        lst = name.listing
        self._walk(name, ts)
        seller = self.rng.random() < 0.5
        px = name.bid if seller else name.ask
        size = max(lst.lot, round(lst.touch_shares * self.rng.uniform(0.05, 0.6) / lst.lot) * lst.lot)
        self._at(ts, Print(symbol, VENUE, ts, px, size))
        hit = Side.BUY if seller else Side.SELL
        for oid, order in list(self._resting.items()):
            # A re-sent order joins the back of the queue: a print reaches it only when it
            # takes most of the displayed size.
            taken = self.rng.random() < min(0.9, size / (lst.touch_shares + order.qty)) ** 2
            if order.symbol == symbol and order.side is hit and order.price == px and taken:
                self._fill(ts + MS, oid, min(order.qty, size))
        self._at(ts + self._exp_ns(1.0 / lst.tape_per_s), lambda t: self._tape(t, symbol))

    def _block_print(self, ts: int) -> None:
        """An off-book block of many touches, away from the quote: not the firm's, not abuse."""
        name = self.names[self.rng.choice(list(self.names))]
        lst = name.listing
        size = round(lst.touch_shares * self.rng.uniform(15, 60) / lst.lot) * lst.lot
        px = round(name.fair * (1 + self.rng.uniform(-0.004, 0.004)), 2)
        self._at(ts, Print(lst.symbol, "XOFF", ts, px, size))
        self._at(ts + self._exp_ns(25.0), self._block_print)

    def _volatility_burst(self, ts: int) -> None:
        name = self.names[self.rng.choice(list(self.names))]
        name.burst_until_ns = ts + int(self.rng.uniform(60, 150) * NS)
        self._at(ts + self._exp_ns(120.0), self._volatility_burst)

    def _closing_cross(self, ts: int) -> None:
        for name in self.names.values():
            lst = name.listing
            self._walk(name, ts)
            size = round(lst.touch_shares * self.rng.uniform(40, 120) / lst.lot) * lst.lot
            self._at(ts, Print(lst.symbol, VENUE, ts, round(name.fair, 2), size))

    # -- the firm's orders --------------------------------------------------------------------
    def _order(
        self,
        kind: OrderEventType,
        oid: str,
        account: str,
        symbol: str,
        side: Side,
        qty: float,
        price: float | None,
        ts: int,
        last: tuple[float, float] | None = None,
        counterparty: str | None = None,
    ) -> None:
        if last is not None:
            key = (account, symbol)
            self._positions[key] = self._positions.get(key, 0.0) + side.sign * last[0]
        self._at(
            ts,
            OrderEvent(
                kind,
                oid,
                account,
                f"T-{account}",
                symbol,
                side,
                qty,
                price,
                ts,
                last[0] if last else None,
                last[1] if last else None,
                counterparty,
            ),
        )

    def _rest(
        self,
        ts: int,
        account: str,
        symbol: str,
        side: Side,
        qty: float,
        price: float,
        *,
        show: bool = False,
        oid: str | None = None,
    ) -> str:
        """A limit order resting in the book; ``show``: its size shows in the quote at once."""
        name = self.names[symbol]
        oid = oid or self._oid(account)
        self._resting[oid] = _Resting(account, symbol, side, qty, price, show)
        self._order(OrderEventType.NEW, oid, account, symbol, side, qty, price, ts)
        if show:
            self._show(name, side, qty)
            self._quote(ts + MS // 2, name)
        return oid

    @staticmethod
    def _show(name: _Name, side: Side, qty: float) -> None:
        """Add (or, negative, take away) size the firm shows at ``side``'s touch."""
        if side is Side.BUY:
            name.bid_extra = max(0.0, name.bid_extra + qty)
        else:
            name.ask_extra = max(0.0, name.ask_extra + qty)

    def _unshow(self, order: _Resting) -> None:
        if order.at_touch:
            self._show(self.names[order.symbol], order.side, -order.qty)

    def _cancel(self, ts: int, oid: str) -> None:
        order = self._resting.pop(oid, None)
        if order is None:
            return
        self._unshow(order)
        self._order(
            OrderEventType.CANCEL, oid, order.account, order.symbol, order.side, order.qty, order.price, ts
        )
        if order.at_touch:
            self._quote(ts + MS // 2, self.names[order.symbol])

    def _fill(
        self, ts: int, oid: str, qty: float, counterparty: str | None = None, tape: bool = False
    ) -> None:
        """A resting order (partly) filled at its price; ``tape``: the fill prints too."""
        order = self._resting.get(oid)
        if order is None:
            return
        qty = min(qty, order.qty)
        order.qty -= qty
        if order.qty <= 0:
            del self._resting[oid]
        if order.at_touch:
            self._show(self.names[order.symbol], order.side, -qty)
        self._order(
            OrderEventType.FILL,
            oid,
            order.account,
            order.symbol,
            order.side,
            order.qty + qty,
            order.price,
            ts,
            (qty, order.price),
            counterparty,
        )
        if tape:
            self._at(ts, Print(order.symbol, VENUE, ts, order.price, qty))

    def _fill_crossed(self, ts: int, name: _Name) -> None:
        """Resting orders the moving market has reached are filled."""
        for oid, order in list(self._resting.items()):
            if order.symbol != name.listing.symbol or order.crossed:
                continue
            if (order.side is Side.BUY and order.price >= name.ask) or (
                order.side is Side.SELL and order.price <= name.bid
            ):
                # The move takes what a touch's worth of flow takes, not a large order whole.
                taken = self._lot(order.symbol, self.rng.uniform(0.1, 0.5))
                order.crossed = True
                self._fill(ts + MS, oid, min(order.qty, taken), tape=True)

    def _take(
        self,
        ts: int,
        account: str,
        symbol: str,
        side: Side,
        qty: float,
        limit: float | None = None,
        impact: float = 0.0,
        oid: str | None = None,
    ) -> tuple[str, float]:
        """A marketable order, filled at the touch it meets; ``impact`` moves the fair price by
        that many spreads for each touch it takes (a walk up the book)."""
        name = self.names[symbol]
        self._walk(name, ts)
        oid = oid or self._oid(account)
        px = name.ask if side is Side.BUY else name.bid
        if limit is None:
            tick = name.listing.tick
            limit = round(px + (2 * tick if side is Side.BUY else -2 * tick), 4)
        self._order(OrderEventType.NEW, oid, account, symbol, side, qty, limit, ts)
        self._order(OrderEventType.FILL, oid, account, symbol, side, qty, limit, ts + MS, (qty, px))
        self._at(ts + MS, Print(symbol, VENUE, ts + MS, px, qty))
        if impact:
            touches = qty / max(name.listing.touch_shares, 1.0)
            spread = name.spread_ticks * name.listing.tick
            name.fair += side.sign * impact * touches * spread
            self._requote(name)
            self._quote(ts + 2 * MS, name)
        return oid, px

    def _take_at(
        self, ts: int, account: str, symbol: str, side: Side, qty: float, impact: float = 0.0
    ) -> str:
        """:meth:`_take` at ``ts``, priced against the market of then; its order id now."""
        oid = self._oid(account)
        self._at(
            ts,
            partial(self._take, account=account, symbol=symbol, side=side, qty=qty, impact=impact, oid=oid),
        )
        return oid

    def _rest_at(
        self, ts: int, account: str, symbol: str, side: Side, qty: float, away_ticks: int = 0
    ) -> str:
        """A limit order at ``ts`` on ``side``'s touch of then (``away_ticks`` behind it)."""
        oid = self._oid(account)

        def place(t: int) -> None:
            name = self.names[symbol]
            tick = name.listing.tick
            touch = name.bid - away_ticks * tick if side is Side.BUY else name.ask + away_ticks * tick
            self._rest(t, account, symbol, side, qty, round(touch, 4), oid=oid)

        self._at(ts, place)
        return oid

    def _lot(self, symbol: str, touches: float) -> float:
        lst = self.names[symbol].listing
        return max(lst.lot, round(lst.touch_shares * touches / lst.lot) * lst.lot)

    # -- the honest population ----------------------------------------------------------------
    def _market_makers(self, ts: int, name: _Name) -> None:
        """Both makers re-quote a name whose touch moved: cancel the old quote, send a new one."""
        symbol = name.listing.symbol
        for lp in ("LP-A", "LP-B"):
            for side in (Side.BUY, Side.SELL):
                key = (lp, symbol, side)
                old = self._lp_orders.pop(key, None)
                delay = ts + int(self.rng.uniform(0.5, 4) * MS)
                if old is not None:
                    self._cancel(delay, old)
                px = name.bid if side is Side.BUY else name.ask
                size = self._lot(symbol, self.rng.uniform(0.1, 0.4))
                self._lp_orders[key] = self._rest(delay + MS // 4, lp, symbol, side, size, px)

    def _retail_flow(self, ts: int) -> None:
        rng = self.rng
        account = rng.choice(self._retail)
        symbol = rng.choice(list(self.names))
        name = self.names[symbol]
        side = rng.choice((Side.BUY, Side.SELL))
        lst = name.listing
        qty = max(lst.lot, round(rng.lognormvariate(math.log(2_000 / lst.price), 0.8) / lst.lot) * lst.lot)
        roll = rng.random()
        if roll < 0.5:
            self._take(ts, account, symbol, side, qty)
        elif roll < 0.85:
            px = name.bid if side is Side.BUY else name.ask
            oid = self._rest(ts, account, symbol, side, qty, px)
            self._at(ts + self._exp_ns(30.0), lambda t: self._cancel(t, oid))
        else:
            # A stink bid (offer): far from the market, it waits for a flash crash.
            away = rng.uniform(0.08, 0.25)
            px = round(name.fair * (1 - away if side is Side.BUY else 1 + away), 2)
            oid = self._rest(ts, account, symbol, side, qty * rng.randint(1, 5), px)
            self._at(ts + self._exp_ns(120.0), lambda t: self._cancel(t, oid))
        self._at(ts + self._exp_ns(0.5), self._retail_flow)

    def _hft(self, ts: int) -> None:
        rng = self.rng
        symbol = rng.choice(("HARB", "KEEL"))
        side = rng.choice((Side.BUY, Side.SELL))
        qty = self._lot(symbol, rng.uniform(0.05, 0.2))
        self._take(ts, "HFT-1", symbol, side, qty)
        out = ts + int(rng.uniform(0.3, 4.0) * NS)
        self._at(out, lambda t: self._take(t, "HFT-1", symbol, side.opposite, qty))
        self._at(ts + self._exp_ns(0.7), self._hft)

    def _asset_manager(self, ts: int) -> None:
        """A child slice of a parent order at a few percent of the tape, or an iceberg refill."""
        rng = self.rng
        account = rng.choice(("AM-1", "AM-2"))
        symbol = rng.choice(list(self.names))
        side = self._am_side[symbol]
        name = self.names[symbol]
        lst = name.listing
        slice_qty = self._lot(symbol, rng.uniform(0.2, 0.8))
        if rng.random() < 0.6:
            self._take(ts, account, symbol, side, slice_qty)
        else:
            px = name.bid if side is Side.BUY else name.ask
            shown = self._lot(symbol, 0.15)
            oid = self._rest(ts, account, symbol, side, shown, px)
            self._at(ts + self._exp_ns(8.0), lambda t: self._cancel(t, oid))
        mean_s = max(0.8, 20.0 / (lst.tape_per_s * 4))
        self._at(ts + self._exp_ns(mean_s), self._asset_manager)

    def _hedger(self, ts: int) -> None:
        rng = self.rng
        side = rng.choice((Side.BUY, Side.SELL))
        self._take(ts, "DESK-1", "PNYX", side, self._lot("PNYX", rng.uniform(1.0, 3.0)))
        self._take(ts + 3 * MS, "DESK-1", "SUMT", side.opposite, self._lot("SUMT", rng.uniform(0.5, 2.0)))
        self._at(ts + self._exp_ns(15.0), self._hedger)

    # -- abuse ---------------------------------------------------------------------------------
    def _injector(self, typology: Category) -> Callable[[int], None]:
        return {
            Category.SPOOFING: self._spoofing,
            Category.LAYERING: self._layering,
            Category.WASH_TRADE: self._wash,
            Category.MOMENTUM_IGNITION: self._ignition,
            Category.RAMPING: self._ramping,
            Category.MARKING_THE_CLOSE: self._marking,
            Category.QUOTE_STUFFING: self._stuffing,
            Category.FAT_FINGER: self._fat_finger,
            Category.LIMIT_BREACH: self._limit_breach,
            Category.MARKET_SHOCK: self._shock,
        }[typology]

    def _free(self, ts: int, span_s: float, choices: tuple[str, ...] | None = None) -> str:
        options = [s for s in (choices or tuple(self.names)) if self._busy_until.get(s, 0) <= ts]
        symbol = self.rng.choice(options or list(choices or self.names))
        self._busy_until[symbol] = ts + int(span_s * NS)
        return symbol

    def _spoofing(self, ts: int) -> None:
        """One large order at or next to the touch, shown, pulled right after a small execution
        on the other side (US v. Coscia)."""
        rng = self.rng
        account = f"SPF-{rng.randint(1, 3)}"
        symbol = self._free(ts, 20)
        name = self.names[symbol]
        side = rng.choice((Side.BUY, Side.SELL))
        tick = name.listing.tick
        px = name.bid - rng.randint(0, 1) * tick if side is Side.BUY else name.ask + rng.randint(0, 1) * tick
        big = self._rest(
            ts, account, symbol, side, self._lot(symbol, rng.uniform(3, 10)), round(px, 4), show=True
        )
        t_small = ts + int(rng.uniform(0.3, 1.5) * NS)
        small = self._rest_at(
            t_small, account, symbol, side.opposite, self._lot(symbol, rng.uniform(0.2, 0.6))
        )
        t_fill = t_small + int(rng.uniform(0.05, 0.6) * NS)
        self._at(t_fill, lambda t: self._fill(t, small, 1e12, tape=True))
        t_cancel = t_fill + int(rng.uniform(0.1, 1.0) * NS)
        self._at(t_cancel, lambda t: self._cancel(t, big))
        self._label(Category.SPOOFING, account, symbol, [big, small], ts, t_cancel)

    def _layering(self, ts: int) -> None:
        if self.rng.random() < 0.5:
            self._avalon(ts)
        else:
            self._sarao(ts)

    def _avalon(self, ts: int) -> None:
        """4-8 levels each near the touch's size, together dominating one side, cancelled 1-3.5 s
        later after an execution on the other side (SEC v. Avalon FA)."""
        rng = self.rng
        account = f"LYR-{rng.randint(1, 3)}"
        symbol = self._free(ts, 25)
        name = self.names[symbol]
        side = rng.choice((Side.BUY, Side.SELL))
        tick = name.listing.tick
        levels = rng.randint(4, 8)
        start = name.bid if side is Side.BUY else name.ask
        layers = []
        for k in range(levels):
            px = round(start - k * tick if side is Side.BUY else start + k * tick, 4)
            size = self._lot(symbol, rng.uniform(0.2, 2.6))
            layers.append(self._rest(ts + k * MS, account, symbol, side, size, px, show=k == 0))
        t_exec = ts + int(rng.uniform(0.2, 1.0) * NS)
        small = self._rest_at(
            t_exec, account, symbol, side.opposite, self._lot(symbol, rng.uniform(0.3, 1.0))
        )
        self._at(t_exec + 20 * MS, lambda t: self._fill(t, small, 1e12, tape=True))
        t_end = ts + int(rng.uniform(1.0, 3.5) * NS)
        for oid in layers:
            self._at(t_end + rng.randint(0, 5) * MS, partial(self._cancel, oid=oid))
        self._label(Category.LAYERING, account, symbol, [*layers, small], ts, t_end + 5 * MS)

    def _sarao(self, ts: int) -> None:
        """Layers of large size a few ticks from the touch, living 30-100 s and moved as the
        market moves so that they never trade, while the account executes on the other side
        (CFTC v. Sarao)."""
        rng = self.rng
        account = f"LYR-{rng.randint(4, 5)}"
        symbol = self._free(ts, 110, ("HARB", "KEEL"))
        side = rng.choice((Side.BUY, Side.SELL))
        life_s = rng.uniform(31, 103)
        end = ts + int(life_s * NS)
        levels = rng.randint(3, 5)
        oids: list[str] = []
        live: list[str] = []

        def place(t: int) -> None:
            name = self.names[symbol]
            tick = name.listing.tick
            for oid in live:
                self._cancel(t, oid)
            live.clear()
            touch = name.bid if side is Side.BUY else name.ask
            for k in range(levels):
                away = (3 + k) * tick
                px = round(touch - away if side is Side.BUY else touch + away, 4)
                oid = self._rest(t + MS, account, symbol, side, self._lot(symbol, rng.uniform(3, 6)), px)
                live.append(oid)
                oids.append(oid)
            if t + NS < end:
                self._at(t + int(rng.uniform(0.3, 1.5) * NS), place)
            else:
                for oid in live:
                    self._at(end, partial(self._cancel, oid=oid))

        def execute(t: int) -> None:
            if t >= end:
                return
            oid, _ = self._take(t, account, symbol, side.opposite, self._lot(symbol, rng.uniform(0.3, 0.8)))
            oids.append(oid)
            self._at(t + int(rng.uniform(4, 12) * NS), execute)

        place(ts)
        self._at(ts + int(rng.uniform(2, 6) * NS), execute)
        self._label(Category.LAYERING, account, symbol, oids, ts, end)

    def _wash(self, ts: int) -> None:
        rng = self.rng
        symbol = self._free(ts, 10)
        name = self.names[symbol]
        qty = self._lot(symbol, rng.uniform(0.5, 3))
        px = round((name.bid + name.ask) / 2 / name.listing.tick) * name.listing.tick
        px = round(px, 4)
        kind = rng.choice(("self", "cross", "lit"))
        if kind == "self":
            account = "WX-1"
            buy = self._rest(ts, account, symbol, Side.BUY, qty, px)
            sell = self._rest(ts + 2 * MS, account, symbol, Side.SELL, qty, px)
            self._fill(ts + 3 * MS, buy, qty, counterparty=account, tape=True)
            self._fill(ts + 3 * MS, sell, qty, counterparty=account)
            self._label(Category.WASH_TRADE, account, symbol, [buy, sell], ts, ts + 3 * MS)
            return
        a, b = LINKED_ACCOUNTS if rng.random() < 0.5 else LINKED_ACCOUNTS[::-1]
        buy = self._rest(ts, a, symbol, Side.BUY, qty, px)
        sell = self._rest(ts + int(rng.uniform(1, 40)) * MS, b, symbol, Side.SELL, qty, px)
        t_fill = ts + 45 * MS
        # On the lit book the venue does not name the other side; an ATS cross does.
        cp_a, cp_b = (b, a) if kind == "cross" else (None, None)
        self._fill(t_fill, buy, qty, counterparty=cp_a, tape=True)
        self._fill(t_fill, sell, qty, counterparty=cp_b)
        self._label(Category.WASH_TRADE, a, symbol, [buy], ts, t_fill)
        self._label(Category.WASH_TRADE, b, symbol, [sell], ts, t_fill)

    def _ignition(self, ts: int) -> None:
        """A resting order on one side, a burst of aggressive orders on the other that moves
        the price several spreads, then the resting order fills into the move."""
        rng = self.rng
        account = f"IGN-{rng.randint(1, 3)}"
        symbol = self._free(ts, 30)
        name = self.names[symbol]
        side = rng.choice((Side.BUY, Side.SELL))
        spread = name.spread_ticks * name.listing.tick
        target = round(
            (name.ask if side is Side.BUY else name.bid) + side.sign * rng.uniform(2.0, 4.0) * spread, 4
        )
        qty_exit = self._lot(symbol, rng.uniform(2, 5))
        exit_oid = self._rest(ts, account, symbol, side.opposite, qty_exit, target)
        oids = [exit_oid]
        n = rng.randint(4, 8)
        t = ts + int(rng.uniform(0.3, 1.0) * NS)
        for _ in range(n):
            oids.append(
                self._take_at(t, account, symbol, side, self._lot(symbol, rng.uniform(0.8, 2.0)), 0.6)
            )
            t += int(rng.uniform(0.1, 0.5) * NS)
        end = t + int(rng.uniform(0.5, 2.0) * NS)

        def exit_(tt: int) -> None:
            name.fair += side.sign * spread * 0.5
            self._requote(name)
            self._fill(tt, exit_oid, qty_exit, tape=True)

        self._at(end, exit_)
        self._label(Category.MOMENTUM_IGNITION, account, symbol, oids, ts, end)

    def _ramping(self, ts: int) -> None:
        """Buying a fifth to a third of the tape for minutes pushes the price up 1-10 %, then
        most of it is sold back (SEC pump-and-dump cases)."""
        rng = self.rng
        account = f"RMP-{rng.randint(1, 2)}"
        symbol = self._free(ts, 420)
        name = self.names[symbol]
        side = Side.BUY
        push_s = rng.uniform(120, 240)
        rise = rng.uniform(0.01, 0.10)
        name.drift_per_s = math.log(1 + rise) / push_s
        oids: list[str] = []
        share = rng.uniform(0.2, 0.33)
        lst = name.listing
        per_print = lst.touch_shares * 0.33
        qty_per_s = share / (1 - share) * lst.tape_per_s * per_print
        bought = [0.0]
        push_end = ts + int(push_s * NS)
        # The lit tape's volume by others since the last buy sizes the next: the account's
        # share is of the tape as it is (other flows, bursts), not of a nominal rate.
        seen = [self.lit_volume.get(symbol, 0.0), ts]

        def buy(t: int) -> None:
            if t >= push_end:
                name.drift_per_s = 0.0
                unwind(t)
                return
            others = self.lit_volume.get(symbol, 0.0) - seen[0]
            elapsed_s = (t - seen[1]) / NS
            want = share / (1 - share) * others if others > 0 else qty_per_s * elapsed_s
            qty = max(lst.lot, round(want / lst.lot) * lst.lot)
            oid, _ = self._take(t, account, symbol, side, qty)
            oids.append(oid)
            bought[0] += qty
            seen[0], seen[1] = self.lit_volume.get(symbol, 0.0) + qty, t
            self._at(t + int(rng.uniform(1.5, 2.5) * NS), buy)

        def unwind(t: int) -> None:
            left = bought[0] * rng.uniform(0.58, 1.0)
            chunks = rng.randint(6, 15)
            for k in range(chunks):
                at = t + int(k * rng.uniform(3, 8) * NS)
                self._at(
                    at,
                    lambda tt: oids.append(
                        self._take(
                            tt,
                            account,
                            symbol,
                            side.opposite,
                            max(lst.lot, round(left / chunks / lst.lot) * lst.lot),
                        )[0]
                    ),
                )
            end = t + int(chunks * 8 * NS)
            self._label(Category.RAMPING, account, symbol, oids, ts, end)

        self._at(ts, buy)

    def _marking(self, ts: int) -> None:
        """Aggressive buying concentrated in the last 50 s before the close lifts the closing
        price (SEC marking-the-close cases)."""
        rng = self.rng
        account = f"MRK-{rng.randint(1, 2)}"
        close_ns = CLOSE.next_close_ns(ts)
        symbol = self._free(ts, 400)
        start = max(ts, close_ns - int(rng.uniform(30, 50) * NS))
        side = rng.choice((Side.BUY, Side.SELL))
        oids: list[str] = []
        t = start
        while t < close_ns - NS // 2:
            oids.append(
                self._take_at(t, account, symbol, side, self._lot(symbol, rng.uniform(0.8, 2.0)), 0.4)
            )
            t += int(rng.uniform(1.0, 3.0) * NS)
        self._label(Category.MARKING_THE_CLOSE, account, symbol, oids, start, close_ns)

    def _stuffing(self, ts: int) -> None:
        rng = self.rng
        account = f"STF-{rng.randint(1, 2)}"
        symbol = self._free(ts, 10)
        name = self.names[symbol]
        n = rng.randint(400, 1500)
        span_ns = int(rng.uniform(1.0, 3.0) * NS)
        oids = []
        tick = name.listing.tick
        for k in range(n):
            t = ts + k * span_ns // n
            side = Side.BUY if k % 2 else Side.SELL
            px = round(
                name.bid - rng.randint(1, 5) * tick
                if side is Side.BUY
                else name.ask + rng.randint(1, 5) * tick,
                4,
            )
            oid = self._rest(t, account, symbol, side, name.listing.lot, px)
            self._cancel(t + rng.randint(1, 3) * MS // 2, oid)
            if k < 20:
                oids.append(oid)
        self._label(Category.QUOTE_STUFFING, account, symbol, oids, ts, ts + span_ns)

    def _fat_finger(self, ts: int) -> None:
        """A retail or desk account's order with an extra zero, or a price typo through the
        opposite touch; both marketable."""
        rng = self.rng
        account = rng.choice(self._retail[:6])
        symbol = self._free(ts, 10)
        name = self.names[symbol]
        side = rng.choice((Side.BUY, Side.SELL))
        lst = name.listing
        usual = max(lst.lot, round(2_000 / lst.price / lst.lot) * lst.lot)
        # The account's habit first, so that an outsized order has something to be outsized to.
        for k in range(12):
            qty = max(lst.lot, round(usual * rng.uniform(0.6, 1.5) / lst.lot) * lst.lot)
            self._at(
                ts + k * 2 * NS,
                partial(self._take, account=account, symbol=symbol, side=rng.choice(list(Side)), qty=qty),
            )
        typo_ts = ts + 26 * NS
        oid = self._oid(account)
        if rng.random() < 0.5:
            big = round(usual * rng.uniform(9.5, 11) / lst.lot) * lst.lot
            self._at(
                typo_ts, partial(self._take, account=account, symbol=symbol, side=side, qty=big, oid=oid)
            )
        else:
            typo = rng.uniform(0.05, 0.3)

            def typed(t: int) -> None:
                touch = name.ask if side is Side.BUY else name.bid
                limit = round(touch * (1 + typo) if side is Side.BUY else touch * (1 - typo), 2)
                self._take(t, account, symbol, side, usual, limit=limit, oid=oid)

            self._at(typo_ts, typed)
        ts = typo_ts
        self._label(Category.FAT_FINGER, account, symbol, [oid], ts, ts + MS)

    def _limit_breach(self, ts: int) -> None:
        rng = self.rng
        symbol = self._free(ts, 10, ("HARB", "KEEL"))
        oids = []
        t = ts
        for _ in range(rng.randint(3, 6)):
            oids.append(
                self._take_at(t, LIMITED_ACCOUNT, symbol, Side.BUY, self._lot(symbol, rng.uniform(0.8, 1.5)))
            )
            t += int(rng.uniform(0.5, 2) * NS)
        self._label(Category.LIMIT_BREACH, LIMITED_ACCOUNT, symbol, oids, ts, t)
        # Back within the limit before the next case: each case is a breach of its own.
        self._at(t + 5 * NS, partial(self._flatten, account=LIMITED_ACCOUNT, symbol=symbol))

    def _flatten(self, ts: int, account: str, symbol: str) -> None:
        held = self._positions.get((account, symbol), 0.0)
        if held:
            self._take(ts, account, symbol, Side.SELL if held > 0 else Side.BUY, abs(held))

    def _shock(self, ts: int) -> None:
        """A news gap: the fair price jumps 1.5-6 % in a second with the spread blown out and
        the tape busy, in one name."""
        rng = self.rng
        symbol = self._free(ts, 60)
        name = self.names[symbol]
        jump = rng.uniform(0.015, 0.06) * rng.choice((-1, 1))
        name.burst_until_ns = ts + int(30 * NS)
        steps = 5
        for k in range(steps):

            def step(t: int) -> None:
                self._walk(name, t)
                name.fair *= math.exp(jump / steps)
                self._requote(name)
                self._quote(t, name)
                size = self._lot(symbol, rng.uniform(1, 3))
                self._at(t, Print(symbol, VENUE, t, name.bid if jump < 0 else name.ask, size))

            self._at(ts + k * 150 * MS, step)
        self._label(Category.MARKET_SHOCK, None, symbol, [], ts, ts + steps * 150 * MS)
