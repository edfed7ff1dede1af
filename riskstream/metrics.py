"""Every Prometheus metric riskstream exports, in one place, injected where used.

Each worker builds one :class:`Metrics` on its own registry, so tests can run several workers
in one process without colliding in the global registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.8,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.events_consumed = Counter(
            "riskstream_events_consumed_total",
            "Messages read from an input topic.",
            ["topic"],
            registry=r,
        )
        self.decode_failures = Counter(
            "riskstream_decode_failures_total",
            "Messages that failed decoding or validation and went to the dead-letter topic.",
            ["topic"],
            registry=r,
        )
        self.replayed_events = Counter(
            "riskstream_replayed_events_total",
            "Redelivered messages skipped because their state was already checkpointed.",
            ["topic"],
            registry=r,
        )
        self.late_events = Counter(
            "riskstream_late_events_total",
            "Events later than the window grace: kept in state, left out of the window.",
            ["topic"],
            registry=r,
        )
        self.alerts = Counter(
            "riskstream_alerts_total",
            "Alerts published to risk-alerts.",
            ["category", "severity"],
            registry=r,
        )
        self.event_to_alert = Histogram(
            "riskstream_event_to_alert_seconds",
            "Triggering event's event time to the alert's publication (end-to-end latency).",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.stage = Histogram(
            "riskstream_stage_seconds",
            "Wall time per micro-batch of each pipeline stage.",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_events = Histogram(
            "riskstream_batch_events",
            "Events per micro-batch taken from a stream.",
            ["topic"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "riskstream_consumer_lag_messages",
            "Broker end offset minus the next offset the worker will read.",
            ["topic", "partition"],
            registry=r,
        )
        self.audit_write = Histogram(
            "riskstream_audit_write_seconds",
            "Time to upsert one batch of alerts into the audit table.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.audit_failures = Counter(
            "riskstream_audit_write_failures_total", "Audit writes that raised.", registry=r
        )
        self.dead_letters = Counter(
            "riskstream_dead_letters_total",
            "Messages published to the dead-letter topic.",
            ["topic"],
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "riskstream_assigned_partitions",
            "Input-topic partitions this worker owns now; 0 while it joins the group.",
            registry=r,
        )
        self.checkpoints = Counter(
            "riskstream_checkpoints_total",
            "State checkpoints followed by an offset commit.",
            ["table"],
            registry=r,
        )
        self.commit_failures = Counter(
            "riskstream_commit_failures_total",
            "Checkpoints whose offset commit failed (retried at the next checkpoint).",
            registry=r,
        )
        self.state_writes = Counter(
            "riskstream_state_writes_total",
            "Keys written to a changelog-backed state table.",
            ["table"],
            registry=r,
        )

    def serve(self, port: int) -> None:
        """Expose /metrics on ``port`` in a daemon thread."""
        start_http_server(port, registry=self.registry)
