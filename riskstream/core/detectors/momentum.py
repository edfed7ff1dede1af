"""Momentum ignition: a burst of aggressive orders on one side takes out the visible liquidity
and moves the price by several spreads, then the same account trades the other way within
seconds, selling into (or buying back from) the move it started.

Fires on the reversing fill, which completes the pattern. An honest momentum trader buys
aggressively too, but holds; a hedger trades both ways, but without the burst.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Set

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, AggressiveOrder, SymbolState, side_key
from riskstream.core.windows import NS_PER_S
from riskstream.records import (
    AlertEntity,
    Category,
    Evidence,
    OrderEvent,
    OrderEventType,
    WindowBounds,
)
from riskstream.settings import DetectorSettings


def _latest_burst(
    record: deque[AggressiveOrder], flagged: Set[str], start_ns: int, end_ns: int, burst_ns: int
) -> list[AggressiveOrder]:
    """The newest run of one symbol and side's unflagged aggressive orders in ``[start, end]``
    spanning at most ``burst_ns``, oldest first. The record is in event-time order, so the scan
    from its newest end stops at the window's start or, once the newest order is found, at the
    burst's."""
    burst: list[AggressiveOrder] = []
    stop_ns = start_ns
    for o in reversed(record):
        if o.ts_ns < stop_ns:
            break
        if o.ts_ns <= end_ns and o.order_id not in flagged:
            if not burst:
                stop_ns = max(start_ns, o.ts_ns - burst_ns)
            burst.append(o)
    burst.reverse()
    return burst


def _needed_move(market: SymbolState, elapsed_s: float, spread: float, p: DetectorSettings) -> float:
    """A push is ``ignition_min_move_spreads`` spreads or ``ignition_min_move_sigmas`` of the
    symbol's own noise over the time, whichever is less (a 1-tick name's push is many spreads
    and few sigmas, a 30-tick name's the reverse), and never under one spread: a reversal that
    does not recover the spread it crossed twice is no gain from the move."""
    by_noise = market.significant_move(elapsed_s, 0.0, p.ignition_min_move_sigmas, 0.0)
    by_spread = p.ignition_min_move_spreads * spread
    return max(spread, min(by_spread, by_noise) if by_noise > 0 else by_spread)


def detect_momentum_ignition(
    event: OrderEvent, state: AccountState, ctx: DetectionContext
) -> list[Candidate]:
    if event.event is not OrderEventType.FILL:
        return []
    burst_side = event.side.opposite
    record = state.aggressive.get(side_key(event.symbol, burst_side))
    if not record:
        return []
    p = ctx.params
    burst = _latest_burst(
        record,
        state.flagged,
        event.ts_ns - int(p.ignition_reversal_s * NS_PER_S),
        event.ts_ns,
        int(p.ignition_burst_s * NS_PER_S),
    )
    if len(burst) < p.ignition_min_orders:
        return []
    first = burst[0]
    market = ctx.market.get(event.symbol)
    mid = market.mid if market is not None else None
    if mid is None or first.spread <= 0:
        return []
    burst_qty = sum(o.qty for o in burst)
    # An empty displayed touch is taken out by any burst: the touch test passes, and the
    # multiple (undefined) stays out of the evidence and the strength.
    touch_multiple = burst_qty / first.touch_qty if first.touch_qty > 0 else None
    move = (mid - first.mid) * burst_side.sign
    move_spreads = move / first.spread
    elapsed_s = (event.ts_ns - first.ts_ns) / NS_PER_S
    needed = _needed_move(market, elapsed_s, first.spread, p) if market is not None else 0.0
    if (touch_multiple is not None and touch_multiple < p.ignition_min_touch_multiple) or move < needed:
        return []
    order_ids = (*(o.order_id for o in burst), event.order_id)
    state.flagged.update(order_ids)
    reversal_s = (event.ts_ns - burst[-1].ts_ns) / NS_PER_S
    move_strength = move / needed if needed > 0 else 1.0
    touch_strength = (
        touch_multiple / p.ignition_min_touch_multiple if touch_multiple is not None else move_strength
    )
    strength = max(1.0, min(touch_strength, move_strength))
    features = {
        "burst_orders": float(len(burst)),
        "burst_qty": burst_qty,
        "touch_qty": first.touch_qty,
        "mid_before": first.mid,
        "mid_now": mid,
        "move_spreads": round(move_spreads, 4),
        "reversal_after_s": round(reversal_s, 6),
        "reversal_qty": event.last_qty or 0.0,
    }
    if touch_multiple is not None:
        features["touch_multiple"] = round(touch_multiple, 4)
    taken = f"{touch_multiple:.1f}x the touch" if touch_multiple is not None else "an empty touch"
    return [
        Candidate(
            category=Category.MOMENTUM_IGNITION,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(first.ts_ns, event.ts_ns),
            evidence=Evidence(
                features=features,
                order_ids=order_ids,
                summary=(
                    f"{len(burst)} aggressive {burst_side.value} orders ({burst_qty:g}, "
                    f"{taken}) moved the mid {move_spreads:.1f} spreads, "
                    f"then a {event.side.value} fill {reversal_s:.2f}s later"
                ),
            ),
            strength=strength,
        )
    ]
