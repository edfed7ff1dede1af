"""A deterministic market simulator with labelled abuse (pure: yields records, does no I/O).

Symbols follow a random-walk mid; a market maker quotes around it and cancels most quotes
(an honest look-alike of spoofing); noise traders send, cancel and get filled; every
``inject_every_s`` one abuse case is injected, cycling through the typologies, and labelled.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from riskstream.records import OrderEvent, OrderEventType, Print, Quote, Side
from riskstream.records.alerts import Category
from riskstream.records.codec import NS_PER_S
from riskstream.records.market_data import MarketEvent

NS = NS_PER_S
SYMBOLS = {"AAPL": 190.0, "MSFT": 410.0, "NVDA": 120.0, "XOM": 105.0}
NOISE_ACCOUNTS = [f"ACC-{i:03d}" for i in range(1, 13)]
MARKET_MAKER = "MM-1"
TICK = 0.01


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth: which account's which orders are abusive, of which typology, when."""

    category: Category
    account: str
    symbol: str
    order_ids: tuple[str, ...]
    start_ns: int
    end_ns: int


@dataclass(order=True)
class _Scheduled:
    ts_ns: int
    seq: int
    event: OrderEvent | MarketEvent = field(compare=False)


class MarketSimulator:
    def __init__(self, seed: int, start_ns: int, rate: float, inject_every_s: float = 4.0) -> None:
        self.rng = random.Random(seed)
        self.ts_ns = start_ns
        self.step_ns = int(NS / rate)
        self.inject_every_ns = int(inject_every_s * NS)
        self.next_inject_ns = start_ns + NS
        self.mid = dict(SYMBOLS)
        self.labels: list[Label] = []
        self._ids = itertools.count(1)
        self._seq = itertools.count()
        self._pending: list[_Scheduled] = []
        self._cases = itertools.cycle(
            [
                self._fat_finger,
                self._spoofing,
                self._layering,
                self._wash_trade,
                self._limit_breach,
            ]
        )

    def _oid(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):07d}"

    def _at(self, ts_ns: int, event: OrderEvent | MarketEvent) -> None:
        heapq.heappush(self._pending, _Scheduled(ts_ns, next(self._seq), event))

    def _px(self, symbol: str, ticks: int) -> float:
        return round(round(self.mid[symbol] / TICK) * TICK + ticks * TICK, 2)

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

    def _background(self, ts: int) -> None:
        rng = self.rng
        symbol = rng.choice(list(SYMBOLS))
        roll = rng.random()
        if roll < 0.35:
            self.mid[symbol] *= 1 + rng.gauss(0, 0.0002)
            bid, ask = self._px(symbol, 0), self._px(symbol, 1 + rng.randrange(2))
            self._at(
                ts,
                Quote(
                    symbol,
                    "XNAS",
                    ts,
                    bid,
                    ask,
                    rng.randrange(1, 20) * 100,
                    rng.randrange(1, 20) * 100,
                ),
            )
        elif roll < 0.45:
            self._at(
                ts,
                Print(
                    symbol,
                    "XNAS",
                    ts,
                    self._px(symbol, rng.randrange(2)),
                    rng.randrange(1, 10) * 100,
                ),
            )
        elif roll < 0.65:
            side = rng.choice((Side.BUY, Side.SELL))
            px = self._px(symbol, -1 if side is Side.BUY else 2)
            life_ms = rng.randrange(50, 2000)
            self._resting_order(
                ts,
                MARKET_MAKER,
                "MM",
                symbol,
                side,
                rng.randrange(2, 12) * 100,
                px,
                life_ms,
                fill_probability=0.2,
            )
        else:
            side = rng.choice((Side.BUY, Side.SELL))
            px = self._px(symbol, rng.randrange(-3, 4))
            life_ms = rng.randrange(100, 5000)
            self._resting_order(
                ts,
                rng.choice(NOISE_ACCOUNTS),
                "N",
                symbol,
                side,
                rng.randrange(10, 100) * 10,
                px,
                life_ms,
                fill_probability=0.5,
            )

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
    ) -> None:
        """A new order that is filled in full or cancelled ``life_ms`` later."""
        oid = self._oid(prefix)
        self._at(ts, self._order(OrderEventType.NEW, oid, account, symbol, side, qty, px, ts))
        later = ts + life_ms * 1_000_000
        if self.rng.random() < fill_probability:
            end = self._order(
                OrderEventType.FILL, oid, account, symbol, side, qty, px, later, last_qty=qty, last_px=px
            )
        else:
            end = self._order(OrderEventType.CANCEL, oid, account, symbol, side, qty, px, later)
        self._at(later, end)

    # -- injected abuse, one labelled case each -------------------------------------------
    def _fat_finger(self, ts: int) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        oid = self._oid("FF")
        px = round(self.mid[symbol] * 1.25, 2)
        self._at(ts, self._order(OrderEventType.NEW, oid, "ACC-FF", symbol, Side.BUY, 500, px, ts))
        self.labels.append(Label(Category.FAT_FINGER, "ACC-FF", symbol, (oid,), ts, ts))

    def _spoof(self, ts: int, levels: int, category: Category, account: str) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        spoof_ids = [self._oid("SP") for _ in range(3)]
        for i, oid in enumerate(spoof_ids):
            px = self._px(symbol, 2 + (i % levels))
            self._at(
                ts + i * 10_000_000,
                self._order(
                    OrderEventType.NEW,
                    oid,
                    account,
                    symbol,
                    Side.SELL,
                    5000,
                    px,
                    ts + i * 10_000_000,
                ),
            )
        buy = self._oid("SP")
        fill_ts = ts + 400_000_000
        bpx = self._px(symbol, 0)
        self._at(
            ts + 50_000_000,
            self._order(OrderEventType.NEW, buy, account, symbol, Side.BUY, 1000, bpx, ts + 50_000_000),
        )
        self._at(
            fill_ts,
            self._order(
                OrderEventType.FILL,
                buy,
                account,
                symbol,
                Side.BUY,
                1000,
                bpx,
                fill_ts,
                last_qty=1000,
                last_px=bpx,
            ),
        )
        end = fill_ts
        for i, oid in enumerate(spoof_ids):
            end = fill_ts + (i + 1) * 100_000_000
            px = self._px(symbol, 2 + (i % levels))
            self._at(
                end,
                self._order(OrderEventType.CANCEL, oid, account, symbol, Side.SELL, 5000, px, end),
            )
        self.labels.append(Label(category, account, symbol, (*spoof_ids, buy), ts, end))

    def _spoofing(self, ts: int) -> None:
        self._spoof(ts, 1, Category.SPOOFING, "ACC-SPOOF")

    def _layering(self, ts: int) -> None:
        self._spoof(ts, 3, Category.LAYERING, "ACC-LAYER")

    def _wash_trade(self, ts: int) -> None:
        symbol = self.rng.choice(list(SYMBOLS))
        px = self._px(symbol, 0)
        b, s = self._oid("W"), self._oid("W")
        self._at(ts, self._order(OrderEventType.NEW, b, "ACC-W1", symbol, Side.BUY, 800, px, ts))
        self._at(ts, self._order(OrderEventType.NEW, s, "ACC-W2", symbol, Side.SELL, 800, px, ts))
        fill = ts + 5_000_000
        self._at(
            fill,
            self._order(
                OrderEventType.FILL,
                b,
                "ACC-W1",
                symbol,
                Side.BUY,
                800,
                px,
                fill,
                last_qty=800,
                last_px=px,
                counterparty="ACC-W2",
            ),
        )
        self._at(
            fill,
            self._order(
                OrderEventType.FILL,
                s,
                "ACC-W2",
                symbol,
                Side.SELL,
                800,
                px,
                fill,
                last_qty=800,
                last_px=px,
                counterparty="ACC-W1",
            ),
        )
        self.labels.append(Label(Category.WASH_TRADE, "ACC-W1", symbol, (b,), ts, fill))
        self.labels.append(Label(Category.WASH_TRADE, "ACC-W2", symbol, (s,), ts, fill))

    def _filled_order(
        self, t: int, account: str, symbol: str, side: Side, qty: float, px: float, fill_after_ns: int
    ) -> str:
        """A new order filled in full ``fill_after_ns`` later; returns its id."""
        oid = self._oid("L")
        self._at(t, self._order(OrderEventType.NEW, oid, account, symbol, side, qty, px, t))
        done = t + fill_after_ns
        self._at(
            done,
            self._order(
                OrderEventType.FILL, oid, account, symbol, side, qty, px, done, last_qty=qty, last_px=px
            ),
        )
        return oid

    def _limit_breach(self, ts: int) -> None:
        """Buys past the position limit, then sells back inside it."""
        symbol = self.rng.choice(list(SYMBOLS))
        buys = [
            self._filled_order(
                ts + i * 20_000_000, "ACC-LIM", symbol, Side.BUY, 2000, self._px(symbol, 1), 5_000_000
            )
            for i in range(2)
        ]
        for i in range(2):
            self._filled_order(
                ts + 100_000_000 + i * 20_000_000,
                "ACC-LIM",
                symbol,
                Side.SELL,
                2000,
                self._px(symbol, 0),
                5_000_000,
            )
        self.labels.append(Label(Category.LIMIT_BREACH, "ACC-LIM", symbol, (buys[1],), ts, ts + 25_000_000))

    def events(self) -> Iterator[OrderEvent | MarketEvent]:
        """Endless, time-ordered stream; one background action per step plus injections."""
        while True:
            self.ts_ns += self.step_ns
            if self.ts_ns >= self.next_inject_ns:
                next(self._cases)(self.ts_ns)
                self.next_inject_ns += self.inject_every_ns
            self._background(self.ts_ns)
            while self._pending and self._pending[0].ts_ns <= self.ts_ns:
                yield heapq.heappop(self._pending).event
