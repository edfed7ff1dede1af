"""Fat-finger orders: an order that would trade far through the market, or a size far beyond
what the account usually sends in that symbol.

A fat finger is a risk because it executes: a buy limit far above the ask or a sell limit far
below the bid sweeps the book at ruinous prices. A resting order far from the market (a stink
bid, a market maker's wide quote) cannot execute there and is not flagged, however far away it
rests. Size is judged against the account's own orders in the same symbol (a desk's lot in a $4
name is not its lot in a $600 name), so one extra zero on the usual size alerts.

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
    Side,
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
    touch = None if market is None else market.ask if event.side is Side.BUY else market.bid
    if touch is None and market is not None:
        touch = market.last_px  # no quote yet: the last print stands in for both touches
    if event.price is not None and touch is not None and mid is not None and mid > 0:
        # How far past the opposite touch the order would trade, as a share of the price.
        through = (event.price - touch if event.side is Side.BUY else touch - event.price) / mid
        features.update(limit_price=event.price, mid=mid, far_touch=touch, through_touch=round(through, 6))
        if through > p.fat_finger_price_band:
            strengths.append(through / p.fat_finger_price_band)
            reasons.append(f"limit {event.price:g} would trade {through:.1%} through the touch {touch:g}")
    outsized = _outsized(event, state, mid, p.fat_finger_min_history)
    if outsized is not None:
        multiple, peak_multiple, reason, seen = outsized
        features.update(seen, size_multiple=round(multiple, 4))
        if multiple > p.fat_finger_size_multiple and peak_multiple > p.fat_finger_peak_multiple:
            strengths.append(multiple / p.fat_finger_size_multiple)
            reasons.append(reason)
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


def _outsized(
    event: OrderEvent, state: AccountState, mid: float | None, min_history: int
) -> tuple[float, float, str, dict[str, float]] | None:
    """(multiple of the usual size, multiple of the recent largest, reason, features): against
    the account's orders in this symbol, or, with too few of those, against its order notionals
    in all symbols. None while the account has too little history for either."""
    size = state.size_in(event.symbol)
    if size.orders_seen >= min_history and size.usual_qty > 0:
        multiple = event.qty / size.usual_qty
        peak = event.qty / size.large_qty if size.large_qty > 0 else multiple
        seen = {"qty": event.qty, "usual_qty": round(size.usual_qty, 4), "recent_largest_qty": size.large_qty}
        usual = f"{size.usual_qty:.4g} in {event.symbol}"
        reason = f"size {event.qty:g} is {multiple:.0f}x the account's usual {usual}"
        return multiple, peak, reason, seen
    price = event.price if event.price is not None else mid
    book = state.notional
    if price is None or price <= 0 or book.orders_seen < min_history or book.usual_qty <= 0:
        return None
    notional = event.qty * price
    multiple = notional / book.usual_qty
    peak = notional / book.large_qty if book.large_qty > 0 else multiple
    seen = {
        "notional": round(notional, 2),
        "usual_notional": round(book.usual_qty, 2),
        "recent_largest_notional": round(book.large_qty, 2),
    }
    reason = f"notional {notional:,.0f} is {multiple:.0f}x the account's usual {book.usual_qty:,.0f}"
    return multiple, peak, reason, seen
