"""Fat-finger orders: an order that would trade far through the market, or a size far beyond
what the account usually sends in that symbol.

A fat finger is a risk because it executes: a buy limit far above the ask or a sell limit far
below the bid sweeps the book at ruinous prices. A resting order far from the market (a stink
bid, a market maker's wide quote) cannot execute there and is not flagged, however far away it
rests. Nor is an order no larger than the position it reduces (a desk selling out in one go).
Size is judged against the account's own orders in the same symbol (a desk's lot in a $4
name is not its lot in a $600 name), so one extra zero on the usual size alerts; an account new
to the symbol is judged against that symbol's displayed depth instead, never against its orders
in other names. An outsized order must be outside the account's own range three ways: many
times its usual size, several times its recent largest, and many of its own size sigmas away
(a retail account whose sizes spread over a decade reaches 10x its median now and then; one
that always sends the same lot does not). Orders resting far from the market do not feed the
yardstick: a stink bid's size says nothing about what the account sends to trade.

Runs before the order is folded into the account's state, so the order does not dilute the
usual size it is compared with.
"""

from __future__ import annotations

import math

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, SizeProfile, SymbolState
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
    market = ctx.market.get(event.symbol)
    mid = market.mid if market is not None else None
    touch = None if market is None else market.ask if event.side is Side.BUY else market.bid
    if touch is None and market is not None:
        touch = market.last_px  # no quote yet: the last print stands in for both touches
    through = _through_touch(event, touch, mid)
    exempt = _resting_far(event, market, p.fat_finger_price_band) or _closes_out(event, state)
    if (through is None or through <= p.fat_finger_price_band) and (
        exempt or (_size_multiple(event, state, ctx) or 0.0) <= p.fat_finger_size_multiple
    ):
        # Neither test can pass: the evidence below (formatted numbers and text, most of this
        # detector's cost) is built only for an order that alerts.
        return []
    features: dict[str, float] = {}
    strengths: list[float] = []
    reasons: list[str] = []
    if through is not None and event.price is not None and touch is not None and mid is not None:
        features.update(limit_price=event.price, mid=mid, far_touch=touch, through_touch=round(through, 6))
        if through > p.fat_finger_price_band:
            strengths.append(through / p.fat_finger_price_band)
            reasons.append(f"limit {event.price:g} would trade {through:.1%} through the touch {touch:g}")
    outsized = None if exempt else _outsized(event, state, ctx)
    if outsized is not None:
        multiple, peak_multiple, reason, seen = outsized
        features.update(seen, size_multiple=round(multiple, 4))
        notional_multiple = _notional_multiple(event, state, mid)
        if notional_multiple is not None:
            features["notional_over_largest"] = round(notional_multiple, 4)
        own_sigmas = seen.get("own_size_sigmas", float("inf"))
        if (
            multiple > p.fat_finger_size_multiple
            and peak_multiple > p.fat_finger_peak_multiple
            and own_sigmas > p.fat_finger_own_sigmas
            and (notional_multiple is None or notional_multiple > 1.0)
        ):
            strengths.append(multiple / p.fat_finger_size_multiple)
            reasons.append(reason)
    if not strengths:
        return []
    state.flagged.add(event.order_id)
    features["order_qty"] = event.qty
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


def record_order_size(event: OrderEvent, state: AccountState, ctx: DetectionContext, alpha: float) -> None:
    """A new order feeds its account's size yardstick in its symbol, after it is judged: not
    when flagged (an outlier must not become the yardstick), nor when it rests far behind the
    touch (a stink bid may be five times the account's trading size and never trade)."""
    if event.event is not OrderEventType.NEW or event.order_id in state.flagged:
        return
    if _resting_far(event, ctx.market.get(event.symbol), ctx.params.fat_finger_price_band):
        return
    state.sizes.setdefault(event.symbol, SizeProfile()).observe(event.qty, alpha)


def _through_touch(event: OrderEvent, touch: float | None, mid: float | None) -> float | None:
    """How far past the opposite touch the order would trade, as a share of the price."""
    if event.price is None or touch is None or mid is None or mid <= 0:
        return None
    return (event.price - touch if event.side is Side.BUY else touch - event.price) / mid


