"""Spoofing and layering: large orders on one side, cancelled within seconds, while the account
trades on the other side.

Evaluated on every cancel and fill; it fires when the pattern is complete, i.e. none of the
far-side orders that were resting when the account got filled is still live. A market maker who
cancels most quotes also fills other orders on the far side, which clears the account; a spoof
order the market took a sliver of (fills of the cancelled orders themselves, up to
``spoof_max_far_fill_share`` of their size) is still a spoof.
Several distinct price levels in the cancelled set make it layering.
"""

from __future__ import annotations

from collections import Counter

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, Activity, ActivityItem, side_key
from riskstream.core.windows import NS_PER_S
from riskstream.records import (
    AlertEntity,
    Category,
    Evidence,
    OrderEvent,
    OrderEventType,
    Side,
    WindowBounds,
)


def _symbol_of(item: ActivityItem) -> str:
    return item.symbol


def _large_order_qty(side: Side, symbol: str, state: AccountState, ctx: DetectionContext) -> float:
    """Smallest order that counts as able to move the visible book: a multiple of the typical
    displayed size at the touch (of this quote's size on ``side`` before there is a baseline)."""
    market = ctx.market.get(symbol)
    touch = 0.0
    if market is not None:
        typical = market.typical_touch()
        touch = typical if typical else market.bid_size if side is Side.BUY else market.ask_size
    if touch > 0:
        return ctx.params.spoof_min_touch_multiple * touch
    return 2.0 * state.size_in(symbol).usual_qty


def _stacked(item: ActivityItem, state: AccountState, min_levels: int) -> bool:
    """The cancelled order was one of a stack: the account still has orders on that side at
    other prices (a market maker's one quote per side is not a stack)."""
    prices = {item.price}
    for order in state.resting_on(item.symbol, item.side):
        prices.add(order.price)
        if len(prices) >= min_levels:
            return True
    return False


def peak_stack(orders: list[tuple[int, ActivityItem]], min_levels: int) -> tuple[int, float, list[int]]:
    """The largest size the account had resting at once at ``min_levels`` or more prices, from
    cancelled orders ``(cancel ts, item)``: (levels, size, indexes of the orders resting then).
    The book imbalance a layering creates is what rests together, whatever each order's size or
    lifetime."""
    edges = sorted(
        [(it.placed_ns, 1, i) for i, (_, it) in enumerate(orders)]
        + [(ts, 0, i) for i, (ts, _) in enumerate(orders)]
    )
    live: set[int] = set()
    at_price: Counter[float | None] = Counter()
    size = 0.0
    best: tuple[int, float, list[int]] = (0, 0.0, [])
    for _, opening, i in edges:
        item = orders[i][1]
        if not opening:
            if i in live:
                live.discard(i)
                size -= item.qty
                at_price[item.price] -= 1
                if not at_price[item.price]:
                    del at_price[item.price]
            continue
        live.add(i)
        size += item.qty
        at_price[item.price] += 1
        if len(at_price) >= min_levels and size > best[1]:
            best = (len(at_price), size, sorted(live))
    return best


def _two_sided(
    window: list[tuple[int, ActivityItem]],
    state: AccountState,
    symbol: str,
    near: Side,
    far_stack_qty: float,
    min_levels: int,
) -> bool:
    """A ladder on both sides is a market maker's: the account also stacks orders on the side
    it traded (withdrawn, or resting still), at least half the far stack's size."""
    near_cancels = [(ts, it) for ts, it in window if it.kind is Activity.CANCEL and it.side is near]
    if peak_stack(near_cancels, min_levels)[1] >= 0.5 * far_stack_qty:
        return True
    resting = list(state.resting_on(symbol, near))
    return (
        len({o.price for o in resting}) >= min_levels and sum(o.qty for o in resting) >= 0.5 * far_stack_qty
    )


def _pattern_can_complete(
    event: OrderEvent, state: AccountState, ctx: DetectionContext, within_ns: int
) -> bool:
    """O(1) gate so the window is scanned only where a pattern can end: the account got a fill
    on one side recently and none on the other (a market maker trades both), and the event is
    a large, quick cancel on the other side, or a fill shortly after one."""
    far = event.side if event.event is OrderEventType.CANCEL else event.side.opposite
    span_start = event.ts_ns - 2 * within_ns
    if state.last_fill_ns.get(side_key(event.symbol, far.opposite), -1) < span_start:
        return False
    if event.event is OrderEventType.CANCEL:
        newest = state.activity.newest()
        if newest is None or newest[1].order_id != event.order_id:
            return False
        ts, item = newest
        large = item.qty >= _large_order_qty(item.side, item.symbol, state, ctx)
        spoof_like = large and ts - item.placed_ns <= within_ns
        key = side_key(item.symbol, item.side)
        unstacking = state.spoof_marks.get(key, -1) >= span_start
        if not (spoof_like or unstacking or _stacked(item, state, ctx.params.layering_min_levels)):
            return False
        state.spoof_marks[key] = ts
        return True
    return state.spoof_marks.get(side_key(event.symbol, far), -1) >= span_start


def _still_resting(state: AccountState, symbol: str, far: Side, last_near_fill_ns: int) -> bool:
    """A far-side order that was resting at the last near-side fill and still is: the pattern
    has not completed (a market maker's quotes, mostly)."""
    return any(o.placed_ns <= last_near_fill_ns for o in state.resting_on(symbol, far))


