"""What makes two alerts the same alert, for comparing a stream's alerts with a backtest's: the
deterministic id and everything an analyst reads (category, severity, score, orders, features,
summary); publication times and latencies are left out, they differ by run."""

from __future__ import annotations

import json
from typing import Any

AlertFacts = tuple[str, str, str, float, tuple[str, ...], str, str]


def _features(value: Any) -> str:
    features = json.loads(value) if isinstance(value, str) else value
    return json.dumps(features, sort_keys=True)


def facts_of_backtest_row(row: dict[str, Any]) -> AlertFacts:
    """A row of ``riskstream backtest``'s alerts Parquet file."""
    return (
        row["alert_id"],
        row["category"],
        row["severity"],
        row["score"],
        tuple(row["order_ids"]),
        _features(row["features"]),
        row["summary"],
    )


def facts_of_message(body: dict[str, Any]) -> AlertFacts:
    """A decoded ``risk-alerts`` message."""
    evidence = body["evidence"]
    return (
        body["alert_id"],
        body["category"],
        body["severity"],
        body["score"],
        tuple(evidence["order_ids"]),
        _features(evidence["features"]),
        evidence["summary"],
    )
