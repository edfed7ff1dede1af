"""``riskstream top``: the dashboard's figures in a terminal, read from a worker's /metrics.

Rates and percentiles come from the difference of two scrapes (as Prometheus' ``rate`` and
``histogram_quantile`` would over that interval), so the view needs no Prometheus at all.
"""

from __future__ import annotations

import math
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.table import Table

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Scrape:
    at_s: float
    samples: dict[str, dict[Labels, float]] = field(default_factory=dict)
    """Sample name -> labels -> value."""

    @classmethod
    def parse(cls, text: str, at_s: float) -> Scrape:
        samples: dict[str, dict[Labels, float]] = defaultdict(dict)
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[s.name][tuple(sorted(s.labels.items()))] = s.value
        return cls(at_s, dict(samples))

    def total(self, name: str, by: str | None = None) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for labels, value in self.samples.get(name, {}).items():
            out[dict(labels).get(by, "") if by else ""] += value
        return dict(out)


def rates(before: Scrape, now: Scrape, name: str, by: str | None = None) -> dict[str, float]:
    """Per-second increase of a counter between two scrapes, summed by one label."""
    span = max(now.at_s - before.at_s, 1e-9)
    old = before.total(name, by)
    return {k: max(0.0, v - old.get(k, 0.0)) / span for k, v in now.total(name, by).items()}


def quantile(
    before: Scrape, now: Scrape, name: str, q: float, where: Callable[[dict[str, str]], bool] | None = None
) -> float:
    """``histogram_quantile`` over the buckets' increase between two scrapes (NaN: no data)."""
    counts: dict[float, float] = defaultdict(float)
    for scrape, sign in ((now, 1.0), (before, -1.0)):
        for labels, value in scrape.samples.get(name + "_bucket", {}).items():
            d = dict(labels)
            if where is None or where(d):
                counts[float(d["le"])] += sign * value
    bounds = sorted(counts)
    if not bounds or counts[bounds[-1]] <= 0:
        return math.nan
    rank = q * counts[bounds[-1]]
    prev_bound, prev_count = 0.0, 0.0
    for bound in bounds:
        if counts[bound] >= rank:
            if math.isinf(bound):
                return prev_bound
            width = counts[bound] - prev_count
            return prev_bound + (bound - prev_bound) * ((rank - prev_count) / width if width > 0 else 1.0)
        prev_bound, prev_count = bound, counts[bound]
    return prev_bound


def _label_is(name: str, value: str) -> Callable[[dict[str, str]], bool]:
    return lambda labels: labels.get(name) == value


def fetch(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    return Scrape.parse(text, time.monotonic())


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:,.0f} ms"


def render(before: Scrape, now: Scrape) -> Group:
    """The figures of the Grafana dashboard's rows, as tables."""
    flow = Table(title="Throughput", expand=True)
    for col in ("topic", "events/s", "lag", "dead letters/s"):
        flow.add_column(col)
    consumed = rates(before, now, "riskstream_events_consumed_total", "topic")
    lag = now.total("riskstream_consumer_lag_messages", "topic")
    dead = rates(before, now, "riskstream_dead_letters_total", "topic")
    for topic in sorted(set(consumed) | set(lag)):
        flow.add_row(
            topic,
            f"{consumed.get(topic, 0.0):,.1f}",
            f"{lag.get(topic, 0.0):,.0f}",
            f"{dead.get(topic, 0.0):,.2f}",
        )

    latency = Table(title="Latency", expand=True)
    for col in ("measure", "p50", "p95", "p99"):
        latency.add_column(col)
    rows: list[tuple[str, str, Callable[[dict[str, str]], bool] | None]] = [
        ("event -> alert", "riskstream_event_to_alert_seconds", None),
        ("audit write", "riskstream_audit_write_seconds", None),
        ("LLM request", "riskstream_llm_request_seconds", None),
        ("LLM TTFT", "riskstream_llm_ttft_seconds", None),
    ]
    stages = sorted(
        {dict(k).get("stage", "") for k in now.samples.get("riskstream_stage_seconds_bucket", {})}
    )
    for stage in stages:
        rows.append((f"stage {stage}", "riskstream_stage_seconds", _label_is("stage", stage)))
    for label, metric, where in rows:
        latency.add_row(label, *(_ms(quantile(before, now, metric, q, where)) for q in (0.5, 0.95, 0.99)))

    alerts = Table(title="Alerts", expand=True)
    for col in ("category", "alerts/s", "total"):
        alerts.add_column(col)
    per_s = rates(before, now, "riskstream_alerts_total", "category")
    totals = now.total("riskstream_alerts_total", "category")
    for category in sorted(totals):
        alerts.add_row(category, f"{per_s.get(category, 0.0):,.2f}", f"{totals[category]:,.0f}")
    fallbacks = sum(rates(before, now, "riskstream_llm_fallbacks_total").values())
    published = sum(per_s.values())
    llm_up = now.total("riskstream_llm_up").get("", math.nan)
    batch = quantile(before, now, "riskstream_llm_batch_candidates", 0.5)
    degraded = f"{fallbacks / published:.0%}" if published > 0 else "-"
    llm = Table(title="LLM", expand=True)
    for col in ("up", "batch p50", "degraded share"):
        llm.add_column(col)
    llm.add_row(
        "-" if math.isnan(llm_up) else f"{llm_up:.0f}", "-" if math.isnan(batch) else f"{batch:.1f}", degraded
    )
    return Group(flow, latency, alerts, llm)