def _size_multiple(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> float | None:
    """The order's size multiple as :func:`_outsized` judges it (None while neither yardstick is
    known): an order at or below ``fat_finger_size_multiple`` of it is not outsized."""
    p = ctx.params
    size = state.size_in(event.symbol)
    if size.orders_seen >= p.fat_finger_min_history and size.usual_qty > 0:
        return event.qty / size.usual_qty
    market = ctx.market.get(event.symbol)
    touch = market.typical_touch() if market is not None else None
    if not touch:
        return None
    # Scaled so that the same size and peak thresholds apply: depth_multiple touches is as
    # outsized as size_multiple times the account's usual size.
    return event.qty / touch / p.fat_finger_depth_multiple * p.fat_finger_size_multiple


def _notional_multiple(event: OrderEvent, state: AccountState, mid: float | None) -> float | None:
    """The order's notional over the account's recent largest in any symbol: a desk whose
    blocks run to $2M elsewhere is not fat-fingering a $2M block in a name it has so far traded
    in child orders. None while the account has no notional record or the order no price."""
    price = event.price if event.price is not None and event.price > 0 else mid
    largest = state.notional.large_qty
    if price is None or price <= 0 or largest <= 0:
        return None
    return event.qty * price / largest


def _closes_out(event: OrderEvent, state: AccountState) -> bool:
    """An order no larger than the position it reduces (a desk selling what it bought, in one
    go): whatever its size against the account's habit, it cannot leave the account with
    exposure it did not mean to have, which is what an extra zero does."""
    position = state.positions.get(event.symbol, 0.0)
    reduces = position > 0 if event.side is Side.SELL else position < 0
    return reduces and event.qty <= abs(position)


def _resting_far(event: OrderEvent, market: SymbolState | None, band: float) -> bool:
    """A limit resting more than ``band`` of the price behind its own side's touch (a stink
    bid, an offer far above the market): it cannot trade at once, whatever its size."""
    if event.price is None or market is None or market.bid is None or market.ask is None:
        return False
    mid = (market.bid + market.ask) / 2.0
    behind = market.bid - event.price if event.side is Side.BUY else event.price - market.ask
    return mid > 0 and behind / mid > band


def _outsized(
    event: OrderEvent, state: AccountState, ctx: DetectionContext
) -> tuple[float, float, str, dict[str, float]] | None:
    """(multiple of the usual size, multiple of the recent largest, reason, features): against
    the account's own orders in this symbol, or, with too few of those, against the symbol's
    displayed depth (a yardstick in that market, not the account's orders in other names of
    other prices and lots). None while neither is known."""
    p = ctx.params
    multiple = _size_multiple(event, state, ctx)
    if multiple is None:
        return None
    size = state.size_in(event.symbol)
    if size.orders_seen >= p.fat_finger_min_history and size.usual_qty > 0:
        peak = event.qty / size.large_qty if size.large_qty > 0 else multiple
        sigma = size.log_sigma()
        own_sigmas = math.log(multiple) / sigma if sigma > 0 and multiple > 0 else float("inf")
        seen = {
            "qty": event.qty,
            "usual_qty": round(size.usual_qty, 4),
            "recent_largest_qty": size.large_qty,
            "own_size_sigma_log": round(sigma, 4),
        }
        if math.isfinite(own_sigmas):
            seen["own_size_sigmas"] = round(own_sigmas, 4)
        usual = f"{size.usual_qty:.4g} in {event.symbol}"
        spread = f", {own_sigmas:.1f} sigmas of its own sizes" if math.isfinite(own_sigmas) else ""
        reason = f"size {event.qty:g} is {multiple:.0f}x the account's usual {usual}{spread}"
        return multiple, peak, reason, seen
    market = ctx.market.get(event.symbol)
    touch = market.typical_touch() if market is not None else None
    if not touch:
        return None
    depth = event.qty / touch
    seen = {"qty": event.qty, "typical_touch_qty": round(touch, 2), "touch_multiple": round(depth, 4)}
    reason = (
        f"size {event.qty:g} is {depth:.0f}x the displayed depth {touch:.4g} of {event.symbol}"
        f" (the account has fewer than {p.fat_finger_min_history} orders there)"
    )
    return multiple, float("inf"), reason, seen
