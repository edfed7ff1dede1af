"""The operator's figures as PromQL, one list for the Grafana dashboard (``grafana.py``) and the
terminal view (``top.py``); a test runs every query against a real Prometheus scraping a worker.

``$__rate_interval`` is Grafana's range variable; :func:`for_prometheus` fills it in for a plain
Prometheus query.
"""

from __future__ import annotations

from dataclasses import dataclass

RATE = "$__rate_interval"


@dataclass(frozen=True, slots=True)
class Query:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    unit: str
    """Grafana unit id: ops, s, short, percentunit."""
    queries: tuple[Query, ...]
    row: str


def _pct(q: str, metric: str, by: str = "le") -> str:
    return f"histogram_quantile({q}, sum by ({by}) (rate({metric}_bucket[{RATE}])))"


PANELS: tuple[Panel, ...] = (
    Panel(
        "Events consumed per topic",
        "ops",
        (Query(f"sum by (topic) (rate(riskstream_events_consumed_total[{RATE}]))", "{{topic}}"),),
        "Throughput",
    ),
    Panel(
        "Consumer lag",
        "short",
        (Query("sum by (topic) (riskstream_consumer_lag_messages)", "{{topic}}"),),
        "Throughput",
    ),
    Panel(
        "Waiting for event-time alignment",
        "short",
        (
            Query("sum(riskstream_events_held)", "events held"),
            Query("sum(riskstream_partitions_held)", "partitions paused"),
        ),
        "Throughput",
    ),
    Panel(
        "Event to alert latency",
        "s",
        tuple(
            Query(_pct(q, "riskstream_event_to_alert_seconds"), f"p{int(float(q) * 100)}")
            for q in ("0.5", "0.95", "0.99")
        ),
        "Latency",
    ),
    Panel(
        "Stage latency p99",
        "s",
        (Query(_pct("0.99", "riskstream_stage_seconds", "le, stage"), "{{stage}}"),),
        "Latency",
    ),
    Panel(
        "Audit write latency p99",
        "s",
        (Query(_pct("0.99", "riskstream_audit_write_seconds"), "p99"),),
        "Latency",
    ),
    Panel(
        "Alerts by category",
        "ops",
        (Query(f"sum by (category) (rate(riskstream_alerts_total[{RATE}]))", "{{category}}"),),
        "Alerts",
    ),
    Panel(
        "Alerts by severity",
        "ops",
        (Query(f"sum by (severity) (rate(riskstream_alerts_total[{RATE}]))", "{{severity}}"),),
        "Alerts",
    ),
    Panel(
        "Dead letters",
        "ops",
        (Query(f"sum by (topic) (rate(riskstream_dead_letters_total[{RATE}]))", "{{topic}}"),),
        "Alerts",
    ),
    Panel(
        "LLM batch size p50",
        "short",
        (Query(_pct("0.5", "riskstream_llm_batch_candidates"), "candidates per batch"),),
        "LLM",
    ),
    Panel(
        "LLM request time p99 (queue included) and TTFT p99",
        "s",
        (
            Query(_pct("0.99", "riskstream_llm_request_seconds"), "request"),
            Query(_pct("0.99", "riskstream_llm_ttft_seconds"), "TTFT"),
        ),
        "LLM",
    ),
    Panel(
        "Degraded (rule-scored) share",
        "percentunit",
        (
            Query(
                f"sum(rate(riskstream_llm_fallbacks_total[{RATE}]))"
                f" / clamp_min(sum(rate(riskstream_alerts_total[{RATE}])), 1e-9)",
                "degraded",
            ),
        ),
        "LLM",
    ),
    Panel("LLM up", "short", (Query("min(riskstream_llm_up)", "up"),), "LLM"),
)


def for_prometheus(expr: str, rate_window: str = "1m") -> str:
    return expr.replace(RATE, rate_window)
