"""Marking the close: aggressive one-sided orders in the last minutes before the session close,
a large share of the market's volume while they are sent, moving the price the closing auction
or the last trade will be marked at, by more than the volatility from before the window opened
explains.

Evaluated on the account's orders and fills inside the window; fires once per account, symbol
and close. A passive participant trading at the close (limit orders resting at the touch) is not
aggressive; an aggressive one with a small share of the volume or no price effect is not alerted;
nor is one trading both ways (the share is of its net one-sided quantity: a hedger's or a
dealer's sells against its buys mark nothing).
"""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, side_key
from riskstream.core.windows import NS_PER_S
from riskstream.records import AlertEntity, Category, Evidence, OrderEvent, OrderEventType, Side, WindowBounds


def detect_marking_the_close(
    event: OrderEvent, state: AccountState, ctx: DetectionContext
) -> list[Candidate]:
    if event.event not in (OrderEventType.NEW, OrderEventType.FILL) or not state.aggressive:
        return []
    p = ctx.params
    close_ns = ctx.calendar.next_close_ns(event.ts_ns)
    window_ns = int(p.close_window_s * NS_PER_S)
    opens_ns = close_ns - window_ns
    if event.ts_ns < max(opens_ns, close_ns - int(p.close_judge_s * NS_PER_S)):
        return []
    market = ctx.market.get(event.symbol)
    if market is None or market.close_ns != close_ns:
        return []
    mid = market.mid
    spread = market.spread
    if mid is None or not spread or spread <= 0:
        return []
    found = []
    for side in sorted(Side):
        record = state.aggressive.get(side_key(event.symbol, side))
        if not record or record[-1].ts_ns < opens_ns:
            continue
        key = f"close:{event.symbol}:{side.value}:{close_ns}"
        if key in state.open_patterns:
            continue
        orders = [o for o in record if o.ts_ns >= opens_ns]
        if len(orders) < p.close_min_orders:
            continue
        qty = sum(o.qty for o in orders)
        first = orders[0]
        # One-sided pressure: what the account took the other way in the window nets out (a
        # hedger or a dealer trading both ways at the close marks nothing).
        other_way = state.aggressive.get(side_key(event.symbol, side.opposite), ())
        against = sum(o.qty for o in other_way if o.ts_ns >= opens_ns)
        market_volume = market.cum_volume - first.market_volume
        net_qty = qty - against
        participation = net_qty / market_volume if market_volume > 0 else float("inf")
        move = (mid - first.mid) * side.sign
        move_spreads = move / spread
        needed = market.significant_move(
            (event.ts_ns - first.ts_ns) / NS_PER_S,
            p.close_min_move_spreads,
            p.close_min_move_sigmas,
            spread,
            market.close_variance or None,
        )
        if participation < p.close_min_participation or move < needed:
            continue
        state.open_patterns.add(key)
        seconds_left = (close_ns - event.ts_ns) / NS_PER_S
        found.append(
            Candidate(
                category=Category.MARKING_THE_CLOSE,
                entity=AlertEntity(event.account, event.symbol),
                window=WindowBounds(orders[0].ts_ns, event.ts_ns),
                evidence=Evidence(
                    features={
                        "aggressive_orders": float(len(orders)),
                        "aggressive_qty": qty,
                        "aggressive_qty_other_way": against,
                        "participation": round(min(participation, 1e6), 4),
                        "mid_before": first.mid,
                        "mid_now": mid,
                        "move_spreads": round(move_spreads, 4),
                        "seconds_to_close": round(seconds_left, 3),
                    },
                    order_ids=tuple(o.order_id for o in orders),
                    summary=(
                        f"{len(orders)} aggressive {side.value} orders ({qty:g}, net {net_qty:g}: "
                        f"{min(participation, 1e6):.0%} of market volume) in the last "
                        f"{p.close_window_s:.0f}s moved the mid {move_spreads:.1f} spreads, "
                        f"{seconds_left:.0f}s before the close"
                    ),
                ),
                strength=max(
                    1.0,
                    min(participation / p.close_min_participation, move / needed),
                ),
                discriminator=str(close_ns),
            )
        )
    prune_close_keys(state, event.ts_ns)
    return found


def prune_close_keys(state: AccountState, ts_ns: int) -> None:
    """Forget the once-per-close marks of closes that have passed."""
    stale = [k for k in state.open_patterns if k.startswith("close:") and int(k.rsplit(":", 1)[1]) < ts_ns]
    for key in stale:
        state.open_patterns.discard(key)
