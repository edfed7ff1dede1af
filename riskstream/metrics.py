"""Every Prometheus metric riskstream exports, in one place, injected where used.

Each worker builds one :class:`Metrics` on its own registry, so tests can run several workers
in one process without colliding in the global registry.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.02,
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
        self.event_failures = Counter(
            "riskstream_event_failures_total",
            "Decoded events whose processing raised (stage: market, order, score, alert): the"
            " event went to the dead-letter topic with the error and the stream went on. Each is"
            " a bug to report with its dead letter.",
            ["topic", "stage"],
            registry=r,
        )
        self.replayed_events = Counter(
            "riskstream_replayed_events_total",
            "Redelivered messages skipped because their state was already checkpointed.",
            ["topic"],
            registry=r,
        )
        self.source_watermarks = Counter(
            "riskstream_source_watermarks_total",
            "Watermark records read from an input partition: its producer said it sends no"
            " earlier event there, so other partitions' events stop waiting for it.",
            ["topic"],
            registry=r,
        )
        self.out_of_order_events = Counter(
            "riskstream_out_of_order_events_total",
            "Events folded out of the event-time order: older than their partition's watermark,"
            " or arriving after the fold stopped waiting for their partition"
            " (stream.allowed_lateness_ms). Alerts then may differ from the backtest's.",
            registry=r,
        )
        self.unanswered_idle_releases = Counter(
            "riskstream_unanswered_idle_releases_total",
            "Events folded past a quiet partition whose reader had not answered a fetch since they"
            " arrived, after waiting stream.allowed_lateness_ms for it: in order unless a record"
            " written before them on that partition was not fetched yet.",
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
            "Wall time per micro-batch of each pipeline stage (checkpoint_pause: each stretch a"
            " checkpoint stops the fold for, fold-lock holds and the slices writing its state;"
            " checkpoint_pause_cpu: the CPU time the process spent in each; the rest of its wall"
            " time, it waited for a core).",
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
        self.fold_restarts = Counter(
            "riskstream_fold_restarts_total",
            "Assignments after which the fold started over from the checkpoints (the first one,"
            " then every rebalance): each replays what followed the last commit.",
            registry=r,
        )
        self.state_oversize = Counter(
            "riskstream_state_oversize_total",
            "States too large to checkpoint (stream.max_state_record_bytes): their last checkpoint"
            " stands, and a restart would lose what they gained since.",
            ["table"],
            registry=r,
        )
        self.partitions_held = Gauge(
            "riskstream_partitions_held",
            "Input partitions held now because their event time ran ahead of the others'"
            " (stream.max_event_time_skew_ms).",
            registry=r,
        )
        self.events_held = Gauge(
            "riskstream_events_held",
            "Events decoded but waiting for the other input partitions to reach their event time.",
            registry=r,
        )
        self.scoring_in_flight = Gauge(
            "riskstream_scoring_in_flight",
            "Folded micro-batches whose candidates are being scored or published now (bounded by"
            " scorer.batches_in_flight).",
            registry=r,
        )
        self.partition_holds = Counter(
            "riskstream_partition_holds_total",
            "Times an input partition was held for event-time alignment.",
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
            "Checkpoints that committed no offsets because the broker failed them or did not"
            " answer (retried at the next checkpoint).",
            registry=r,
        )
        self.offset_gaps = Counter(
            "riskstream_offset_gaps_total",
            "Forward jumps in an input partition's offsets seen by the consumer. outcome=reseek:"
            " the consumer sought back to the missing offset (nothing lost); outcome=skipped: the"
            " broker kept answering past it and its log starts past it, so the records are not in"
            " the log (a warning says which offsets); outcome=in_log: the broker kept answering"
            " past it but its log still holds it, so it was read again; outcome=stalled: no record"
            " came from the offset the fold expects though the reader saw more, so the partition"
            " was read again from it (records dropped on their way from the client).",
            ["topic", "outcome"],
            registry=r,
        )
        self.accounts_expired = Counter(
            "riskstream_accounts_expired_total",
            "Idle accounts whose live state was dropped from memory after the event-time time to"
            " live (their stored state stays, and is decoded again at their next event).",
            registry=r,
        )
        self.accounts_resident = Gauge(
            "riskstream_accounts_resident",
            "Account states held decoded in memory (the others are held as their stored bytes).",
            registry=r,
        )
        self.state_writes = Counter(
            "riskstream_state_writes_total",
            "Keys written to a changelog-backed state table.",
            ["table"],
            registry=r,
        )

        self.llm_up = Gauge(
            "riskstream_llm_up",
            "1 while the LLM scorer's engine or server takes requests; 0 while rules stand in.",
            registry=r,
        )
        self.llm_batch_candidates = Histogram(
            "riskstream_llm_batch_candidates",
            "Candidates submitted together to the LLM (one micro-batch).",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.llm_inflight = Gauge(
            "riskstream_llm_inflight_requests",
            "LLM requests running now, late ones included: the engine's batch as the worker sees it.",
            registry=r,
        )
        self.llm_request = Histogram(
            "riskstream_llm_request_seconds",
            "Submission to complete answer of one LLM request (queue time included).",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.llm_ttft = Histogram(
            "riskstream_llm_ttft_seconds",
            "Submission to first generated token of one LLM request.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.llm_output_tokens = Counter(
            "riskstream_llm_output_tokens_total", "Tokens the LLM generated.", registry=r
        )
        self.llm_assessments = Counter(
            "riskstream_llm_assessments_total",
            "Valid LLM assessments: ok = answered within deadline_ms, late = after it (an update).",
            ["outcome"],
            registry=r,
        )
        self.llm_fallbacks = Counter(
            "riskstream_llm_fallbacks_total",
            "Candidates left with their rule score, by reason (deadline, invalid, error,"
            " engine_down, shed: over requests_in_flight).",
            ["reason"],
            registry=r,
        )
        self.llm_aborted = Counter(
            "riskstream_llm_aborted_total",
            "LLM requests aborted in the engine after the update deadline.",
            registry=r,
        )
        self.llm_retrieval_failures = Counter(
            "riskstream_llm_retrieval_failures_total",
            "Prior-alert lookups that failed or ran out of time (the prompt went without history).",
            registry=r,
        )
        self._started = False
        self._not_ready: dict[str, str] = {}
        """condition -> why it fails (broker, database, stalled); ready when empty and started."""
        self.health_check: Callable[[], str | None] = lambda: None
        """Why the worker is not live (its loop or a checkpoint stuck), or None: /healthz."""
        self.ready = Gauge(
            "riskstream_ready",
            "1 while the worker is started and consuming: services up, broker and audit database"
            " reachable, no stalled partition. What /readyz answers.",
            registry=r,
        )
        self.dependency_up = Gauge(
            "riskstream_dependency_up",
            "1 while the worker reaches the dependency (broker: end offsets answered; database:"
            " the last audit write succeeded), 0 while it does not.",
            ["dependency"],
            registry=r,
        )
        self.task_restarts = Counter(
            "riskstream_task_restarts_total",
            "Background tasks restarted by their supervisor after a failure (task: market_feed).",
            ["task"],
            registry=r,
        )
        self.stalled_partitions = Gauge(
            "riskstream_stalled_partitions",
            "Input partitions with records waiting and no progress for stream.stall_after_s.",
            registry=r,
        )
        self.alert_updates = Counter(
            "riskstream_alert_updates_total",
            "Alerts re-published as a new version with a late LLM assessment.",
            registry=r,
        )
        self.gc_pause = Histogram(
            "riskstream_gc_pause_seconds",
            "Python garbage-collector passes, by generation: the whole process stops for each, so"
            " a generation-2 pass over a large state shows in every stage's latency at that moment.",
            ["generation"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self._gc_started_s = 0.0

    def watch_gc(self) -> None:
        """Time every collector pass from now on (once per process: the worker's)."""
        if self._on_gc not in gc.callbacks:
            gc.callbacks.append(self._on_gc)

    def unwatch_gc(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started_s = time.perf_counter()
        else:
            self.gc_pause.labels(str(info["generation"])).observe(time.perf_counter() - self._gc_started_s)

    def mark_ready(self) -> None:
        self._started = True
        self._update_ready()

    def set_condition(self, name: str, failure: str | None) -> None:
        """Record whether one readiness condition holds (``failure`` None) or why it does not."""
        if failure is None:
            self._not_ready.pop(name, None)
        else:
            self._not_ready[name] = failure
        self._update_ready()

    def readiness(self) -> str | None:
        """Why the worker is not ready, or None when it is."""
        if not self._started:
            return "starting"
        if self._not_ready:
            return "; ".join(f"{k}: {v}" for k, v in sorted(self._not_ready.items()))
        return None

    def _update_ready(self) -> None:
        self.ready.set(1 if self.readiness() is None else 0)

    def serve(self, port: int, addr: str = "127.0.0.1") -> None:
        """/metrics, /healthz (the worker is live) and /readyz (started and consuming) on
        ``addr:port``, in a daemon thread: what Prometheus scrapes and Kubernetes probes. The
        answers are read from state the event loop keeps, so a stuck loop shows in /healthz."""
        metrics_app = make_wsgi_app(self.registry)

        def answer(start_response: Callable[..., Any], problem: str | None, ok: bytes) -> list[bytes]:
            status = "200 OK" if problem is None else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain")])
            return [ok if problem is None else problem.encode() + b"\n"]

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                return answer(start_response, self.health_check(), b"ok\n")
            if path == "/readyz":
                return answer(start_response, self.readiness(), b"ready\n")
            result: Iterable[bytes] = metrics_app(environ, start_response)
            return result

        server = make_server(addr, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
        threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
