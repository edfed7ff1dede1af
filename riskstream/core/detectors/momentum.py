"""Momentum ignition: a burst of aggressive orders on one side takes out the visible liquidity
and moves the price by several spreads, then the same account trades the other way within
seconds, selling into (or buying back from) the move it started.

Fires on the reversing fill, which completes the pattern. An honest momentum trader buys
aggressively too, but holds; a hedger trades both ways, but without the burst.
"""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, AggressiveOrder
from riskstream.core.windows import NS_PER_S
from riskstream.records import AlertEntity, Category, Evidence, OrderEvent, OrderEventType, WindowBounds


def _latest_burst(orders: list[AggressiveOrder], burst_ns: int) -> list[AggressiveOrder]:
    """The newest run of orders whose span is within ``burst_ns``, oldest first."""
    if not orders:
        return []
    last = orders[-1].ts_ns
    burst = [o for o in orders if last - o.ts_ns <= burst_ns]
    return burst


def detect_momentum_ignition(
    event: OrderEvent, state: AccountState, ctx: DetectionContext
) -> list[Candidate]:
    if event.event is not OrderEventType.FILL or not state.aggressive:
        return []
    p = ctx.params
    reversal_ns = int(p.ignition_reversal_s * NS_PER_S)
    burst_side = event.side.opposite
    orders = [
        o
        for o in state.aggressive
        if o.symbol == event.symbol
        and o.side is burst_side
        and o.order_id not in state.flagged
        and event.ts_ns - reversal_ns <= o.ts_ns <= event.ts_ns
    ]
    burst = _latest_burst(orders, int(p.ignition_burst_s * NS_PER_S))
    if len(burst) < p.ignition_min_orders:
        return []
    first = burst[0]
    market = ctx.market.get(event.symbol)
    mid = market.mid if market is not None else None
    if mid is None or first.spread <= 0:
        return []
    burst_qty = sum(o.qty for o in burst)
    touch_multiple = burst_qty / first.touch_qty if first.touch_qty > 0 else float("inf")
    move = (mid - first.mid) * burst_side.sign
    move_spreads = move / first.spread
    elapsed_s = (event.ts_ns - first.ts_ns) / NS_PER_S
    needed = (
        market.significant_move(
            elapsed_s, p.ignition_min_move_spreads, p.ignition_min_move_sigmas, first.spread
        )
        if market is not None
        else 0.0
    )
    if touch_multiple < p.ignition_min_touch_multiple or move < needed:
        return []
    order_ids = (*(o.order_id for o in burst), event.order_id)
    state.flagged.update(order_ids)
    reversal_s = (event.ts_ns - burst[-1].ts_ns) / NS_PER_S
    strength = max(1.0, min(touch_multiple / p.ignition_min_touch_multiple, move / needed))
    return [
        Candidate(
            category=Category.MOMENTUM_IGNITION,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(first.ts_ns, event.ts_ns),
            evidence=Evidence(
                features={
                    "burst_orders": float(len(burst)),
                    "burst_qty": burst_qty,
                    "touch_multiple": round(touch_multiple, 4),
                    "mid_before": first.mid,
                    "mid_now": mid,
                    "move_spreads": round(move_spreads, 4),
                    "reversal_after_s": round(reversal_s, 6),
                    "reversal_qty": event.last_qty or 0.0,
                },
                order_ids=order_ids,
                summary=(
                    f"{len(burst)} aggressive {burst_side.value} orders ({burst_qty:g}, "
                    f"{touch_multiple:.1f}x the touch) moved the mid {move_spreads:.1f} spreads, "
                    f"then a {event.side.value} fill {reversal_s:.2f}s later"
                ),
            ),
            strength=strength,
        )
    ]
