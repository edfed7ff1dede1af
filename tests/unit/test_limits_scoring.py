from __future__ import annotations

import pytest

from riskstream.core.limits import AccountLimits, LimitsFileError, parse_limits
from riskstream.core.scoring import rule_score, severity_for
from riskstream.records import Category, Severity
from riskstream.settings import REPO_ROOT

DEFAULT = AccountLimits(1e6, 5e7, 5e5)


def test_limits_file_overrides_and_links() -> None:
    limits = parse_limits((REPO_ROOT / "deploy" / "limits.demo.toml").read_text(), DEFAULT)
    assert limits.for_account("ACC-LIM").max_position_qty == 3000
    assert limits.for_account("ACC-LIM").max_order_qty == 100000
    assert limits.for_account("nobody").max_position_qty == 200000
    assert limits.same_owner("ACC-W1", "ACC-W2")
    assert not limits.same_owner("ACC-W1", "ACC-LIM")


def test_limits_file_carries_symbols_daily_volume() -> None:
    limits = parse_limits("[symbols.XOM]\nadv_qty = 15000000\n[symbols.AAPL]\n", DEFAULT)
    assert limits.adv_qty == {"XOM": 15_000_000.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[accounts.A]\nmax_positon_qty = 5", "unknown keys"),
        ("[accounts.A]\nmax_position_qty = -5", "positive"),
        ("[owners]\nF = ['A']\nG = ['A']", "two owners"),
        ("[limitz]", "unknown sections"),
        ("not toml [", "not valid TOML"),
        ("[symbols.X]\nadv = 5", "takes only adv_qty"),
        ("[symbols.X]\nadv_qty = 0", "positive"),
    ],
)
def test_limits_file_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(LimitsFileError, match=message):
        parse_limits(text, DEFAULT)


def test_rule_score_grows_with_strength_and_maps_to_severity() -> None:
    at_threshold = rule_score(Category.SPOOFING, 1.0)
    assert at_threshold == 0.6
    assert rule_score(Category.SPOOFING, 3.0) > at_threshold
    assert rule_score(Category.SPOOFING, 1e9) <= 1.0
    assert severity_for(0.9) is Severity.CRITICAL
    assert severity_for(0.75) is Severity.HIGH
    assert severity_for(0.6) is Severity.MEDIUM
    assert severity_for(0.2) is Severity.LOW
