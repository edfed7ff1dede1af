"""Ramping (pump and dump): the account builds a position as a large share of the market's
volume, the price moves its way by more than the symbol's own volatility explains over that
time, and it sells the position back into the move.

One episode per account and symbol runs from the fill that starts building (from flat, or on top
of what an earlier ramp or an old holding left) to the peak position and back; it fires once, on
the unwinding fill that completes it. Only the build counts: its share of the lit tape, and how
much of it is sold back. The rest of a completed ramp's unwind starts no new episode. An institution
accumulating at a modest share of volume, a trader whose position gains with the market, or a
hedger whose handful of lots is a large share of a thin tape, does not meet all the conditions:
a campaign of many buys as a large share of the tape, a move its way beyond the spread and the
name's noise, and the unwind.
"""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import MAX_EPISODE_ORDER_IDS, AccountState, RampEpisode
from riskstream.core.windows import NS_PER_S
from riskstream.records import AlertEntity, Category, Evidence, OrderEvent, OrderEventType, WindowBounds


def _keep(ids: list[str], order_id: str) -> None:
    if len(ids) < MAX_EPISODE_ORDER_IDS and order_id not in ids:
        ids.append(order_id)


def detect_ramping(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    """Runs after the fill is folded in: ``state.positions`` is the position after it."""
    if event.event is not OrderEventType.FILL:
        return []
    assert event.last_qty is not None
    market = ctx.market.get(event.symbol)
    mid = market.mid if market is not None else None
    if market is None or mid is None:
        return []
    after = state.positions.get(event.symbol, 0.0)
    before = after - event.side.sign * event.last_qty
    same_way = before != 0 and (before > 0) == (after > 0)
    adding = after != 0 and (not same_way or abs(after) > abs(before))
    episode = state.ramps.get(event.symbol)
    stale = (
        episode is not None
        and adding
        and (event.ts_ns - episode.start_ns) / NS_PER_S > ctx.params.ramp_max_duration_s
    )
    if episode is None or before == 0 or (before > 0) != (episode.sign > 0) or stale:
        if not adding:
            # Selling out of what an earlier ramp or an old holding left builds nothing.
            state.ramps.pop(event.symbol, None)
            return []
        episode = RampEpisode(
            1 if after > 0 else -1,
            event.ts_ns,
            mid,
            max(0.0, market.cum_volume - event.last_qty),
            market.sampled_variance_rate(),
            base_qty=abs(before) if same_way else 0.0,
        )
        state.ramps[event.symbol] = episode
    size = abs(after)
    if (after > 0) == (episode.sign > 0) and size > episode.peak_qty:
        episode.peak_qty = size
        episode.peak_volume = market.cum_volume
        episode.peak_ns = event.ts_ns
        episode.peak_mid = mid
        episode.build_fills += 1
        _keep(episode.build_order_ids, event.order_id)
        return []
    _keep(episode.unwind_order_ids, event.order_id)
    found = _judge(event, state, ctx, episode, mid)
    if found or after == 0 or (after > 0) != (episode.sign > 0):
        # A completed ramp closes its episode; what is left of the position starts the next.
        state.ramps.pop(event.symbol, None)
    return found


def _judge(
    event: OrderEvent, state: AccountState, ctx: DetectionContext, episode: RampEpisode, mid: float
) -> list[Candidate]:
    p = ctx.params
    market = ctx.market[event.symbol]
    after = state.positions.get(event.symbol, 0.0)
    remaining = after * episode.sign if (after > 0) == (episode.sign > 0) else 0.0
    built = episode.peak_qty - episode.base_qty
    unwound = min(1.0, (episode.peak_qty - remaining) / built) if built > 0 else 0.0
    duration_s = (event.ts_ns - episode.start_ns) / NS_PER_S
    build_s = (episode.peak_ns - episode.start_ns) / NS_PER_S
    if unwound < p.ramp_min_unwind_fraction or duration_s > p.ramp_max_duration_s:
        return []
    if episode.build_fills < p.ramp_min_build_fills or build_s < p.ramp_min_build_s:
        return []
    market_volume = episode.peak_volume - episode.start_volume
    participation = built / market_volume if market_volume > 0 else 1.0
    # The push is judged where the build took the price, or beyond if it went on rising.
    pushed_to = (
        max(mid * episode.sign, episode.peak_mid * episode.sign) if episode.peak_mid else mid * episode.sign
    )
    move = pushed_to - episode.start_mid * episode.sign
    sigma_move = market.significant_move(duration_s, 0.0, 1.0, 0.0, episode.start_variance or None)
    needed = market.significant_move(
        duration_s,
        p.ramp_min_move_spreads,
        p.ramp_min_move_sigmas,
        market.spread or 0.0,
        episode.start_variance or None,
    )
    if participation < p.ramp_min_participation or needed <= 0 or move < needed:
        return []
    order_ids = (*episode.build_order_ids, *episode.unwind_order_ids)
    sigmas = move / sigma_move if sigma_move > 0 else float("inf")
    side = "long" if episode.sign > 0 else "short"
    return [
        Candidate(
            category=Category.RAMPING,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(episode.start_ns, event.ts_ns),
            evidence=Evidence(
                features={
                    "peak_position": episode.peak_qty * episode.sign,
                    "participation": round(participation, 4),
                    "start_mid": episode.start_mid,
                    "mid_now": mid,
                    "peak_mid": episode.peak_mid,
                    "move_sigmas": round(min(sigmas, 1e6), 4),
                    "unwound_fraction": round(unwound, 4),
                    "build_fills": float(episode.build_fills),
                    "duration_s": round(duration_s, 3),
                },
                order_ids=order_ids,
                summary=(
                    f"built a {side} position of {episode.peak_qty:g} in {episode.build_fills} fills "
                    f"({participation:.0%} of market volume), price moved {move:+.4g} "
                    f"({min(sigmas, 1e6):.1f} sigma) in {duration_s:.0f}s, "
                    f"then unwound {unwound:.0%}"
                ),
            ),
            strength=max(1.0, min(participation / p.ramp_min_participation, move / needed)),
        )
    ]
