"""A deterministic market simulator with labelled abuse (pure: yields records, does no I/O).

The market: a few symbols whose mid follows a random walk with volatility regimes (calm, and busy
at twice the volatility), quoted by the market at one or two ticks, with prints from the whole
market. The firm's order flow (trade-logs) comes from its accounts:

- ``MM-1`` makes markets and cancels most of its quotes (a look-alike of spoofing and stuffing);
- ``ACC-001``.. are noise clients that send, cancel and get filled;
- ``MOM-1`` is an honest momentum trader: in a trend it buys (sells) aggressively in bursts and
  holds for minutes (a look-alike of momentum ignition);
- ``INST-1`` is an institution sending large blocks at the touch and working orders at a small
  share of volume (look-alikes of fat fingers and ramping);
- ``HEDGE-1`` hedges: buys one symbol and sells another at once, round trips across the spread
  (a look-alike of wash trades);
- ``INDEX-1`` trades large passive orders in the last minutes before the close (a look-alike of
  marking the close).

Every ``inject_every_s`` one abuse case is injected, cycling through the typologies asked for,
and labelled with its accounts, orders and event-time interval: the ground truth of
``bench/detection.py``. Every fill of the firm prints on the market, so shares of market volume
are consistent between the two topics.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from riskstream.core.calendar import SessionCalendar
from riskstream.records import OrderEvent, OrderEventType, Print, Quote, Side
from riskstream.records.alerts import Category
from riskstream.records.codec import NS_PER_S
from riskstream.records.market_data import MarketEvent

NS = NS_PER_S
MS = 1_000_000
SYMBOLS = {"AAPL": 190.0, "MSFT": 410.0, "NVDA": 120.0, "XOM": 105.0}
NOISE_ACCOUNTS = [f"ACC-{i:03d}" for i in range(1, 41)]
MARKET_MAKER = "MM-1"
TICK = 0.01
CALM_VOL_PER_S = 0.0001
"""Calm-regime volatility of the mid per second (log returns): 0.0001 x sqrt(252 x 23 400 s)
is about 25 % a year."""
CLOSE = SessionCalendar.parse("16:00", "America/New_York")
ALL_TYPOLOGIES = tuple(Category)
Action = Callable[[int], None]
VOLUME_TAU_S = 60.0
SHOCK_SPACING_S = 600.0
"""Shocks in one symbol are at least this far apart: after one, the symbol's baseline volatility
stays high for minutes and a second would be judged against it (and rightly, be less of one)."""


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth: which account's which orders are abusive, of which typology, when.
    Market shocks have no account and no orders: the symbol and the interval identify them."""

    category: Category
    account: str | None
    symbol: str
    order_ids: tuple[str, ...]
    start_ns: int
    end_ns: int


@dataclass(order=True)
class _Scheduled:
    ts_ns: int
    seq: int
    item: OrderEvent | MarketEvent | Action = field(compare=False)


@dataclass(slots=True)
class _Book:
    """The market's view of one symbol."""

    mid: float
    ts_ns: int
    vol_per_s: float = CALM_VOL_PER_S
    spread_ticks: int = 1
    trend: int = 0
    """+1/-1 while a trend runs (momentum traders follow it), 0 otherwise."""
    drift_per_s: float = 0.0
    """Log drift per second an injected case imposes (a ramp, a slide)."""
    wide_until_ns: int = 0
    """An injected spread blow-out holds the quoted spread until then."""
    touch: float = 2700.0
    """Typical displayed size at the touch (an average over recent quotes)."""
    volume: float = 0.0
    volume_ns: int = 0
    """Decaying sum (time constant VOLUME_TAU_S) of printed volume: what injected cases size
    their share of the market against."""

    def add_volume(self, ts: int, size: float) -> None:
        if ts > self.volume_ns:
            self.volume *= math.exp(-(ts - self.volume_ns) / (VOLUME_TAU_S * NS))
            self.volume_ns = ts
        self.volume += size

    def volume_per_s(self) -> float:
        return self.volume / VOLUME_TAU_S


