"""The market yardsticks every alert carries beside its own rule's figures, so an analyst (and
the LLM) can weigh a $4 small cap and a $600 name on one scale: the symbol's quoted spread and
one-minute volatility at the alert, the pattern's quantity against the displayed touch, a
minute of lit volume and the average daily volume, and its price move in spreads and in sigmas.

Computed from the symbol's state as of the alert's event time, so a replay gives the same
figures. The daily volume is the reference data's (``[symbols.<id>] adv_qty`` in the limits
file) where the firm supplies it; otherwise an estimate from the symbol's lit-tape rate over a
6.5-hour session, reported under its own name so the two are never confused.
"""

from __future__ import annotations

import math
from dataclasses import replace

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import SymbolState
from riskstream.records import Category

SESSION_S = 23_400
"""A 6.5-hour regular session: what a lit-tape rate per second is scaled to for a daily volume."""

QTY_FEATURE: dict[Category, str] = {
    Category.FAT_FINGER: "order_qty",
    Category.SPOOFING: "cancelled_qty",
    Category.LAYERING: "cancelled_qty",
    Category.WASH_TRADE: "qty",
    Category.MOMENTUM_IGNITION: "burst_qty",
    Category.RAMPING: "peak_position",
    Category.MARKING_THE_CLOSE: "aggressive_qty",
}
"""The feature holding the quantity the pattern put on the market, per typology."""

BEFORE_FEATURE = ("mid_before", "start_mid")
"""The features holding the mid the pattern's move is measured from."""


def with_market_terms(candidate: Candidate, ctx: DetectionContext) -> Candidate:
    """``candidate`` with the yardsticks added to its features (a rule's own figure of the
    same name is kept: it was measured where the rule measured it)."""
    symbol = candidate.entity.symbol
    market = ctx.market.get(symbol) if symbol is not None else None
    if market is None or symbol is None:
        return candidate
    features = candidate.evidence.features
    terms = market_terms(
        market,
        qty=abs(features[key]) if (key := QTY_FEATURE.get(candidate.category)) in features else None,
        adv_qty=ctx.limits.adv_qty.get(symbol),
    )
    before = next((features[k] for k in BEFORE_FEATURE if k in features), None)
    mid_now = features.get("mid_now")
    if before is not None and mid_now is not None:
        direction = _direction(features, before)
        seconds = (candidate.window.end_ns - candidate.window.start_ns) / 1e9
        terms.update(move_terms(market, (mid_now - before) * direction, seconds))
    added = {k: v for k, v in terms.items() if k not in features}
    if not added:
        return candidate
    evidence = replace(candidate.evidence, features={**features, **added})
    return replace(candidate, evidence=evidence)


def _direction(features: dict[str, float], before: float) -> float:
    """+1 when the pattern pushes the price up (a long ramp, a buy-side push), -1 down: a
    ramp's side is its position's sign; other rules sign their own ``move_spreads`` in the
    pattern's direction, which with the mid's change gives it back."""
    if "peak_position" in features:
        return -1.0 if features["peak_position"] < 0 else 1.0
    change = features.get("mid_now", before) - before
    return -1.0 if change * features.get("move_spreads", 0.0) < 0 else 1.0


def market_terms(
    market: SymbolState, qty: float | None = None, adv_qty: float | None = None
) -> dict[str, float]:
    """Spread and volatility of the symbol now, and ``qty`` against its book and tape."""
    out: dict[str, float] = {}
    mid, spread = market.mid, market.spread
    if mid is None or mid <= 0:
        return out
    if spread is not None and spread > 0:
        out["spread_bps"] = round(spread / mid * 1e4, 4)
    sigma_1s = math.sqrt(market.sampled_variance_rate())
    if sigma_1s > 0:
        out["sigma_1m_bps"] = round(sigma_1s * math.sqrt(60.0) * 1e4, 4)
    if qty is None or qty <= 0:
        return out
    touch = market.typical_touch()
    if touch:
        out["qty_touch_multiple"] = round(qty / touch, 4)
    per_s = market.volume_rate()
    if per_s > 0:
        out["qty_share_of_minute_volume"] = round(qty / (per_s * 60.0), 6)
    if adv_qty:
        out["qty_share_of_adv"] = round(qty / adv_qty, 8)
    elif per_s > 0:
        out["qty_share_of_est_adv"] = round(qty / (per_s * SESSION_S), 8)
    return out


def move_terms(market: SymbolState, move: float, seconds: float) -> dict[str, float]:
    """A price move (in the pattern's direction) in the symbol's spreads and in sigmas of its
    own volatility over the move's span."""
    out: dict[str, float] = {}
    mid, spread = market.mid, market.spread
    if mid is None or mid <= 0:
        return out
    if spread is not None and spread > 0:
        out["move_spreads"] = round(move / spread, 4)
    sigma = mid * math.sqrt(market.sampled_variance_rate() * max(seconds, 1.0))
    if sigma > 0:
        out["move_sigmas"] = round(move / sigma, 4)
    return out
