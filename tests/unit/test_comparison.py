"""A backtest row and the risk-alerts message of the same alert compare equal; any analyst-facing
difference makes them differ."""

from __future__ import annotations

import json
from typing import Any

from riskstream.offline.comparison import facts_of_backtest_row, facts_of_message

ROW: dict[str, Any] = {
    "alert_id": "a1",
    "category": "fat_finger",
    "severity": "high",
    "score": 0.9,
    "order_ids": ["o1"],
    "features": json.dumps({"b": 2, "a": 1}),
    "summary": "buy order o1: size 5000 is 50x",
}
MESSAGE: dict[str, Any] = {
    "alert_id": "a1",
    "category": "fat_finger",
    "severity": "high",
    "score": 0.9,
    "timings": {"published_ns": 5},
    "evidence": {
        "order_ids": ["o1"],
        "features": {"a": 1, "b": 2},
        "summary": "buy order o1: size 5000 is 50x",
    },
}


def test_the_same_alert_from_both_sides_compares_equal() -> None:
    assert facts_of_backtest_row(ROW) == facts_of_message(MESSAGE)


def test_a_different_feature_or_summary_makes_another_alert() -> None:
    other = {**MESSAGE, "evidence": {**MESSAGE["evidence"], "features": {"a": 1, "b": 3}}}
    assert facts_of_backtest_row(ROW) != facts_of_message(other)
    reworded = {**MESSAGE, "evidence": {**MESSAGE["evidence"], "summary": "another"}}
    assert facts_of_backtest_row(ROW) != facts_of_message(reworded)
