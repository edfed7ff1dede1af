"""Fat-finger orders: a limit price far from the market, or a size far beyond the account's norm.

Runs before the order is folded into the account's state, so the order does not dilute the
usual size it is compared with.
"""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState
from riskstream.records import (
    AlertEntity,
    Category,
    Evidence,
    OrderEvent,
    OrderEventType,
    WindowBounds,
)


def detect_fat_finger(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    if event.event not in (OrderEventType.NEW, OrderEventType.REPLACE):
        return []
    p = ctx.params
    features: dict[str, float] = {}
    strengths: list[float] = []
    reasons: list[str] = []
    market = ctx.market.get(event.symbol)
    mid = market.mid if market is not None else None
    if event.price is not None and mid is not None and mid > 0:
        deviation = abs(event.price - mid) / mid
        features.update(limit_price=event.price, mid=mid, price_deviation=round(deviation, 6))
        if deviation > p.fat_finger_price_band:
            strengths.append(deviation / p.fat_finger_price_band)
            reasons.append(f"limit {event.price:g} is {deviation:.1%} from mid {mid:g}")
    if state.orders_seen >= p.fat_finger_min_history and state.usual_qty > 0:
        multiple = event.qty / state.usual_qty
        peak_multiple = event.qty / state.large_qty if state.large_qty > 0 else multiple
        features.update(
            qty=event.qty,
            usual_qty=round(state.usual_qty, 4),
            size_multiple=round(multiple, 4),
            recent_largest_qty=round(state.large_qty, 4),
        )
        if multiple > p.fat_finger_size_multiple and peak_multiple > p.fat_finger_peak_multiple:
            strengths.append(multiple / p.fat_finger_size_multiple)
            reasons.append(f"size {event.qty:g} is {multiple:.0f}x the usual {state.usual_qty:g}")
    if not strengths:
        return []
    state.flagged.add(event.order_id)
    return [
        Candidate(
            category=Category.FAT_FINGER,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(event.ts_ns, event.ts_ns),
            evidence=Evidence(
                features=features,
                order_ids=(event.order_id,),
                summary=f"{event.side.value} order {event.order_id}: " + "; ".join(reasons),
            ),
            strength=max(strengths),
            discriminator=event.event.value,
        )
    ]
