"""The account state's per-side index of live orders (read by the spoofing detector) and the
compact activity window: both must agree with the plain structures they stand in for, whatever
the sequence of order events."""

from __future__ import annotations

import json
import random

from riskstream.core.state import AccountState, LiveOrder
from riskstream.core.windows import NS_PER_S, SMALL_WINDOW_ITEMS, SlidingWindow, WindowState
from riskstream.records import OrderEvent, OrderEventType, Side
from tests.factories import T0

SPEC = SlidingWindow.of_seconds(10, 2, 50)
SYMBOLS = ("AAPL", "MSFT", "TSLA")


def resting_by_filter(state: AccountState, symbol: str, side: Side) -> list[str]:
    return sorted(o.order_id for o in state.live_orders.values() if o.symbol == symbol and o.side is side)


def random_event(rng: random.Random, state: AccountState, n: int, ts: int) -> OrderEvent:
    """New orders mostly; replaces (some moving the order to another symbol or side), partial
    and full fills, cancels and rejects of live orders, and events of orders never seen."""
    live = list(state.live_orders.values())
    roll = rng.random()
    symbol, side = rng.choice(SYMBOLS), rng.choice((Side.BUY, Side.SELL))
    if not live or roll < 0.4:
        oid = f"o{n}" if rng.random() < 0.95 else f"unknown{n}"
        kind = OrderEventType.NEW if oid.startswith("o") else rng.choice(list(OrderEventType))
        return _event(kind, oid, symbol, side, 100.0, ts)
    order: LiveOrder = rng.choice(live)
    if roll < 0.55:
        moved = rng.random() < 0.3
        return _event(
            OrderEventType.REPLACE,
            order.order_id,
            symbol if moved else order.symbol,
            side if moved else order.side,
            order.qty + 50,
            ts,
        )
    if roll < 0.75:
        last_qty = order.qty if rng.random() < 0.5 else order.qty / 2
        return _event(OrderEventType.FILL, order.order_id, order.symbol, order.side, order.qty, ts, last_qty)
    kind = OrderEventType.CANCEL if roll < 0.95 else OrderEventType.REJECT
    return _event(kind, order.order_id, order.symbol, order.side, order.qty, ts)


def _event(
    kind: OrderEventType,
    oid: str,
    symbol: str,
    side: Side,
    qty: float,
    ts: int,
    last_qty: float | None = None,
) -> OrderEvent:
    fill = kind is OrderEventType.FILL
    return OrderEvent(
        kind,
        oid,
        "ACC-1",
        "T1",
        symbol,
        side,
        qty,
        100.0,
        ts,
        last_qty=(last_qty or qty) if fill else None,
        last_px=100.0 if fill else None,
    )


def test_the_per_side_index_follows_every_change_of_the_live_orders() -> None:
    """Built at a random point (first read), through a checkpoint's round trip, and over
    evictions by the window's item cap: every read equals filtering the live orders."""
    for seed in range(20):
        rng = random.Random(seed)
        state = AccountState()
        first_read = rng.randint(0, 200)
        ts = T0
        for n in range(600):
            ts += rng.randint(1, 50) * 1_000_000
            state.apply(random_event(rng, state, n, ts), SPEC, 0.1)
            if n == 300:
                state = AccountState.from_json(json.loads(state.to_bytes()))
            if n >= first_read:
                for symbol in SYMBOLS:
                    for side in Side:
                        got = sorted(o.order_id for o in state.resting_on(symbol, side))
                        assert got == resting_by_filter(state, symbol, side), (seed, n)
        assert len(state.live_orders) <= SPEC.max_items


def test_a_window_read_and_encoded_the_same_as_it_grows_past_its_small_form_and_shrinks() -> None:
    """Items arrive in bursts past the small form's size, some out of order within grace, and
    leave by time and by the item cap: reads and bytes equal a plain model's."""
    rng = random.Random(3)
    spec = SlidingWindow.of_seconds(2, 1, 3 * SMALL_WINDOW_ITEMS)
    w: WindowState[int] = WindowState(lambda ts, it: json.dumps([ts, it]).encode())
    model: list[tuple[int, int]] = []
    ts = 0
    for n in range(2000):
        ts += rng.choice((1, 1, 1, 5, 400, 3000)) * 1_000_000
        at = max(0, ts - rng.randint(0, 900) * 1_000_000) if rng.random() < 0.1 else ts
        if w.aggregate(spec, at, n):
            model.append((at, n))
            model.sort(key=lambda e: e[0])
            cutoff = w.watermark_ns - spec.size_ns - spec.grace_ns
            while model and (model[0][0] < cutoff or len(model) > spec.max_items):
                model.pop(0)
        assert len(w) == len(model)
        assert list(w.items(spec, ts + NS_PER_S)) == [e for e in model if e[0] > ts + NS_PER_S - spec.size_ns]
        assert w.to_bytes() == b'{"w":%d,"i":[%s]}' % (
            w.watermark_ns,
            b",".join(json.dumps([t, it]).encode() for t, it in model),
        )
