"""Market-wide shocks, from market data alone: a volatility burst, a spread blow-out, a volume
spike on the lit tape or a price gap, each measured against the symbol's own recent baseline.

Designed not to flag: block prints reported from off book and the closing auction's prints
(``off_book_venues``, ``close_auction_s``: they are not the lit tape's volume), and the bid-ask
flicker of a thin, wide name (a gap is measured on mids sampled a second apart, in sigmas of
those samples, and must span the usual spread).

Every feature is a ratio to that symbol's baseline (or, for a gap, a move in its own sigmas), so
the thresholds mean the same for a $5 stock and a $500 one, a quiet name and a busy one. One
alert per episode: the episode stays open until every feature has stayed below half its threshold
for ``shock_fast_s``.
No account is accused; the alert's entity is the symbol.
"""

from __future__ import annotations

import math

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import SymbolState
from riskstream.records import AlertEntity, Category, Evidence, Quote, WindowBounds
from riskstream.records.market_data import MarketEvent


def shock_features(state: SymbolState, min_spreads: float = 1.0) -> dict[str, float]:
    """Each shock measure as a multiple of its baseline (0 where it cannot be measured yet)."""
    slow_var = state.variance_rate()
    volatility = math.sqrt(state.variance_rate(fast=True) / slow_var) if slow_var > 0 else 0.0
    base_spread = state.baseline_spread()
    mid = state.mid
    spread = state.spread
    spread_multiple = spread / mid / base_spread if spread and mid and base_spread else 0.0
    slow_volume = state.volume_rate()
    volume = state.volume_rate(fast=True) / slow_volume if slow_volume > 0 else 0.0
    return {
        "volatility": volatility,
        "spread": spread_multiple,
        "volume": volume,
        "gap": gap_sigmas(state, min_spreads),
    }


def gap_sigmas(state: SymbolState, min_spreads: float) -> float:
    """The mid's move over the last one to two seconds in the symbol's own sampled sigmas; 0
    when the move spans fewer than ``min_spreads`` usual spreads."""
    move, span_s = state.recent_move()
    rate = state.sampled_variance_rate(before_now=True)
    base_spread = state.baseline_spread()
    if not move or rate <= 0 or not base_spread or abs(move) < min_spreads * base_spread:
        return 0.0
    return abs(move) / math.sqrt(rate * max(span_s, 1.0))


def detect_market_shock(event: MarketEvent, state: SymbolState, ctx: DetectionContext) -> list[Candidate]:
    """Runs after ``event`` is folded into ``state``."""
    p = ctx.params
    if state.age_s() < p.shock_warmup_s:
        return []
    features = shock_features(state, p.shock_gap_min_spreads)
    thresholds = {
        "volatility": p.shock_volatility_multiple,
        "spread": p.shock_spread_multiple,
        "volume": p.shock_volume_multiple,
        "gap": p.shock_gap_sigmas,
    }
    over = {k: features[k] / t for k, t in thresholds.items() if features[k] >= t}
    if state.open_shock:
        if any(features[k] >= t / 2 for k, t in thresholds.items()):
            state.shock_quiet_ns = 0
        elif state.shock_quiet_ns == 0:
            state.shock_quiet_ns = event.ts_ns
        elif event.ts_ns - state.shock_quiet_ns >= p.shock_fast_s * 1e9:
            state.open_shock = False
        return []
    if not over:
        return []
    state.open_shock = True
    kinds = sorted(over, key=lambda k: -over[k])
    start_ns = event.ts_ns - int(p.shock_fast_s * 1e9)
    if isinstance(event, Quote) and kinds[0] == "gap":
        start_ns = state.prior_sample_ns
    described = ", ".join(
        f"{k} {features[k]:.1f}x" if k != "gap" else f"gap {features[k]:.1f} sigma" for k in kinds
    )
    return [
        Candidate(
            category=Category.MARKET_SHOCK,
            entity=AlertEntity(None, event.symbol),
            window=WindowBounds(min(start_ns, event.ts_ns), event.ts_ns),
            evidence=Evidence(
                features={
                    **{
                        f"{k}_multiple" if k != "gap" else "gap_sigmas": round(v, 4)
                        for k, v in features.items()
                    },
                    "mid": state.mid or 0.0,
                    "baseline_volatility_per_s": round(math.sqrt(state.variance_rate()), 8),
                },
                order_ids=(),
                summary=f"{event.symbol}: {described} against its {p.shock_baseline_s:.0f}s baseline",
            ),
            strength=max(over.values()),
            discriminator=f"{kinds[0]}:{event.ts_ns}",
        )
    ]