def _sides_still_resting(
    event: OrderEvent, state: AccountState, ctx: DetectionContext, within_ns: int
) -> tuple[set[Side], set[Side]]:
    """(the sides the account was filled on in the window, those of them whose other side still
    has an order resting since their last fill: their pattern has not completed), read off the
    newest fills alone. The window is read newest first and only until a fill of each side is
    seen, so a market maker's thousands of quotes are not walked on every cancel."""
    last_fill: dict[Side, int] = {}
    for ts, it in state.activity.newest_of(ctx.window, 2 * within_ns, event.ts_ns, _symbol_of, event.symbol):
        if it.kind is Activity.FILL and it.side not in last_fill and it.order_id not in state.flagged:
            last_fill[it.side] = ts
            if len(last_fill) == 2:
                break
    resting = {
        near for near, ts in last_fill.items() if _still_resting(state, event.symbol, near.opposite, ts)
    }
    return set(last_fill), resting


def detect_spoofing(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    if event.event not in (OrderEventType.CANCEL, OrderEventType.FILL):
        return []
    p = ctx.params
    symbol = event.symbol
    within_ns = int(p.spoof_cancel_within_s * NS_PER_S)
    if not _pattern_can_complete(event, state, ctx, within_ns):
        return []
    filled, resting = _sides_still_resting(event, state, ctx, within_ns)
    if resting == filled:
        return []
    # Every part of one pattern lies within two order lifetimes of the event that completes it.
    window = [
        (ts, it)
        for ts, it in state.activity.recent_of(ctx.window, 2 * within_ns, event.ts_ns, _symbol_of, symbol)
        if it.order_id not in state.flagged
    ]
    fills = [(ts, it) for ts, it in window if it.kind is Activity.FILL]
    if not fills:
        return []
    candidates = []
    for near in sorted({it.side for _, it in fills}):
        far = near.opposite
        near_fills = [(ts, it) for ts, it in fills if it.side is near]
        far_fills = [it for _, it in fills if it.side is far]
        if near in resting:
            continue
        first_fill_ns = min(ts for ts, _ in near_fills)
        last_fill_ns = max(ts for ts, _ in near_fills)
        min_qty = _large_order_qty(far, symbol, state, ctx)
        withdrawn = [
            (ts, it)
            for ts, it in window
            if it.kind is Activity.CANCEL
            and it.side is far
            and it.placed_ns <= last_fill_ns
            and ts >= first_fill_ns - within_ns
        ]
        _, stacked_qty, stack = peak_stack(withdrawn, p.layering_min_levels)
        layered = stacked_qty >= min_qty and not _two_sided(
            window, state, symbol, near, stacked_qty, p.layering_min_levels
        )
        cancelled: list[tuple[int, ActivityItem]]
        if layered:
            cancelled = [withdrawn[i] for i in stack]
        else:
            cancelled = [
                (ts, it) for ts, it in withdrawn if it.qty >= min_qty and ts - it.placed_ns <= within_ns
            ]
            if len(cancelled) < p.spoof_min_cancelled_orders:
                continue
        cancelled_qty = sum(it.qty for _, it in cancelled)
        filled_qty = sum(it.qty for _, it in near_fills)
        spoof_ids = {it.order_id for _, it in cancelled}
        sliver_qty = sum(it.qty for it in far_fills if it.order_id in spoof_ids)
        other_far_fill = any(it.order_id not in spoof_ids for it in far_fills)
        if other_far_fill or sliver_qty > p.spoof_max_far_fill_share * cancelled_qty:
            # Trading both sides with other orders is making a market; a spoof order is
            # meant not to trade, though the market may take a sliver of it.
            continue
        ratio = cancelled_qty / filled_qty
        if ratio < p.spoof_volume_ratio:
            continue
        levels = {it.price for _, it in cancelled if it.price is not None}
        layering = layered or len(levels) >= p.layering_min_levels
        order_ids = tuple(it.order_id for _, it in sorted(cancelled + near_fills, key=lambda x: x[0]))
        start_ns = min(min(it.placed_ns for _, it in cancelled), first_fill_ns)
        max_life_s = max(ts - it.placed_ns for ts, it in cancelled) / NS_PER_S
        strength = ratio / p.spoof_volume_ratio
        if layering:
            strength = max(strength, len(levels) / p.layering_min_levels)
        category = Category.LAYERING if layering else Category.SPOOFING
        candidates.append(
            Candidate(
                category=category,
                entity=AlertEntity(event.account, symbol),
                window=WindowBounds(start_ns, event.ts_ns),
                evidence=Evidence(
                    features={
                        "cancelled_orders": float(len(cancelled)),
                        "cancelled_qty": cancelled_qty,
                        "filled_qty": filled_qty,
                        "cancel_to_fill_volume": round(ratio, 4),
                        "price_levels": float(len(levels)),
                        "max_order_lifetime_s": round(max_life_s, 6),
                    },
                    order_ids=order_ids,
                    summary=(
                        f"{len(cancelled)} {far.value} orders ({cancelled_qty:g}) over "
                        f"{len(levels)} price level(s) cancelled within {max_life_s:.2f}s "
                        f"around {near.value} fills of {filled_qty:g}"
                    ),
                ),
                strength=strength,
            )
        )
        state.flagged.update(order_ids)
    return candidates
