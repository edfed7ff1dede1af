"""Per-key state the detectors read: one :class:`AccountState` per account (trade-logs) and one
:class:`SymbolState` per symbol (market-data).

State is applied event by event in memory and persisted once per micro-batch, so a batch of a
thousand events costs one changelog write per key touched, not one per event.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, MutableSet, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from riskstream.core.windows import NS_PER_S, SlidingWindow, WindowState
from riskstream.records import OrderEvent, OrderEventType, Print, Quote, Side
from riskstream.records.immutable import immutable
from riskstream.records.market_data import MarketEvent


class Activity(StrEnum):
    NEW = "new"
    CANCEL = "cancel"
    FILL = "fill"


@immutable
class LiveOrder:
    order_id: str
    symbol: str
    side: Side
    qty: float
    price: float | None
    placed_ns: int


def kept_dumps(obj: Any) -> bytes:
    """orjson's JSON for bytes held in memory for long: orjson hands back a bytes object that
    still owns its whole working buffer (about 4 KB here, whatever the JSON's length; measured
    with tracemalloc on orjson 3.13), which for an activity window's items made up two thirds of
    an account's resident state. A copy of exactly the JSON's length is kept instead."""
    return memoryview(orjson.dumps(obj)).tobytes()


class KeySet(MutableSet[str]):
    """A set of keys that costs a pointer until it holds one: an account's flagged orders, open
    breaches and open patterns are empty for most accounts, and an empty ``set`` is 216 bytes,
    three of them a sixth of an ordinary account's resident state."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._keys: set[str] | None = set(keys) or None

    def __contains__(self, key: object) -> bool:
        return self._keys is not None and key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys or ())

    def __len__(self) -> int:
        return len(self._keys) if self._keys is not None else 0

    def add(self, key: str) -> None:
        if self._keys is None:
            self._keys = set()
        self._keys.add(key)

    def discard(self, key: str) -> None:
        if self._keys is not None:
            self._keys.discard(key)
            if not self._keys:
                self._keys = None

    def update(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.add(key)

    def keep_only(self, keys: Set[str]) -> None:
        """Drop every key not in ``keys``."""
        if self._keys is not None:
            self._keys &= keys
            if not self._keys:
                self._keys = None

    def __repr__(self) -> str:
        return f"KeySet({sorted(self)!r})"


@immutable
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
        return kept_dumps([ts_ns, self.to_json()])

    def to_json(self) -> list[Any]:
        # The members themselves: StrEnums, written as their values by orjson and json alike,
        # without the enum's slow ``value`` property on every event.
        return [
            self.kind,
            self.order_id,
            self.symbol,
            self.side,
            self.qty,
            self.price,
            self.placed_ns,
            self.counterparty,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> ActivityItem:
        kind, oid, sym, side, qty, price, placed, cp = row
        return cls(Activity(kind), oid, sym, Side(side), qty, price, placed, cp)


def side_key(symbol: str, side: Side) -> str:
    """``symbol|side``: the key of an account's per-side records (fills, spoof marks, aggressive
    orders)."""
    return f"{symbol}|{side}"


@immutable
class AggressiveOrder:
    """A marketable order (buy at or above the ask, sell at or below the bid) and the market it
    met: the raw material of momentum ignition and marking the close."""

    ts_ns: int
    order_id: str
    symbol: str
    side: Side
    qty: float
    mid: float
    """Mid just before the order."""
    spread: float
    """Quoted spread just before the order (price units)."""
    touch_qty: float
    """Typical displayed size at the touch (that side's size when no baseline yet)."""
    market_volume: float
    """The symbol's cum_volume before the order: shares of volume are differences of these."""

    def to_json(self) -> list[Any]:
        return [
            self.ts_ns,
            self.order_id,
            self.symbol,
            self.side.value,
            self.qty,
            self.mid,
            self.spread,
            self.touch_qty,
            self.market_volume,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> AggressiveOrder:
        ts, oid, sym, side, qty, mid, spread, touch, volume = row
        return cls(ts, oid, sym, Side(side), qty, mid, spread, touch, volume)


def _aggressive_from_json(obj: dict[str, list[Any]] | list[list[Any]]) -> dict[str, deque[AggressiveOrder]]:
    """Per-side records; a state checkpointed before they were split by side (one list, all
    symbols) is split on load."""
    if isinstance(obj, dict):
        return {key: deque(AggressiveOrder.from_json(r) for r in rows) for key, rows in obj.items()}
    records: dict[str, deque[AggressiveOrder]] = {}
    for row in sorted(obj, key=lambda r: int(r[0])):
        order = AggressiveOrder.from_json(row)
        records.setdefault(side_key(order.symbol, order.side), deque()).append(order)
    return records


@dataclass(slots=True)
class RampEpisode:
    """One position from flat to its peak and back, per symbol, for the ramping detector."""

    sign: int
    """+1 long, -1 short."""
    start_ns: int
    start_mid: float
    start_volume: float
    """The symbol's cum_volume before the first fill."""
    start_variance: float
    """The symbol's sampled variance rate when the episode began: the move is judged against
    the volatility from before the push, which the push itself inflates."""
    peak_qty: float = 0.0
    peak_volume: float = 0.0
    """The symbol's cum_volume when the peak was reached."""
    peak_ns: int = 0
    build_fills: int = 0
    build_order_ids: list[str] = field(default_factory=list)
    unwind_order_ids: list[str] = field(default_factory=list)
    peak_mid: float = 0.0
    """The mid when the peak was reached: how far the build pushed the price, before the
    unwind's own selling gives some of it back (0: not known, a state from before it was kept)."""
    base_qty: float = 0.0
    """Position (in the episode's direction) already held when the build began: what is left
    of an earlier ramp or an old holding, not part of this build's share of the tape."""

    def to_json(self) -> list[Any]:
        return [
            self.sign,
            self.start_ns,
            self.start_mid,
            self.start_volume,
            self.start_variance,
            self.peak_qty,
            self.peak_volume,
            self.peak_ns,
            self.build_fills,
            self.build_order_ids,
            self.unwind_order_ids,
            self.peak_mid,
            self.base_qty,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> RampEpisode:
        sign, start_ns, start_mid, start_volume, start_var, peak_qty, peak_volume, peak_ns, fills = row[:9]
        build, unwind = row[9:11]
        peak_mid = float(row[11]) if len(row) > 11 else 0.0
        base_qty = float(row[12]) if len(row) > 12 else 0.0
        return cls(
            sign,
            start_ns,
            start_mid,
            start_volume,
            start_var,
            peak_qty,
            peak_volume,
            peak_ns,
            fills,
            list(build),
            list(unwind),
            peak_mid,
            base_qty,
        )


ACCOUNT_CODEC_VERSION = 2
"""Sliced by concern (orders, limits, fat_finger, spoofing, momentum, stuffing, ramping,
patterns), each slice versioned; version 1 was one flat map of short keys (still read)."""
PEAK_DECAY = 0.998
"""Per order: the recent-largest order size halves in about 350 orders."""
SLICE_VERSIONS: dict[str, tuple[int, ...]] = {"fat_finger": (1, 2, 3), "stuffing": (1, 2)}
"""Slice versions read, where not only 1. fat_finger 1 held one account-wide size history,
which cannot be split by symbol: it is dropped, and each symbol's yardstick is learnt again
(:data:`~riskstream.settings.DetectorSettings.fat_finger_min_history` orders). fat_finger 2
had no size dispersion: it is learnt again from the next orders, 0 until then (the size and
peak tests alone decide, as they did). stuffing 1 had no message-rate baselines: they start
empty."""


@dataclass(slots=True)
class MessageRate:
    """An account's own pace of order messages in one symbol, before the span being judged: a
    market maker re-quoting faster in a volatile minute is at a small multiple of its own pace,
    a burst of stuffing at a huge one."""

    count: float = 0.0
    """Decaying count (time constant ``tau_s``) of messages older than the span."""
    last_ns: int = 0
    first_ns: int = 0

    def add(self, ts_ns: int, tau_s: float) -> None:
        if self.first_ns == 0:
            self.first_ns = ts_ns
        if ts_ns > self.last_ns:
            if self.last_ns:
                self.count *= math.exp(-(ts_ns - self.last_ns) / (tau_s * NS_PER_S))
            self.last_ns = ts_ns
        self.count += 1.0

    def per_s(self, now_ns: int, tau_s: float) -> float:
        """Messages per second over the history (0: none yet)."""
        if self.first_ns == 0:
            return 0.0
        age_s = max((now_ns - self.first_ns) / NS_PER_S, 1e-3)
        decayed = self.count * math.exp(-max(now_ns - self.last_ns, 0) / (tau_s * NS_PER_S))
        return decayed / (tau_s * (1.0 - math.exp(-age_s / tau_s)))

    def to_json(self) -> list[float]:
        return [self.count, self.last_ns, self.first_ns]

    @classmethod
    def from_json(cls, row: list[float]) -> MessageRate:
        return cls(float(row[0]), int(row[1]), int(row[2]))


@dataclass(slots=True)
class SizeProfile:
    """An account's order sizes in one symbol: the yardstick for 'far too large'."""

    usual_qty: float = 0.0
    """Geometric EWMA of order size (a running median for the log-normal sizes of real order
    flow): an occasional block does not drag it up as an arithmetic mean would."""
    orders_seen: int = 0
    large_qty: float = 0.0
    """The recent largest order, decaying by PEAK_DECAY per order: an account that sends
    blocks is not fat-fingering its next block. An order flagged as a fat finger counts only
    once it trades."""
    log_dispersion: float = 0.0
    """EWMA of |ln(size / usual size)|: how far this account's sizes stray from its habit. A
    retail account whose sizes spread over a decade sends a 10x order now and then; a desk
    that always sends one lot does not. Times sqrt(pi/2) it estimates the sigma of log size."""

    def observe(self, qty: float, alpha: float) -> None:
        qty = max(qty, 1e-9)
        self.orders_seen += 1
        # A plain mean of the first 1/alpha orders, an EWMA after: the first order does not
        # weigh on the yardstick for hundreds of orders.
        weight = max(alpha, 1.0 / self.orders_seen)
        if self.orders_seen == 1:
            self.usual_qty = qty
        else:
            # The deviation from the yardstick as it stood: the order is judged before it moves it.
            deviation = abs(math.log(qty / self.usual_qty))
            dispersion_weight = max(alpha, 1.0 / (self.orders_seen - 1))
            self.log_dispersion += dispersion_weight * (deviation - self.log_dispersion)
            self.usual_qty = math.exp((1 - weight) * math.log(self.usual_qty) + weight * math.log(qty))
        self.large_qty = max(qty, self.large_qty * PEAK_DECAY)

    def log_sigma(self) -> float:
        """The spread of the account's log sizes, as a normal sigma (0 until a second order)."""
        return self.log_dispersion * LOG_DISPERSION_TO_SIGMA

    def traded(self, qty: float) -> None:
        self.large_qty = max(self.large_qty, qty)

    def to_json(self) -> list[float]:
        return [self.usual_qty, self.orders_seen, self.large_qty, self.log_dispersion]

    @classmethod
    def from_json(cls, row: list[float]) -> SizeProfile:
        dispersion = float(row[3]) if len(row) > 3 else 0.0
        return cls(float(row[0]), int(row[1]), float(row[2]), dispersion)


LOG_DISPERSION_TO_SIGMA = math.sqrt(math.pi / 2)
"""Mean absolute deviation to sigma, for normally distributed log sizes."""


def _sizes_from_json(slice_: dict[str, Any]) -> dict[str, SizeProfile]:
    if slice_.get("v", 1) == 1:
        return {}
    return {sym: SizeProfile.from_json(row) for sym, row in slice_["symbols"].items()}


MAX_EPISODE_ORDER_IDS = 50
"""Order ids an episode keeps as evidence (the first ones); the count is a feature."""


def _index(index: dict[str, dict[str, LiveOrder]], order: LiveOrder) -> None:
    index.setdefault(side_key(order.symbol, order.side), {})[order.order_id] = order


def _encode_activity(ts_ns: int, item: ActivityItem) -> bytes:
    return item.encode(ts_ns)


@dataclass(slots=True)
class AccountState:
    live_orders: dict[str, LiveOrder] = field(default_factory=dict)
    """order id -> the order, oldest placed first (a plain dict keeps insertion order and is a
    third of an OrderedDict's size; a replace keeps the order's place)."""
    activity: WindowState[ActivityItem] = field(default_factory=lambda: WindowState(_encode_activity))
    positions: dict[str, float] = field(default_factory=dict)
    """Net quantity per symbol, from fills."""
    last_fill_px: dict[str, float] = field(default_factory=dict)
    """Mark of last resort for exposure when no quote is known."""
    sizes: dict[str, SizeProfile] = field(default_factory=dict)
    """symbol -> the account's order sizes in that symbol: a desk trading 100-share lots in a
    $600 name and 50 000-share lots in a $4 name has two yardsticks, not one average."""
    notional: SizeProfile = field(default_factory=SizeProfile)
    """The notionals of the account's orders that traded, across symbols, one per fill: what
    the account is known to mean (a resting stink bid that never trades is not)."""

    open_breaches: KeySet = field(default_factory=KeySet)
    """Limit keys in breach now: a breach alerts once, when it starts."""
    flagged: KeySet = field(default_factory=KeySet)
    """Order ids already used as evidence by a pattern detector (pruned with the window)."""
    late_events: int = 0
    last_fill_ns: dict[str, int] = field(default_factory=dict)
    """"symbol|side" -> event time of the latest fill: O(1) gates for the pattern detectors."""
    spoof_marks: dict[str, int] = field(default_factory=dict)
    """"symbol|side" -> event time of the latest large, quick cancel on that side: the
    spoofing detector only looks at a window where one is recent."""
    avg_cost: dict[str, float] = field(default_factory=dict)
    """Average entry price of the open position per symbol."""
    realized_pnl: float = 0.0
    aggressive: dict[str, deque[AggressiveOrder]] = field(default_factory=dict)
    """:func:`side_key` -> recent marketable orders in that symbol and side, in event-time order,
    oldest first (pruned by the detectors' longest look-back): readers look at one symbol and
    side and stop at the first order too old."""
    messages: dict[str, list[int]] = field(default_factory=dict)
    """symbol -> event times of recent order messages (new, replace, cancel)."""
    message_rates: dict[str, MessageRate] = field(default_factory=dict)
    """symbol -> the account's pace of messages before the recent span."""
    ramps: dict[str, RampEpisode] = field(default_factory=dict)
    """symbol -> the open position episode."""
    open_patterns: KeySet = field(default_factory=KeySet)
    """Episode keys of patterns that alert once per episode (stuffing, marking the close)."""
    _live_by_side: dict[str, dict[str, LiveOrder]] | None = field(default=None, compare=False, repr=False)
    """:func:`side_key` -> the live orders on that side: built on the first :meth:`resting_on`,
    then kept in step with every change of ``live_orders``. A market maker's hundreds of quotes
    are not walked on every cancel to find one symbol's side. Memory only, never encoded: an
    account no detector asks costs a pointer."""

    def resting_on(self, symbol: str, side: Side) -> Iterable[LiveOrder]:
        """The live orders of ``symbol`` on ``side``, in the order they came to that side."""
        index = self._live_by_side
        if index is None:
            index = self._live_by_side = {}
            for order in self.live_orders.values():
                _index(index, order)
        return index.get(side_key(symbol, side), {}).values()

    def _put_live(self, order: LiveOrder) -> None:
        old = self.live_orders.get(order.order_id)
        self.live_orders[order.order_id] = order
        index = self._live_by_side
        if index is not None:
            if old is not None and (old.symbol, old.side) != (order.symbol, order.side):
                self._unindex(old)
            _index(index, order)

    def _drop_live(self, order_id: str) -> LiveOrder | None:
        old = self.live_orders.pop(order_id, None)
        if old is not None and self._live_by_side is not None:
            self._unindex(old)
        return old

    def _unindex(self, order: LiveOrder) -> None:
        assert self._live_by_side is not None
        key = side_key(order.symbol, order.side)
        orders = self._live_by_side.get(key)
        if orders is not None:
            orders.pop(order.order_id, None)
            if not orders:
                del self._live_by_side[key]

    def size_in(self, symbol: str) -> SizeProfile:
        """The account's order sizes in ``symbol`` (empty before its first order there)."""
        return self.sizes.get(symbol) or SizeProfile()

    def unrealized_pnl(self, marks: Callable[[str], float]) -> float:
        return sum(qty * (marks(sym) - self.avg_cost.get(sym, 0.0)) for sym, qty in self.positions.items())

    def _book_fill(self, symbol: str, signed_qty: float, price: float) -> None:
        """Average-cost accounting: a fill that reduces the position realises P&L."""
        pos = self.positions.get(symbol, 0.0)
        avg = self.avg_cost.get(symbol, 0.0)
        if pos == 0 or (pos > 0) == (signed_qty > 0):
            total = abs(pos) + abs(signed_qty)
            self.avg_cost[symbol] = (abs(pos) * avg + abs(signed_qty) * price) / total
        else:
            closed = min(abs(signed_qty), abs(pos))
            self.realized_pnl += closed * (price - avg) * (1 if pos > 0 else -1)
            if abs(signed_qty) > abs(pos):
                self.avg_cost[symbol] = price
            elif abs(signed_qty) == abs(pos):
                self.avg_cost.pop(symbol, None)
        new_pos = pos + signed_qty
        if new_pos == 0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = new_pos

    def apply(self, event: OrderEvent, window: SlidingWindow, size_alpha: float) -> bool:
        """Fold one order event in; False when it arrived later than the window's grace."""
        ts = event.ts_ns
        kind = event.event
        if kind is OrderEventType.NEW:
            self._put_live(LiveOrder(event.order_id, event.symbol, event.side, event.qty, event.price, ts))
            while len(self.live_orders) > window.max_items:
                self._drop_live(next(iter(self.live_orders)))

            item = ActivityItem(
                Activity.NEW, event.order_id, event.symbol, event.side, event.qty, event.price, ts
            )
        elif kind is OrderEventType.REPLACE:
            old = self.live_orders.get(event.order_id)
            placed = old.placed_ns if old else ts
            self._put_live(
                LiveOrder(event.order_id, event.symbol, event.side, event.qty, event.price, placed)
            )
            return True
        elif kind is OrderEventType.CANCEL:
            old = self._drop_live(event.order_id)
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
                    self._drop_live(event.order_id)
                else:
                    self._put_live(
                        LiveOrder(old.order_id, old.symbol, old.side, remaining, old.price, old.placed_ns)
                    )
            self._book_fill(event.symbol, event.side.sign * event.last_qty, event.last_px)
            # An order that trades in this name sets the recent largest there (a desk repeating
            # a size in one name means it). Across names only unflagged fills count: an extra
            # zero that traded in one name is no licence for the next name's extra zero.
            self.sizes.setdefault(event.symbol, SizeProfile()).traded(event.qty)
            if event.order_id not in self.flagged:
                self.notional.observe(event.qty * event.last_px, size_alpha)
            self.last_fill_px[event.symbol] = event.last_px
            key = side_key(event.symbol, event.side)
            self.last_fill_ns[key] = max(ts, self.last_fill_ns.get(key, 0))
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
            self._drop_live(event.order_id)
            return True
        accepted = self.activity.aggregate(window, ts, item)
        if not accepted:
            self.late_events += 1
        elif len(self.flagged) > window.max_items:
            current = {it.order_id for _, it in self.activity.items(window)}
            self.flagged.keep_only(current)
        return accepted

    def to_bytes(self) -> bytes:
        """The whole state as JSON (codec version :data:`ACCOUNT_CODEC_VERSION`); the window
        is spliced in from its cached encodings."""
        head = orjson.dumps(self._slices())
        return head[:-1] + b',"window":' + self.activity.to_bytes() + b"}"

    def to_json(self) -> dict[str, Any]:
        return dict(json.loads(self.to_bytes()))

    def _slices(self) -> dict[str, Any]:
        """One named slice per concern, each with its own version, so that a detector's fields
        can change without touching another's, and an old slice is read or refused knowingly."""
        return {
            "v": ACCOUNT_CODEC_VERSION,
            "orders": {
                "v": 1,
                "live": [
                    [o.order_id, o.symbol, o.side.value, o.qty, o.price, o.placed_ns]
                    for o in self.live_orders.values()
                ],
                "flagged": sorted(self.flagged),
                "late_events": self.late_events,
            },
            "limits": {
                "v": 1,
                "positions": self.positions,
                "avg_cost": self.avg_cost,
                "realized_pnl": self.realized_pnl,
                "last_fill_px": self.last_fill_px,
                "open_breaches": sorted(self.open_breaches),
            },
            "fat_finger": {
                "v": 3,
                "symbols": {sym: size.to_json() for sym, size in self.sizes.items()},
                "notional": self.notional.to_json(),
            },
            "spoofing": {"v": 1, "marks": self.spoof_marks, "last_fill_ns": self.last_fill_ns},
            "momentum": {
                "v": 1,
                "aggressive": {key: [a.to_json() for a in record] for key, record in self.aggressive.items()},
            },
            "stuffing": {
                "v": 2,
                "messages": {sym: list(times) for sym, times in self.messages.items()},
                "rates": {sym: rate.to_json() for sym, rate in self.message_rates.items()},
            },
            "ramping": {"v": 1, "episodes": {sym: ep.to_json() for sym, ep in self.ramps.items()}},
            "patterns": {"v": 1, "open": sorted(self.open_patterns)},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> AccountState:
        version = obj.get("v", 1)
        if version == 1:
            return cls._from_v1(obj)
        if version != ACCOUNT_CODEC_VERSION:
            raise ValueError(f"account state codec version {version} is not {ACCOUNT_CODEC_VERSION}")
        for name, slice_ in obj.items():
            want = SLICE_VERSIONS.get(name, (1,))
            if isinstance(slice_, dict) and slice_.get("v", 1) not in want and name != "window":
                raise ValueError(f"account state slice {name!r} version {slice_['v']} is not one of {want}")
        orders, limits, sizing = obj["orders"], obj["limits"], obj["fat_finger"]
        spoofing, momentum = obj["spoofing"], obj["momentum"]
        return cls(
            live_orders=dict(
                (row[0], LiveOrder(row[0], row[1], Side(row[2]), row[3], row[4], row[5]))
                for row in orders["live"]
            ),
            activity=WindowState.from_json(obj["window"], _encode_activity, ActivityItem.from_json),
            flagged=KeySet(orders["flagged"]),
            late_events=orders["late_events"],
            positions=dict(limits["positions"]),
            avg_cost=dict(limits["avg_cost"]),
            realized_pnl=limits["realized_pnl"],
            last_fill_px=dict(limits["last_fill_px"]),
            open_breaches=KeySet(limits["open_breaches"]),
            sizes=_sizes_from_json(sizing),
            notional=SizeProfile.from_json(sizing["notional"]) if sizing.get("v", 1) >= 2 else SizeProfile(),
            spoof_marks=dict(spoofing["marks"]),
            last_fill_ns=dict(spoofing["last_fill_ns"]),
            aggressive=_aggressive_from_json(momentum["aggressive"]),
            messages={sym: list(t) for sym, t in obj["stuffing"]["messages"].items()},
            message_rates={
                sym: MessageRate.from_json(r) for sym, r in obj["stuffing"].get("rates", {}).items()
            },
            ramps={sym: RampEpisode.from_json(r) for sym, r in obj["ramping"]["episodes"].items()},
            open_patterns=KeySet(obj["patterns"]["open"]),
        )

    @classmethod
    def _from_v1(cls, obj: dict[str, Any]) -> AccountState:
        """States checkpointed before the sliced codec: one flat map of short keys."""
        live = dict(
            (row[0], LiveOrder(row[0], row[1], Side(row[2]), row[3], row[4], row[5])) for row in obj["o"]
        )
        return cls(
            live_orders=live,
            activity=WindowState.from_json(obj["a"], _encode_activity, ActivityItem.from_json),
            positions=dict(obj["p"]),
            last_fill_px=dict(obj["m"]),
            open_breaches=KeySet(obj["b"]),
            flagged=KeySet(obj["f"]),
            late_events=obj["l"],
            spoof_marks=dict(obj.get("k", {})),
            last_fill_ns=dict(obj.get("lf", {})),
            avg_cost=dict(obj.get("ac", {})),
            realized_pnl=obj.get("rp", 0.0),
            aggressive=_aggressive_from_json(obj.get("ag", {})),
            messages={sym: list(t) for sym, t in obj.get("ms", {}).items()},
            ramps={sym: RampEpisode.from_json(r) for sym, r in obj.get("rm", {}).items()},
            open_patterns=KeySet(obj.get("op", [])),
        )


@dataclass(slots=True)
class SymbolState:
    """The current market in one symbol, as far as market-data has told us, and the decaying
    sums the market-shock, ramping and stuffing detectors compare against.

    Each ``*_fast``/``*_slow`` value is an exponentially decaying sum with time constant
    ``fast_s``/``slow_s`` (event time), so a rate is the sum over its elapsed-time normaliser:
    O(1) per event, no window of past quotes to keep.
    """

    bid: float | None = None
    ask: float | None = None
    bid_size: float = 0.0
    ask_size: float = 0.0
    last_px: float | None = None
    ts_ns: int = 0
    first_ns: int = 0
    """Event time of the first market event: how much history the baselines have."""
    cum_volume: float = 0.0
    """Volume printed in the lit continuous session since the state began: participation is a
    difference of two readings. Off-book blocks and the closing auction are left out: they are
    negotiated or crossed away from the book, and an account's share of what moved the price is
    its share of the lit volume."""
    var_fast: float = 0.0
    var_slow: float = 0.0
    """Decaying sums of squared log mid returns."""
    vol_fast: float = 0.0
    vol_slow: float = 0.0
    """Decaying sums of printed volume."""
    spread_sum: float = 0.0
    touch_sum: float = 0.0
    quotes_slow: float = 0.0
    """Decaying sum of relative spreads and decaying count of quotes (their ratio: the baseline
    spread; the count over its normaliser: the normal quote-update rate)."""
    var_sampled: float = 0.0
    """Decaying sum (slow) of squared log returns of the mid sampled at least a second apart:
    the volatility to scale by sqrt(time), free of most bid-ask flicker."""
    sample_mid: float = 0.0
    sample_ns: int = 0
    prior_sample_mid: float = 0.0
    """The sample before ``sample_mid``: a move is measured from it, so that a jump that spans a
    sampling instant is not split in two."""
    prior_sample_ns: int = 0
    sample_r2: float = 0.0
    """The latest sample's squared return, as it entered ``var_sampled``."""
    last_return: float = 0.0
    """Log return of the mid at the latest quote that changed it."""
    last_return_dt_s: float = 0.0
    """Event-time seconds between that quote and the mid change before it."""
    mid_changed_ns: int = 0
    fast_s: float = 5.0
    slow_s: float = 300.0
    open_shock: bool = False
    """A market-shock episode is open: one alert per episode."""
    shock_quiet_ns: int = 0
    """Since when every shock feature has been below half its threshold (0: not quiet)."""
    close_ns: int = 0
    """The session close whose last minutes have begun (0: none yet)."""
    close_variance: float = 0.0
    """Sampled variance rate when the pre-close window opened: a push is judged against the
    volatility from before it."""

    @property
    def mid(self) -> float | None:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2.0
        return self.last_px

    @property
    def spread(self) -> float | None:
        if self.bid is not None and self.ask is not None:
            return self.ask - self.bid
        return None

    def _norm(self, tau_s: float) -> float:
        age_s = max((self.ts_ns - self.first_ns) / 1e9, 1e-3)
        return tau_s * (1.0 - math.exp(-age_s / tau_s))

    def variance_rate(self, fast: bool = False) -> float:
        """Variance of log mid returns per second."""
        tau = self.fast_s if fast else self.slow_s
        return (self.var_fast if fast else self.var_slow) / self._norm(tau)

    def sampled_variance_rate(self, before_now: bool = False) -> float:
        """Variance per second of the mid sampled a second or more apart; ``before_now``:
        without a sample taken at the latest event (a jump is judged against the volatility
        from before it, not one that already holds it)."""
        total = self.var_sampled
        if before_now and self.sample_ns == self.ts_ns:
            total = max(0.0, total - self.sample_r2)
        return total / self._norm(self.slow_s)

    def significant_move(
        self,
        seconds: float,
        min_spreads: float,
        min_sigmas: float,
        spread: float,
        variance_rate: float | None = None,
    ) -> float:
        """Smallest price move over ``seconds`` that is both ``min_spreads`` quoted spreads and
        ``min_sigmas`` of the symbol's own volatility over that time: a push, not noise, for a
        $5 stock and a $500 one alike."""
        mid = self.mid or 0.0
        rate = self.sampled_variance_rate() if variance_rate is None else variance_rate
        sigma = mid * math.sqrt(rate * max(seconds, 1.0))
        return max(min_spreads * spread, min_sigmas * sigma)

    def volume_rate(self, fast: bool = False) -> float:
        """Printed volume per second."""
        tau = self.fast_s if fast else self.slow_s
        return (self.vol_fast if fast else self.vol_slow) / self._norm(tau)

    def quote_rate(self) -> float:
        """Quote updates per second, over the baseline horizon."""
        return self.quotes_slow / self._norm(self.slow_s)

    def typical_touch(self) -> float | None:
        """Average displayed size at the touch (mean of bid and ask sizes) over the baseline
        horizon: what 'large against the book' is measured with, steadier than one quote."""
        return self.touch_sum / self.quotes_slow if self.quotes_slow > 0 else None

    def baseline_spread(self) -> float | None:
        """Average relative spread (spread / mid) over the baseline horizon."""
        return self.spread_sum / self.quotes_slow if self.quotes_slow > 0 else None

    def age_s(self) -> float:
        return (self.ts_ns - self.first_ns) / 1e9

    def recent_move(self) -> tuple[float, float]:
        """Log return of the mid since the sample before last (one to two seconds or more ago),
        and the seconds it spans: a move over a few quotes, measured on sampled mids so that
        the bid-ask flicker of one quote does not count as a move."""
        mid = self.mid
        if not mid or self.prior_sample_mid <= 0:
            return 0.0, 0.0
        return math.log(mid / self.prior_sample_mid), (self.ts_ns - self.prior_sample_ns) / 1e9

    def apply(self, event: MarketEvent, continuous: bool = True) -> None:
        """``continuous``: a print of the lit continuous session (not an off-book report or an
        auction print), the only ones that count in the volume rates the shock features use."""
        if event.ts_ns < self.ts_ns:
            return
        if self.first_ns == 0:
            self.first_ns = event.ts_ns
        dt_s = (event.ts_ns - self.ts_ns) / 1e9 if self.ts_ns else 0.0
        if dt_s > 0:
            fast = math.exp(-dt_s / self.fast_s)
            slow = math.exp(-dt_s / self.slow_s)
            self.var_fast *= fast
            self.vol_fast *= fast
            self.var_slow *= slow
            self.vol_slow *= slow
            self.spread_sum *= slow
            self.quotes_slow *= slow
            self.touch_sum *= slow
            self.var_sampled *= slow
        self.ts_ns = event.ts_ns
        if isinstance(event, Quote):
            before = self.mid if self.bid is not None else None
            self.bid, self.ask = event.bid, event.ask
            self.bid_size, self.ask_size = event.bid_size, event.ask_size
            mid = (event.bid + event.ask) / 2.0
            if mid > 0:
                self.spread_sum += (event.ask - event.bid) / mid
                self.quotes_slow += 1.0
                self.touch_sum += (event.bid_size + event.ask_size) / 2.0
            self.last_return = 0.0
            if before is not None and before > 0 and mid > 0 and mid != before:
                r = math.log(mid / before)
                self.last_return = r
                self.last_return_dt_s = (event.ts_ns - self.mid_changed_ns) / 1e9
                self.var_fast += r * r
                self.var_slow += r * r
                self.mid_changed_ns = event.ts_ns
            elif before is None:
                self.mid_changed_ns = event.ts_ns
            if mid > 0 and event.ts_ns - self.sample_ns >= NS_PER_S:
                self.sample_r2 = 0.0
                if self.sample_mid > 0:
                    r = math.log(mid / self.sample_mid)
                    self.var_sampled += r * r
                    self.sample_r2 = r * r
                self.prior_sample_mid, self.prior_sample_ns = self.sample_mid, self.sample_ns
                self.sample_mid, self.sample_ns = mid, event.ts_ns
        elif isinstance(event, Print):
            self.last_px = event.price
            if continuous:
                self.cum_volume += event.size
                self.vol_fast += event.size
                self.vol_slow += event.size

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json())

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SymbolState:
        return cls(**obj)
