"""Per-key state the detectors read: one :class:`AccountState` per account (trade-logs) and one
:class:`SymbolState` per symbol (market-data).

State is applied event by event in memory and persisted once per micro-batch, so a batch of a
thousand events costs one changelog write per key touched, not one per event.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from riskstream.core.windows import SlidingWindow, WindowState
from riskstream.records import OrderEvent, OrderEventType, Print, Quote, Side
from riskstream.records.market_data import MarketEvent


class Activity(StrEnum):
    NEW = "new"
    CANCEL = "cancel"
    FILL = "fill"


@dataclass(frozen=True, slots=True)
class LiveOrder:
    order_id: str
    symbol: str
    side: Side
    qty: float
    price: float | None
    placed_ns: int


@dataclass(frozen=True, slots=True)
class ActivityItem:
    """One order action kept in the account's window."""

    kind: Activity
    order_id: str
    symbol: str
    side: Side
    qty: float
    """Order qty for new/cancel, executed qty for a fill."""
    price: float | None
    """Limit price for new/cancel, execution price for a fill."""
    placed_ns: int
    """When the order was first placed: cancel lifetime = event ts - placed."""
    counterparty: str | None = None

    def encode(self, ts_ns: int) -> bytes:
        """``[ts, item]`` as compact JSON, the window's unit of serialisation."""
        return orjson.dumps([ts_ns, self.to_json()])

    def to_json(self) -> list[Any]:
        return [
            self.kind.value,
            self.order_id,
            self.symbol,
            self.side.value,
            self.qty,
            self.price,
            self.placed_ns,
            self.counterparty,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> ActivityItem:
        kind, oid, sym, side, qty, price, placed, cp = row
        return cls(Activity(kind), oid, sym, Side(side), qty, price, placed, cp)


def _encode_activity(ts_ns: int, item: ActivityItem) -> bytes:
    return item.encode(ts_ns)


@dataclass(slots=True)
class AccountState:
    live_orders: OrderedDict[str, LiveOrder] = field(default_factory=OrderedDict)
    activity: WindowState[ActivityItem] = field(default_factory=lambda: WindowState(_encode_activity))
    positions: dict[str, float] = field(default_factory=dict)
    """Net quantity per symbol, from fills."""
    last_fill_px: dict[str, float] = field(default_factory=dict)
    """Mark of last resort for exposure when no quote is known."""
    usual_qty: float = 0.0
    """EWMA of order size: the account's own yardstick for 'far too large'."""
    orders_seen: int = 0
    open_breaches: set[str] = field(default_factory=set)
    """Limit keys in breach now: a breach alerts once, when it starts."""
    flagged: set[str] = field(default_factory=set)
    """Order ids already used as evidence by a pattern detector (pruned with the window)."""
    late_events: int = 0
    last_fill_ns: dict[str, int] = field(default_factory=dict)
    """"symbol|side" -> event time of the latest fill: O(1) gates for the pattern detectors."""
    spoof_marks: dict[str, int] = field(default_factory=dict)
    """"symbol|side" -> event time of the latest large, quick cancel on that side: the
    spoofing detector only looks at a window where one is recent."""

    def apply(self, event: OrderEvent, window: SlidingWindow, size_alpha: float) -> bool:
        """Fold one order event in; False when it arrived later than the window's grace."""
        ts = event.ts_ns
        kind = event.event
        if kind is OrderEventType.NEW:
            self.live_orders[event.order_id] = LiveOrder(
                event.order_id, event.symbol, event.side, event.qty, event.price, ts
            )
            while len(self.live_orders) > window.max_items:
                self.live_orders.popitem(last=False)
            self.usual_qty = (
                event.qty
                if self.orders_seen == 0
                else (1 - size_alpha) * self.usual_qty + size_alpha * event.qty
            )
            self.orders_seen += 1
            item = ActivityItem(
                Activity.NEW, event.order_id, event.symbol, event.side, event.qty, event.price, ts
            )
        elif kind is OrderEventType.REPLACE:
            old = self.live_orders.get(event.order_id)
            placed = old.placed_ns if old else ts
            self.live_orders[event.order_id] = LiveOrder(
                event.order_id, event.symbol, event.side, event.qty, event.price, placed
            )
            return True
        elif kind is OrderEventType.CANCEL:
            old = self.live_orders.pop(event.order_id, None)
            placed = old.placed_ns if old else ts
            qty = old.qty if old else event.qty
            price = old.price if old else event.price
            item = ActivityItem(Activity.CANCEL, event.order_id, event.symbol, event.side, qty, price, placed)
        elif kind is OrderEventType.FILL:
            assert event.last_qty is not None and event.last_px is not None
            old = self.live_orders.get(event.order_id)
            placed = old.placed_ns if old else ts
            if old is not None:
                remaining = old.qty - event.last_qty
                if remaining <= 0:
                    del self.live_orders[event.order_id]
                else:
                    self.live_orders[event.order_id] = LiveOrder(
                        old.order_id, old.symbol, old.side, remaining, old.price, old.placed_ns
                    )
            self.positions[event.symbol] = (
                self.positions.get(event.symbol, 0.0) + event.side.sign * event.last_qty
            )
            self.last_fill_px[event.symbol] = event.last_px
            side_key = f"{event.symbol}|{event.side.value}"
            self.last_fill_ns[side_key] = max(ts, self.last_fill_ns.get(side_key, 0))
            item = ActivityItem(
                Activity.FILL,
                event.order_id,
                event.symbol,
                event.side,
                event.last_qty,
                event.last_px,
                placed,
                event.counterparty,
            )
        else:
            self.live_orders.pop(event.order_id, None)
            return True
        accepted = self.activity.aggregate(window, ts, item)
        if not accepted:
            self.late_events += 1
        elif len(self.flagged) > window.max_items:
            current = {it.order_id for _, it in self.activity.items(window)}
            self.flagged &= current
        return accepted

    def to_bytes(self) -> bytes:
        """The whole state as JSON; the window is spliced in from its cached encodings."""
        head = json.dumps(self._scalars(), separators=(",", ":")).encode()
        return head[:-1] + b',"a":' + self.activity.to_bytes() + b"}"

    def to_json(self) -> dict[str, Any]:
        return dict(json.loads(self.to_bytes()))

    def _scalars(self) -> dict[str, Any]:
        return {
            "o": [
                [o.order_id, o.symbol, o.side.value, o.qty, o.price, o.placed_ns]
                for o in self.live_orders.values()
            ],
            "p": self.positions,
            "m": self.last_fill_px,
            "u": self.usual_qty,
            "n": self.orders_seen,
            "b": sorted(self.open_breaches),
            "f": sorted(self.flagged),
            "l": self.late_events,
            "k": self.spoof_marks,
            "lf": self.last_fill_ns,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AccountState:
        live = OrderedDict(
            (row[0], LiveOrder(row[0], row[1], Side(row[2]), row[3], row[4], row[5])) for row in obj["o"]
        )
        return cls(
            live_orders=live,
            activity=WindowState.from_json(obj["a"], _encode_activity, ActivityItem.from_json),
            positions=dict(obj["p"]),
            last_fill_px=dict(obj["m"]),
            usual_qty=obj["u"],
            orders_seen=obj["n"],
            open_breaches=set(obj["b"]),
            flagged=set(obj["f"]),
            late_events=obj["l"],
            spoof_marks=dict(obj.get("k", {})),
            last_fill_ns=dict(obj.get("lf", {})),
        )


@dataclass(slots=True)
class SymbolState:
    """The current market in one symbol, as far as market-data has told us."""

    bid: float | None = None
    ask: float | None = None
    bid_size: float = 0.0
    ask_size: float = 0.0
    last_px: float | None = None
    ts_ns: int = 0

    @property
    def mid(self) -> float | None:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2.0
        return self.last_px

    def apply(self, event: MarketEvent) -> None:
        if event.ts_ns < self.ts_ns:
            return
        self.ts_ns = event.ts_ns
        if isinstance(event, Quote):
            self.bid, self.ask = event.bid, event.ask
            self.bid_size, self.ask_size = event.bid_size, event.ask_size
        elif isinstance(event, Print):
            self.last_px = event.price

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "bid": self.bid,
            "ask": self.ask,
            "bid_size": self.bid_size,
            "ask_size": self.ask_size,
            "last_px": self.last_px,
            "ts_ns": self.ts_ns,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SymbolState:
        return cls(**obj)