class MarketSimulator:
    def __init__(
        self,
        seed: int,
        start_ns: int,
        rate: float,
        inject_every_s: float = 4.0,
        typologies: Sequence[Category] | None = None,
        first_inject_s: float = 1.0,
        max_injections: int | None = None,
    ) -> None:
        """``rate`` background actions per second of event time; ``typologies`` to inject, in
        turn (all when None, none for a clean day)."""
        self.rng = random.Random(seed)
        self.ts_ns = start_ns
        self.step_ns = int(NS / rate)
        self.inject_every_ns = int(inject_every_s * NS)
        self.next_inject_ns = start_ns + int(first_inject_s * NS)
        self.books = {sym: _Book(mid, start_ns) for sym, mid in SYMBOLS.items()}
        self.labels: list[Label] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._pending: list[_Scheduled] = []
        chosen = ALL_TYPOLOGIES if typologies is None else tuple(typologies)
        injectors: dict[Category, Action] = {
            Category.FAT_FINGER: self._fat_finger,
            Category.SPOOFING: self._spoofing,
            Category.LAYERING: self._layering,
            Category.WASH_TRADE: self._wash_trade,
            Category.LIMIT_BREACH: self._limit_breach,
            Category.MOMENTUM_IGNITION: self._momentum_ignition,
            Category.RAMPING: self._ramping,
            Category.MARKING_THE_CLOSE: self._marking_the_close,
            Category.QUOTE_STUFFING: self._quote_stuffing,
            Category.MARKET_SHOCK: self._market_shock,
        }
        self._cases = itertools.cycle([injectors[c] for c in chosen]) if chosen else None
        self._injections_left = -1 if max_injections is None else max_injections
        self._busy_until: dict[str, int] = {}
        self._shocked_until: dict[str, int] = {}
        """symbol -> end of the injected case running in it: cases do not overlap per symbol."""
        self._mom_position: dict[str, float] = {}
        self._inst_position: dict[str, float] = {}
        self._prop_accounts = itertools.cycle(range(1, 5))
        self._inst_side: dict[str, Side] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def _oid(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):07d}"

    def _at(self, ts_ns: int, item: OrderEvent | MarketEvent | Action) -> None:
        heapq.heappush(self._pending, _Scheduled(ts_ns, next(self._seq), item))

    def _advance(self, symbol: str, ts: int) -> _Book:
        """Walk the symbol's mid forward to ``ts``: its drift plus noise at its regime's vol."""
        book = self.books[symbol]
        dt_s = (ts - book.ts_ns) / NS
        if dt_s > 0:
            noise = self.rng.gauss(0.0, book.vol_per_s * math.sqrt(dt_s))
            book.mid *= math.exp(book.drift_per_s * dt_s + noise)
            book.ts_ns = ts
        return book

    def _px(self, symbol: str, ticks: int) -> float:
        """Price ``ticks`` from the bid (0 = bid, spread_ticks = ask)."""
        book = self.books[symbol]
        bid = math.floor(book.mid / TICK - book.spread_ticks / 2 + 0.5) * TICK
        return round(bid + ticks * TICK, 2)

    def _quote(self, symbol: str, ts: int, size: float | None = None) -> None:
        book = self._advance(symbol, ts)
        bid = self._px(symbol, 0)
        ask = round(bid + book.spread_ticks * TICK, 2)
        rng = self.rng
        bid_size = size if size is not None else rng.randrange(5, 50) * 100
        ask_size = size if size is not None else rng.randrange(5, 50) * 100
        book.touch = 0.95 * book.touch + 0.05 * (bid_size + ask_size) / 2
        self._at(ts, Quote(symbol, "XNAS", ts, bid, ask, bid_size, ask_size))

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
        *,
        last_qty: float | None = None,
        last_px: float | None = None,
        counterparty: str | None = None,
    ) -> OrderEvent:
        return OrderEvent(
            kind,
            oid,
            account,
            f"TRD-{account[-3:]}",
            symbol,
            side,
            qty,
            price,
            ts,
            last_qty,
            last_px,
            counterparty,
        )

    def _new(self, ts: int, account: str, prefix: str, symbol: str, side: Side, qty: float, px: float) -> str:
        oid = self._oid(prefix)
        self._at(ts, self._order(OrderEventType.NEW, oid, account, symbol, side, qty, px, ts))
        return oid

    def _fill(
        self,
        ts: int,
        oid: str,
        account: str,
        symbol: str,
        side: Side,
        qty: float,
        px: float,
        counterparty: str | None = None,
    ) -> None:
        """The firm's fill, and its print on the market."""
        self._at(
            ts,
            self._order(
                OrderEventType.FILL,
                oid,
                account,
                symbol,
                side,
                qty,
                px,
                ts,
                last_qty=qty,
                last_px=px,
                counterparty=counterparty,
            ),
        )
        self._print(ts, symbol, px, qty)

    def _print(self, ts: int, symbol: str, px: float, qty: float) -> None:
        self.books[symbol].add_volume(ts, qty)
        self._at(ts, Print(symbol, "XNAS", ts, px, qty))

    def _cancel(
        self, ts: int, oid: str, account: str, symbol: str, side: Side, qty: float, px: float
    ) -> None:
        self._at(ts, self._order(OrderEventType.CANCEL, oid, account, symbol, side, qty, px, ts))

    def _resting_order(
        self,
        ts: int,
        account: str,
        prefix: str,
        symbol: str,
        side: Side,
        qty: float,
        px: float,
        life_ms: int,
        fill_probability: float,
    ) -> str:
        """A new order that is filled in full or cancelled ``life_ms`` later."""
        oid = self._new(ts, account, prefix, symbol, side, qty, px)
        later = ts + life_ms * MS
        if self.rng.random() < fill_probability:
            self._fill(later, oid, account, symbol, side, qty, px)
        else:
            self._cancel(later, oid, account, symbol, side, qty, px)
        return oid

    def _aggressive(self, ts: int, account: str, prefix: str, symbol: str, side: Side, qty: float) -> str:
        """A marketable order filled at once at the touch it took, priced when it is sent."""
        oid = self._oid(prefix)

        def send(t: int) -> None:
            self._advance(symbol, t)
            px = self._px(symbol, self.books[symbol].spread_ticks if side is Side.BUY else 0)
            limit = round(px + (2 * TICK if side is Side.BUY else -2 * TICK), 2)
            self._at(t, self._order(OrderEventType.NEW, oid, account, symbol, side, qty, limit, t))
            self._fill(t + MS, oid, account, symbol, side, qty, px)

        self._at(ts, send)
        return oid

    # -- background --------------------------------------------------------------------------
    def _background(self, ts: int) -> None:
        rng = self.rng
        symbol = rng.choice(list(SYMBOLS))
        roll = rng.random()
        if roll < 0.30:
            book = self.books[symbol]
            if rng.random() < 0.002:
                busy = book.vol_per_s == CALM_VOL_PER_S
                book.vol_per_s = CALM_VOL_PER_S * (2.0 if busy else 1.0)
                book.trend = rng.choice((-1, 1)) if busy else 0
            if ts >= book.wide_until_ns:
                book.spread_ticks = 1 if rng.random() < 0.7 else 2
            self._quote(symbol, ts)
        elif roll < 0.42:
            self._advance(symbol, ts)
            self._print(ts, symbol, self._px(symbol, rng.randrange(2)), rng.randrange(1, 10) * 100)
        elif roll < 0.64:
            side = rng.choice((Side.BUY, Side.SELL))
            px = self._px(symbol, -rng.randrange(0, 3) if side is Side.BUY else 1 + rng.randrange(0, 3))
            self._resting_order(
                ts,
                MARKET_MAKER,
                "MM",
                symbol,
                side,
                rng.randrange(2, 12) * 100,
                px,
                rng.randrange(50, 2000),
                0.2,
            )
        elif roll < 0.86:
            side = rng.choice((Side.BUY, Side.SELL))
            self._resting_order(
                ts,
                rng.choice(NOISE_ACCOUNTS),
                "N",
                symbol,
                side,
                rng.randrange(10, 100) * 10,
                self._px(symbol, rng.randrange(-3, 4)),
                rng.randrange(100, 5000),
                0.5,
            )
        elif roll < 0.88:
            self._momentum_trader(ts, symbol)
        elif roll < 0.881:
            self._hedger(ts, symbol)
        elif roll < 0.882:
            self._institution(ts, symbol)
        elif roll < 0.887:
            self._index_at_close(ts, symbol)

    def _momentum_trader(self, ts: int, symbol: str) -> None:
        """Buys (sells) in short aggressive bursts with a trend and holds; exits passively,
        minutes later, once the position is large."""
        book = self.books[symbol]
        held = self._mom_position.get(symbol, 0.0)
        if book.trend and abs(held) < 2000:
            side = Side.BUY if book.trend > 0 else Side.SELL
            for i in range(3):
                self._aggressive(ts + i * 200 * MS, "MOM-1", "M", symbol, side, 100)
            self._mom_position[symbol] = held + side.sign * 300
        elif held and not book.trend:
            side = Side.SELL if held > 0 else Side.BUY
            px = self._px(symbol, book.spread_ticks if side is Side.SELL else 0)
            for i in range(int(abs(held) // 300)):
                later = ts + (120 + 20 * i) * NS
                oid = self._new(later, "MOM-1", "M", symbol, side, 300, px)
                self._fill(later + 2 * NS, oid, "MOM-1", symbol, side, 300, px)
            self._mom_position[symbol] = 0.0

    def _hedger(self, ts: int, symbol: str) -> None:
        """A client hedge: buy one name and sell another at once; or a round trip across the
        spread in one name (a tick apart: not a wash)."""
        rng = self.rng
        other = rng.choice([s for s in SYMBOLS if s != symbol])
        qty = rng.randrange(5, 30) * 100
        if rng.random() < 0.5:
            self._aggressive(ts, "HEDGE-1", "H", symbol, Side.BUY, qty)
            self._aggressive(ts + MS, "HEDGE-1", "H", other, Side.SELL, qty)
            later = ts + rng.randrange(5, 60) * NS
            self._aggressive(later, "HEDGE-1", "H", symbol, Side.SELL, qty)
            self._aggressive(later + MS, "HEDGE-1", "H", other, Side.BUY, qty)
        else:
            book = self.books[symbol]
            bid, ask = self._px(symbol, 0), self._px(symbol, book.spread_ticks)
            b = self._new(ts, "HEDGE-1", "H", symbol, Side.BUY, qty, ask)
            self._fill(ts + MS, b, "HEDGE-1", symbol, Side.BUY, qty, ask)
            s = self._new(ts + 30 * MS, "HEDGE-1", "H", symbol, Side.SELL, qty, bid)
            self._fill(ts + 31 * MS, s, "HEDGE-1", symbol, Side.SELL, qty, bid)

    def _institution(self, ts: int, symbol: str) -> None:
        """A large block at the touch (its usual size: not a fat finger), or a worked order of
        a few aggressive child orders at a small share of volume. It works one direction per
        symbol until its position is large, then the other, over many minutes."""
        rng = self.rng
        held = self._inst_position.get(symbol, 0.0)
        if abs(held) >= 60_000:
            self._inst_side[symbol] = Side.SELL if held > 0 else Side.BUY
        side = self._inst_side.setdefault(symbol, rng.choice((Side.BUY, Side.SELL)))
        if rng.random() < 0.5:
            qty = rng.randrange(100, 300) * 100
            self._inst_position[symbol] = held + side.sign * qty
            px = self._px(symbol, 0 if side is Side.BUY else self.books[symbol].spread_ticks)
            self._resting_order(ts, "INST-1", "I", symbol, side, qty, px, rng.randrange(500, 3000), 0.9)
        else:
            for i in range(rng.randrange(2, 5)):
                self._aggressive(ts + i * 3 * NS, "INST-1", "I", symbol, side, rng.randrange(2, 6) * 100)

    def _index_at_close(self, ts: int, symbol: str) -> None:
        """In the last minutes before the close, an index fund's large passive orders rest at
        the touch and fill: big volume, no aggression."""
        if CLOSE.seconds_to_close(ts) > 300:
            return
        side = self.rng.choice((Side.BUY, Side.SELL))
        px = self._px(symbol, 0 if side is Side.BUY else self.books[symbol].spread_ticks)
        self._resting_order(ts, "INDEX-1", "X", symbol, side, self.rng.randrange(20, 60) * 100, px, 1500, 1.0)

    # -- injected abuse, one labelled case each ----------------------------------------------
    def _free_symbol(self, ts: int, shock: bool = False) -> str | None:
        """A symbol no injected case is running in (for a shock: nor was shocked recently, as
        a shock lifts the symbol's volatility baseline for minutes)."""
        free = [
            s
            for s in SYMBOLS
            if self._busy_until.get(s, 0) < ts and not (shock and self._shocked_until.get(s, 0) >= ts)
        ]
        return self.rng.choice(free) if free else None

    def _busy(self, symbol: str, until_ns: int) -> None:
        self._busy_until[symbol] = until_ns + 5 * NS

    def _fat_finger(self, ts: int) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        account = self.rng.choice(NOISE_ACCOUNTS)
        mid = self._advance(symbol, ts).mid
        side = Side.BUY
        if self.rng.random() < 0.5:
            # A price typo that would trade through the market (a buy far above the ask, a sell
            # far below the bid); one far on the passive side would only rest.
            side = self.rng.choice((Side.BUY, Side.SELL))
            away = self.rng.choice((0.1, 0.25, 0.2))
            qty, px = 500.0, round(mid * (1 + away if side is Side.BUY else 1 - away), 2)
        else:
            qty, px = float(self.rng.randrange(300, 900) * 100), self._px(symbol, 0)
        oid = self._new(ts, account, "FF", symbol, side, qty, px)
        self._cancel(ts + 2 * NS, oid, account, symbol, side, qty, px)
        self.labels.append(Label(Category.FAT_FINGER, account, symbol, (oid,), ts, ts))

    def _spoof(self, ts: int, levels: int, category: Category, account: str) -> None:
        symbol = self._free_symbol(ts)
        if symbol is None:
            return
        self._advance(symbol, ts)
        spoof_ids = []
        size = round(self.rng.uniform(3, 5) * self.books[symbol].touch / 100) * 100
        for i in range(3):
            px = self._px(symbol, 2 + (i % levels))
            spoof_ids.append(self._new(ts + i * 10 * MS, account, "SP", symbol, Side.SELL, size, px))
        bpx = self._px(symbol, 0)
        buy = self._new(ts + 50 * MS, account, "SP", symbol, Side.BUY, 1000, bpx)
        fill_ts = ts + 400 * MS
        self._fill(fill_ts, buy, account, symbol, Side.BUY, 1000, bpx)
        end = fill_ts
        for i, oid in enumerate(spoof_ids):
            end = fill_ts + (i + 1) * 100 * MS
            self._cancel(end, oid, account, symbol, Side.SELL, size, self._px(symbol, 2 + (i % levels)))
        self._busy(symbol, end)
        self.labels.append(Label(category, account, symbol, (*spoof_ids, buy), ts, end))

    def _spoofing(self, ts: int) -> None:
        self._spoof(ts, 1, Category.SPOOFING, "ACC-SPOOF")

    def _layering(self, ts: int) -> None:
        self._spoof(ts, 3, Category.LAYERING, "ACC-LAYER")

    def _wash_trade(self, ts: int) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        self._advance(symbol, ts)
        px = self._px(symbol, 0)
        qty = self.rng.randrange(2, 20) * 100
        b = self._new(ts, "ACC-W1", "W", symbol, Side.BUY, qty, px)
        s = self._new(ts, "ACC-W2", "W", symbol, Side.SELL, qty, px)
        fill = ts + 5 * MS
        self._fill(fill, b, "ACC-W1", symbol, Side.BUY, qty, px, counterparty="ACC-W2")
        self._at(
            fill,
            self._order(
                OrderEventType.FILL,
                s,
                "ACC-W2",
                symbol,
                Side.SELL,
                qty,
                px,
                fill,
                last_qty=qty,
                last_px=px,
                counterparty="ACC-W1",
            ),
        )
        self.labels.append(Label(Category.WASH_TRADE, "ACC-W1", symbol, (b,), ts, fill))
        self.labels.append(Label(Category.WASH_TRADE, "ACC-W2", symbol, (s,), ts, fill))

    def _limit_breach(self, ts: int) -> None:
        """Alternately: buys past the position limit then sells back inside it; or a position
        whose mark-to-market loss passes the account's loss limit as the price slides."""
        symbol = self._free_symbol(ts)
        if symbol is None:
            return
        self._advance(symbol, ts)
        if self.rng.random() < 0.5:
            buys = [
                self._aggressive(ts + i * 20 * MS, "ACC-LIM", "L", symbol, Side.BUY, 2000) for i in range(2)
            ]
            for i in range(2):
                self._aggressive(ts + (2 + i) * NS, "ACC-LIM", "L", symbol, Side.SELL, 2000)
            self._busy(symbol, ts + 4 * NS)
            self.labels.append(Label(Category.LIMIT_BREACH, "ACC-LIM", symbol, (buys[1],), ts, ts + 21 * MS))
            return
        account = f"PROP-{next(self._prop_accounts)}"
        oid = self._aggressive(ts, account, "P", symbol, Side.BUY, 20_000)
        book = self.books[symbol]
        slide_s = 30.0
        self._at(ts + 2 * MS, lambda _t: setattr(book, "drift_per_s", -0.01 / slide_s))
        end = ts + int(slide_s * NS)
        self._at(end, lambda _t: setattr(book, "drift_per_s", 0.0))
        exit_id = self._aggressive(end + 5 * NS, account, "P", symbol, Side.SELL, 20_000)
        self._busy(symbol, end + 5 * NS)
        self.labels.append(Label(Category.LIMIT_BREACH, account, symbol, (oid, exit_id), ts, end + 5 * NS))

    def _momentum_ignition(self, ts: int) -> None:
        symbol = self._free_symbol(ts)
        if symbol is None:
            return
        rng = self.rng
        account = "ACC-IGN"
        side = rng.choice((Side.BUY, Side.SELL))
        book = self._advance(symbol, ts)
        n = rng.randrange(3, 6)
        qty = round(rng.uniform(0.8, 1.2) * book.touch / 100) * 100
        burst = [self._aggressive(ts + i * 250 * MS, account, "MI", symbol, side, qty) for i in range(n)]
        lifted = ts + n * 250 * MS
        reversal_ms = rng.randrange(500, 3000)
        horizon_s = (lifted - ts) / NS + reversal_ms / 1000
        spread = book.spread_ticks * TICK
        sigma = book.mid * book.vol_per_s * math.sqrt(horizon_s)
        step = max(rng.uniform(6, 10) * spread, rng.uniform(6, 10) * sigma) * side.sign / n

        def push(t: int) -> None:
            """Each aggressive order walks the book: the market requotes a step further."""
            book.mid += step
            book.ts_ns = t
            self._quote(symbol, t)

        for i in range(n):
            self._at(ts + i * 250 * MS + 3 * MS, push)
        rev = lifted + reversal_ms * MS
        out = self._new(rev, account, "MI", symbol, side.opposite, qty * n, self._px(symbol, 0))
        self._at(
            rev + MS,
            lambda t: self._fill(
                t,
                out,
                account,
                symbol,
                side.opposite,
                qty * n,
                self._px(symbol, 0 if side is Side.BUY else book.spread_ticks),
            ),
        )
        self._busy(symbol, rev + MS)
        self.labels.append(Label(Category.MOMENTUM_IGNITION, account, symbol, (*burst, out), ts, rev + MS))

    def _ramping(self, ts: int) -> None:
        """Build a position over a minute or two as a large share of volume while pushing the
        price up several sigmas, then sell most of it within seconds."""
        symbol = self._free_symbol(ts)
        if symbol is None:
            return
        rng = self.rng
        account = "ACC-RAMP"
        book = self._advance(symbol, ts)
        build_s = rng.randrange(60, 120)
        push = rng.uniform(8, 12) * book.vol_per_s * math.sqrt(build_s)
        self._at(ts, lambda _t: setattr(book, "drift_per_s", push / build_s))
        share = rng.uniform(0.25, 0.45)
        child = max(100.0, round(share / (1 - share) * book.volume_per_s() * 5 / 100) * 100)
        buys = [
            self._aggressive(ts + i * 5 * NS, account, "R", symbol, Side.BUY, child)
            for i in range(build_s // 5)
        ]
        end_build = ts + build_s * NS
        self._at(end_build, lambda _t: setattr(book, "drift_per_s", 0.0))
        dumped = child * len(buys) * rng.uniform(0.7, 1.0)
        sells = [
            self._aggressive(end_build + NS + i * 2 * NS, account, "R", symbol, Side.SELL, round(dumped / 3))
            for i in range(3)
        ]
        end = end_build + NS + 4 * NS + MS
        self._busy(symbol, end)
        self.labels.append(Label(Category.RAMPING, account, symbol, (*buys, *sells), ts, end))

    def _marking_the_close(self, ts: int) -> None:
        """Aggressive buying in the last minutes before the close; skipped outside them."""
        to_close = CLOSE.seconds_to_close(ts)
        if to_close > 240 or to_close < 60:
            return
        symbol = self._free_symbol(ts)
        if symbol is None:
            return
        account = "ACC-CLOSE"
        book = self._advance(symbol, ts)
        rng = self.rng
        span_s = int(to_close * 0.6)
        since_open_s = 300 - to_close + span_s
        push = max(
            6 * book.spread_ticks * TICK / book.mid,
            rng.uniform(6, 9) * book.vol_per_s * math.sqrt(since_open_s),
        )
        self._at(ts, lambda _t: setattr(book, "drift_per_s", push / span_s))
        share = rng.uniform(0.35, 0.5)
        child = max(100.0, round(share / (1 - share) * book.volume_per_s() * 5 / 100) * 100)
        orders = [
            self._aggressive(ts + i * 5 * NS, account, "C", symbol, Side.BUY, child)
            for i in range(max(3, span_s // 5))
        ]
        end = ts + span_s * NS
        self._at(end, lambda _t: setattr(book, "drift_per_s", 0.0))
        self._busy(symbol, end)
        self.labels.append(Label(Category.MARKING_THE_CLOSE, account, symbol, tuple(orders), ts, end))

    def _quote_stuffing(self, ts: int) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        account = "ACC-STUFF"
        self._advance(symbol, ts)
        px = self._px(symbol, 10)
        ids = []
        pairs = self.rng.randrange(150, 300)
        for i in range(pairs):
            t = ts + i * 3 * MS
            oid = self._new(t, account, "Q", symbol, Side.SELL, 100, px)
            self._cancel(t + MS, oid, account, symbol, Side.SELL, 100, px)
            ids.append(oid)
        end = ts + pairs * 3 * MS
        self.labels.append(Label(Category.QUOTE_STUFFING, account, symbol, tuple(ids), ts, end))

    def _market_shock(self, ts: int) -> None:
        """One of: a price gap, a spread blow-out, a volume spike, a volatility burst."""
        symbol = self._free_symbol(ts, shock=True)
        if symbol is None:
            return
        rng = self.rng
        book = self._advance(symbol, ts)
        kind = rng.choice(("gap", "spread", "volume", "volatility"))
        end = ts
        if kind == "gap":
            book.mid *= math.exp(rng.choice((-1, 1)) * rng.uniform(0.01, 0.03))
            self._quote(symbol, ts)
        elif kind == "spread":
            wide = rng.randrange(10, 20)
            book.wide_until_ns = ts + 2 * NS
            widen: Action = lambda t: self._wide_quote(symbol, t, wide)  # noqa: E731
            for i in range(10):
                self._at(ts + i * 200 * MS, widen)
            end = ts + 2 * NS
            self._at(end, lambda t: self._wide_quote(symbol, t, 1))
        elif kind == "volume":
            spike = rng.uniform(100, 200) * book.volume_per_s()
            for i in range(20):
                self._print(
                    ts + i * 100 * MS, symbol, self._px(symbol, rng.randrange(2)), round(spike / 2000) * 100
                )
            end = ts + 2 * NS
        else:
            calm = book.vol_per_s
            self._at(ts, lambda _t: setattr(book, "vol_per_s", calm * 12))
            for i in range(100):
                self._at(ts + i * 100 * MS, lambda t: self._quote(symbol, t))
            end = ts + 10 * NS
            self._at(end, lambda _t: setattr(book, "vol_per_s", calm))
        self._busy(symbol, end)
        self._shocked_until[symbol] = end + int(SHOCK_SPACING_S * NS)
        self.labels.append(Label(Category.MARKET_SHOCK, None, symbol, (), ts, end))

    def _wide_quote(self, symbol: str, ts: int, spread_ticks: int) -> None:
        self.books[symbol].spread_ticks = spread_ticks
        self._quote(symbol, ts)

    def events(self) -> Iterator[OrderEvent | MarketEvent]:
        """Endless, time-ordered stream; one background action per step plus injections."""
        while True:
            self.ts_ns += self.step_ns
            if self._cases is not None and self.ts_ns >= self.next_inject_ns:
                next(self._cases)(self.ts_ns)
                self.next_inject_ns += self.inject_every_ns
                self._injections_left -= 1
                if self._injections_left == 0:
                    self._cases = None
            self._background(self.ts_ns)
            while self._pending and self._pending[0].ts_ns <= self.ts_ns:
                scheduled = heapq.heappop(self._pending)
                item = scheduled.item
                if callable(item):
                    item(scheduled.ts_ns)
                else:
                    yield item
