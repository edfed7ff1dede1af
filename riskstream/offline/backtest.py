"""``riskstream backtest``: the pure detectors over Parquet history, no broker, no database.

Events of every file are merged into one event-time order and folded into the same per-symbol
and per-account state with the same detectors and rule scores as the worker. A backtest has no
wall clock: an alert's detection and publication times are its triggering event's time, so a
run is reproducible to the byte. Alerts are written to Parquet in batches as they come.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from riskstream.core.candidates import Candidate
from riskstream.core.fold import EventTimeDetector
from riskstream.detection import detection_context
from riskstream.llm.base import to_alert
from riskstream.llm.rules import assess_by_rules
from riskstream.offline.parquet import BATCH_ROWS, RejectedRow, merged_events
from riskstream.records import RiskAlert
from riskstream.settings import Settings

ALERTS_SCHEMA = pa.schema(
    [
        ("alert_id", pa.string()),
        ("version", pa.int32()),
        ("category", pa.string()),
        ("severity", pa.string()),
        ("score", pa.float64()),
        ("rule_score", pa.float64()),
        ("account", pa.string()),
        ("symbol", pa.string()),
        ("window_start_ns", pa.int64()),
        ("window_end_ns", pa.int64()),
        ("event_ns", pa.int64()),
        ("order_ids", pa.list_(pa.string())),
        ("features", pa.string()),
        ("summary", pa.string()),
    ]
)
"""One row per alert; ``features`` is the evidence's feature map as JSON text."""


def alert_row(alert: RiskAlert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "version": alert.version,
        "category": alert.category.value,
        "severity": alert.severity.value,
        "score": alert.score,
        "rule_score": alert.rule_score,
        "account": alert.entity.account,
        "symbol": alert.entity.symbol,
        "window_start_ns": alert.window.start_ns,
        "window_end_ns": alert.window.end_ns,
        "event_ns": alert.timings.event_ns,
        "order_ids": list(alert.evidence.order_ids),
        "features": orjson.dumps(alert.evidence.features, option=orjson.OPT_SORT_KEYS).decode(),
        "summary": alert.evidence.summary,
    }


@dataclass
class BacktestStats:
    events: int = 0
    alerts: int = 0
    late_events: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    by_category: dict[str, int] = field(default_factory=dict)


def rule_scored_alert(candidate: Candidate) -> RiskAlert:
    """As the worker's rule scorer would publish it, with the candidate's event time for the
    wall clock."""
    event_ns = candidate.event_ns
    return to_alert(candidate, assess_by_rules(candidate), detected_ns=event_ns).published(event_ns)


def run_backtest(
    paths: Sequence[Path], out: Path, settings: Settings, batch_rows: int = BATCH_ROWS
) -> BacktestStats:
    stats = BacktestStats()
    detector = EventTimeDetector(
        detection_context(settings, {}),
        settings.windows.size_ewma_alpha,
        idle_ttl_s=settings.stream.account_idle_ttl_s,
    )
    pending: list[dict[str, Any]] = []

    def record(candidates: list[Candidate]) -> None:
        for candidate in candidates:
            alert = rule_scored_alert(candidate)
            pending.append(alert_row(alert))
            stats.alerts += 1
            stats.by_category[alert.category.value] = stats.by_category.get(alert.category.value, 0) + 1

    with pq.ParquetWriter(out, ALERTS_SCHEMA) as writer:
        for fe in merged_events(paths, stats.rejected, batch_rows):
            stats.events += 1
            record(detector.feed(fe.event))
            if len(pending) >= batch_rows:
                writer.write_table(pa.Table.from_pylist(pending, schema=ALERTS_SCHEMA))
                pending = []
        record(detector.finish())
        if pending:
            writer.write_table(pa.Table.from_pylist(pending, schema=ALERTS_SCHEMA))
    stats.late_events = detector.late_events
    return stats
