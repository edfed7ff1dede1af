"""Every alert carries the same market yardsticks: spread, one-minute sigma, its quantity against
the touch, a minute of lit volume and the daily volume, its move in spreads and sigmas."""

from __future__ import annotations

import math

import pytest

from riskstream.core.candidates import Candidate
from riskstream.core.evidence import SESSION_S, market_terms, move_terms, with_market_terms
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.surveillance import surveil_account
from riskstream.llm.prompts import SYSTEM_PROMPT, build_messages, candidate_data
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds
from riskstream.records.codec import NS_PER_S
from tests.factories import T0, context, order, quote, trade_print

LIMITS = RiskLimits(AccountLimits(1e6, 5e7, 5e5))


def market(seconds: int = 120) -> SymbolState:
    """A $20 name quoted 19.99 / 20.01 with 500 at the touch, 100 shares printed a second, and
    the mid stepping a cent up and down each second."""
    state = SymbolState()
    for s in range(seconds):
        shift = 0.01 if s % 2 else 0.0
        state.apply(quote(s * 1000, 19.99 + shift, 20.01 + shift, 500))
        state.apply(trade_print(s * 1000 + 500, 20.0 + shift, 100))
    return state


def candidate(category: Category, features: dict[str, float], span_s: float = 0.0) -> Candidate:
    return Candidate(
        category,
        AlertEntity("ACC-1", "AAPL"),
        WindowBounds(T0, T0 + int(span_s * NS_PER_S)),
        Evidence(features, ("o1",), "seen"),
        strength=1.0,
    )


def test_quantity_against_touch_tape_and_estimated_daily_volume() -> None:
    state = market()
    terms = market_terms(state, qty=5_000)
    assert terms["spread_bps"] == pytest.approx(0.02 / 20.01 * 1e4, rel=1e-3)
    assert terms["qty_touch_multiple"] == pytest.approx(10.0, rel=1e-3)
    per_s = state.volume_rate()
    assert per_s == pytest.approx(100, rel=0.05)
    assert terms["qty_share_of_minute_volume"] == pytest.approx(5_000 / (per_s * 60), rel=1e-3)
    assert terms["qty_share_of_est_adv"] == pytest.approx(5_000 / (per_s * SESSION_S), rel=1e-3)
    assert "qty_share_of_adv" not in terms
    assert terms["sigma_1m_bps"] > 0


def test_reference_daily_volume_replaces_the_estimate() -> None:
    terms = market_terms(market(), qty=5_000, adv_qty=1_000_000)
    assert terms["qty_share_of_adv"] == 0.005
    assert "qty_share_of_est_adv" not in terms


def test_move_in_spreads_and_in_sigmas_of_its_span() -> None:
    state = market()
    sigma_1s = math.sqrt(state.sampled_variance_rate())
    terms = move_terms(state, 0.10, 25.0)
    assert state.mid is not None
    assert terms["move_spreads"] == pytest.approx(5.0, rel=1e-6)
    assert terms["move_sigmas"] == pytest.approx(0.10 / (state.mid * sigma_1s * 5.0), abs=1e-4)


def test_an_alert_gains_yardsticks_and_keeps_its_own_figures() -> None:
    ctx = context({"AAPL": market()}, RiskLimits(LIMITS.default, adv_qty={"AAPL": 2_000_000}))
    spoof = with_market_terms(candidate(Category.SPOOFING, {"cancelled_qty": 6_000, "spread_bps": 99.0}), ctx)
    features = spoof.evidence.features
    assert features["spread_bps"] == 99.0
    assert features["qty_touch_multiple"] == pytest.approx(12.0, rel=1e-3)
    assert features["qty_share_of_adv"] == 0.003
    assert spoof.alert_id == candidate(Category.SPOOFING, {}).alert_id


def test_a_short_ramps_move_counts_in_its_direction() -> None:
    ctx = context({"AAPL": market()})
    ramp = candidate(
        Category.RAMPING, {"peak_position": -40_000, "start_mid": 20.30, "mid_now": 20.00}, span_s=100
    )
    features = with_market_terms(ramp, ctx).evidence.features
    assert features["move_spreads"] == pytest.approx(15.0, rel=1e-6)
    assert features["move_sigmas"] > 0
    assert features["qty_touch_multiple"] == pytest.approx(80.0, rel=1e-3)


def test_a_move_the_rule_signed_keeps_its_sign() -> None:
    """Marking the close on the sell side: the rule's move_spreads is positive for a fall."""
    ctx = context({"AAPL": market()})
    close = candidate(
        Category.MARKING_THE_CLOSE,
        {"aggressive_qty": 3_000, "mid_before": 20.20, "mid_now": 20.00, "move_spreads": 10.0},
        span_s=60,
    )
    assert with_market_terms(close, ctx).evidence.features["move_sigmas"] > 0


def test_detectors_alerts_carry_the_yardsticks() -> None:
    """Through the fold: a fat finger's order quantity against the book and the tape."""
    ctx = context({"AAPL": market()})
    found = surveil_account(
        AccountState(),
        [order("new", "o1", "buy", 2_000, 30.0, 120_500)],
        ctx,
        0.05,
    ).candidates
    assert [c.category for c in found] == [Category.FAT_FINGER]
    features = found[0].evidence.features
    assert features["order_qty"] == 2_000
    assert features["qty_touch_multiple"] == pytest.approx(4.0, rel=1e-3)
    assert {"spread_bps", "sigma_1m_bps", "qty_share_of_minute_volume"} <= set(features)


def test_a_symbol_without_a_market_adds_nothing() -> None:
    alert = candidate(Category.WASH_TRADE, {"qty": 100})
    assert with_market_terms(alert, context({})) is alert


def test_the_llm_prompt_carries_the_same_yardsticks() -> None:
    ctx = context({"AAPL": market()})
    spoof = with_market_terms(candidate(Category.SPOOFING, {"cancelled_qty": 6_000}), ctx)
    data = candidate_data(spoof, (), 1200)
    assert data["features"] == spoof.evidence.features
    assert data["features"]["qty_touch_multiple"] == pytest.approx(12.0, rel=1e-3)
    user = build_messages(spoof)[1]["content"]
    assert '"qty_touch_multiple":12.0' in user and '"spread_bps":' in user
    assert "qty_touch_multiple" in SYSTEM_PROMPT
