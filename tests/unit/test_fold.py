"""The one fold: what it raises does not depend on the order of events with the same event
time; a restarted fold skips re-marks its restored states already hold; the backtest that
uses it imports no database or metrics library."""

from __future__ import annotations

import subprocess
import sys

from riskstream.core.fold import EventTimeDetector, SurveillanceFold
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.core.state import AccountState
from riskstream.records import Category
from tests.factories import context, fill, order, quote


def _positions_then_two_quotes_at_once(first: str) -> list[str]:
    """A0 holds AAPL and MSFT; both fall at the same instant. With re-marks per timestamp the
    loss is measured once both quotes are in, whichever is folded first."""
    limits = RiskLimits(AccountLimits(1e6, 5e7, 5e5, max_loss=15_000))
    detector = EventTimeDetector(context(market={}, limits=limits), 0.05)
    aapl = quote(0, 99.995, 100.005)
    msft = quote(0, 99.995, 100.005, symbol="MSFT")
    for e in (aapl, msft):
        detector.feed(e)
    for i, symbol in enumerate(("AAPL", "MSFT")):
        detector.feed(order("new", f"o{i}", "buy", 1000, 100.0, 1, "A0", symbol=symbol))
        detector.feed(fill(f"o{i}", "buy", 1000, 100.0, 2, "A0", symbol=symbol))
    drops = {"AAPL": quote(10, 91.995, 92.005), "MSFT": quote(10, 91.995, 92.005, symbol="MSFT")}
    found = []
    for symbol in (first, "MSFT" if first == "AAPL" else "AAPL"):
        found += detector.feed(drops[symbol])
    found += detector.finish()
    return [c.alert_id for c in found if c.category is Category.LIMIT_BREACH]


def test_quotes_of_the_same_instant_give_the_same_alerts_in_either_order() -> None:
    one = _positions_then_two_quotes_at_once("AAPL")
    assert one, "a 16 000 loss against a 15 000 limit alerts"
    assert one == _positions_then_two_quotes_at_once("MSFT")


def test_a_restored_state_is_not_re_marked_by_quotes_before_its_cut() -> None:
    limits = RiskLimits(AccountLimits(1e6, 5e7, 5e5, max_loss=5_000))
    ctx = context(market={}, limits=limits)
    state = AccountState()
    ahead = {"A0": (50, 0, 0, 9)}
    fold = SurveillanceFold(
        ctx,
        0.05,
        {"A0": state}.get,
        lambda account, source: source > ahead[account],  # type: ignore[operator]
    )
    fold.on_market(quote(0, 99.995, 100.005), (0, 0, 0, 0))
    fold.on_order(state, order("new", "o", "buy", 1000, 100.0, 1, "A0"))
    fold.on_order(state, fill("o", "buy", 1000, 100.0, 2, "A0"))
    # The state was checkpointed after the fall at 40 (its cut is at 50): that re-mark is in it.
    fold.on_market(quote(40, 89.995, 90.005), (40, 0, 0, 5))
    assert fold.flush_marks() == []
    fold.on_market(quote(60, 88.995, 89.005), (60, 0, 0, 11))
    assert [c.category for c in fold.flush_marks()] == [Category.LIMIT_BREACH]


def test_the_backtest_imports_no_database_or_metrics_library() -> None:
    code = (
        "import sys, riskstream.offline.backtest, riskstream.core.fold;"
        "bad = [m for m in ('sqlalchemy', 'prometheus_client', 'faust', 'vllm') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
