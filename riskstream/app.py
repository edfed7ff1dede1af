"""The composition root: settings become the Faust app, tables, scorer, sinks and metrics here,
and nowhere else.

Commit protocol (why offsets are never ahead of durable effects):
1. an agent takes a micro-batch, folds it into cached state, publishes alerts and waits for the
   broker, hands their audit rows to the background audit writer, then returns; only then does
   Faust acknowledge the batch;
2. Faust's own periodic commit is turned off; a checkpoint timer pauses the agent, waits until
   every submitted audit row is written, writes every dirty key to its changelog and notes the
   offsets processed so far; after the producer is flushed it commits exactly those, so
   committed offsets never run ahead of audited alerts or checkpointed state;
3. each stored state carries the offset of the last event in it, so what is redelivered after
   a crash is skipped by state and re-publishes nothing new (alert ids are deterministic).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from riskstream.agents.checkpoint import Checkpoint, CheckpointIO
from riskstream.agents.driver import FoldDriver
from riskstream.agents.lag import LagMonitor, LagSources
from riskstream.agents.market_feed import MarketFeed
from riskstream.agents.pipeline import Admitted, Pipeline, Source, SourceRecord
from riskstream.agents.state_store import CheckpointedStore
from riskstream.agents.state_table import FaustStateTable
from riskstream.agents.table_file import register_store
from riskstream.agents.watchdog import StreamWatchdog
from riskstream.core.clock import Clock, wall_clock_ns
from riskstream.core.event_time import EventTimeMerge
from riskstream.core.state import AccountState
from riskstream.detection import detection_context, load_limits
from riskstream.faust_compat import (
    RiskstreamApp,
    commit_offsets,
    end_offsets,
    fetch_state,
    kafka_producer,
)
from riskstream.faust_compat import fetched_end as consumer_fetched_end
from riskstream.kafka import aiokafka_kwargs, ssl_context
from riskstream.llm import RuleScorer, Scorer
from riskstream.llm.client import LlmClient
from riskstream.llm.openai_client import OpenAIClient
from riskstream.llm.prior import PriorAlertCache
from riskstream.llm.scorer import LlmScorer, LlmScorerConfig, PriorAlertSource
from riskstream.metrics import Metrics
from riskstream.records.plausibility import EventTimeBounds
from riskstream.settings import KafkaSettings, SecurityProtocol, Settings
from riskstream.sinks import AlertPublisher, AuditLog, AuditWriter, DeadLetterPublisher, LinkedFillPublisher

log = logging.getLogger(__name__)
RECORD_OVERHEAD_BYTES = 64 * 1024
"""Room above the largest state for its key and the record and request framing."""
NEVER_S = 10**9
"""Faust's own commit triggers are pushed out of reach; the checkpoint timer commits."""


def check_settings(settings: Settings) -> None:
    """Fail before touching the broker on what can be checked locally: the limits file, the
    audit database URL, the TLS files."""
    load_limits(settings)
    url = settings.database.url.get_secret_value()
    if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ValueError(
            "RISKSTREAM_DATABASE__URL must be postgresql+asyncpg://... or sqlite+aiosqlite://..."
        )
    ssl_context(settings.kafka)


def broker_credentials(k: KafkaSettings) -> Any:
    ctx = ssl_context(k)
    if k.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL):
        return faust.SASLCredentials(
            username=k.sasl_username,
            password=k.sasl_password.get_secret_value() if k.sasl_password else None,
            mechanism=k.sasl_mechanism,
            ssl_context=ctx,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


def build_scorer(settings: Settings, metrics: Metrics, prior: PriorAlertSource | None = None) -> Scorer:
    """Rules, or an LLM client behind the one :class:`LlmScorer` (deadlines, retrieval,
    fallback). The vLLM module is imported only when asked for: it is an optional install."""
    s = settings.scorer
    if s.kind == "rules":
        return RuleScorer()
    client: LlmClient
    if s.kind == "vllm":
        from riskstream.llm.vllm_engine import VllmEngineClient

        client = VllmEngineClient(s)
    else:
        client = OpenAIClient(s)
    config = LlmScorerConfig(
        deadline_s=s.deadline_ms / 1000,
        update_deadline_s=s.update_deadline_ms / 1000,
        engine_retry_s=s.engine_retry_s,
        prior_max_alerts=s.prior_alerts,
        prior_max_chars=s.prior_alerts_max_chars,
        first_version=s.first_version,
        requests_in_flight=s.requests_in_flight,
    )
    return LlmScorer(client, config, metrics, prior)


@dataclass
class Runtime:
    """What the composition root hands to the command that runs it."""

    app: faust.App
    pipeline: Pipeline
    metrics: Metrics


def build_runtime(
    settings: Settings,
    partitions: dict[str, int],
    *,
    clock: Clock = wall_clock_ns,
    scorer: Scorer | None = None,
    metrics: Metrics | None = None,
) -> Runtime:
    """``partitions`` maps the input topics to their partition counts (tables follow them)."""
    names = settings.topics
    n_trades, n_market = partitions[names.trade_logs], partitions[names.market_data]
    if n_trades != n_market:
        raise ValueError(
            f"{names.trade_logs} has {n_trades} partitions and {names.market_data} {n_market}: "
            "one agent reads both and its state tables are co-partitioned, so they must match"
        )
    metrics = metrics or Metrics()
    db = settings.database
    audit_log = AuditLog.from_url(db.url.get_secret_value(), db.pool_size, db.statement_timeout_s)
    prior_alerts = PriorAlertCache(audit_log.recent_alerts, keep=settings.scorer.prior_alerts)
    scorer = scorer or build_scorer(settings, metrics, prior_alerts)

    exits: list[asyncio.Task[None]] = []

    def on_offset_gap(topic: str, partition: int, expected: int, got: int, outcome: str) -> None:
        metrics.offset_gaps.labels(topic, outcome).inc()
        if outcome == "reseek":
            log.warning(
                "%s/%d: fetch jumped from offset %d to %d; seeking back to %d",
                topic,
                partition,
                expected,
                got,
                expected,
            )
        elif outcome == "skipped":
            log.error(
                "%s/%d: offsets %d..%d are not in the log (the broker answers from %d); skipped",
                topic,
                partition,
                expected,
                got - 1,
                got,
            )
        elif not exits:
            reason = (
                f"{topic}/{partition} restarted at offset {got} below {expected}: the broker lost its log"
            )
            exits.append(asyncio.get_running_loop().create_task(crash(RuntimeError(reason), "log restarted")))

    # Faust makes its data directory at start (empty: the tables' stores are in memory and in
    # the state file); beside the state file, not in the directory the worker was started from.
    state_dir = settings.stream.state_dir or Path(tempfile.gettempdir())
    state_dir.mkdir(parents=True, exist_ok=True)
    faust_datadir = state_dir / f"{settings.app_id}-faust"
    app = RiskstreamApp(
        settings.app_id,
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        gapless_topics=(names.trade_logs, names.market_data),
        on_offset_gap=on_offset_gap,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka.bootstrap_servers.split(",")],
        broker_credentials=broker_credentials(settings.kafka),
        store="memory://",
        datadir=str(faust_datadir),
        # Tansu reports end offsets low by up to a batch; standbys then crash on rebalance.
        table_standby_replicas=0,
        topic_replication_factor=1,
        topic_partitions=n_trades,
        processing_guarantee="at_least_once",
        web_enabled=False,
        autodiscover=False,
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.kafka.session_timeout_s / 10),
        broker_rebalance_timeout=settings.kafka.session_timeout_s * 3,
        broker_commit_every=NEVER_S,
        broker_commit_interval=NEVER_S,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=settings.stream.max_state_record_bytes + RECORD_OVERHEAD_BYTES,
        stream_wait_empty=True,
    )
    raw: dict[str, Any] = {
        "key_type": bytes,
        "value_type": bytes,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }
    # acks=False: Faust keeps no per-message ack bookkeeping for the inputs (it would grow
    # without bound, since Faust's own commit, which prunes it, never runs) and never commits
    # them itself; the checkpoint is the only thing that commits input offsets. Market data is
    # not a group input: every worker reads all of it (MarketFeed).
    inputs = app.topic(names.trade_logs, acks=False, **raw)
    table_schema: Any = faust.Schema(
        key_type=str, value_type=bytes, key_serializer="json", value_serializer="raw"
    )
    max_record = settings.stream.max_state_record_bytes
    changelog_configs = {"max.message.bytes": str(max_record + RECORD_OVERHEAD_BYTES)}
    account_table = app.Table(
        "account-state",
        partitions=n_trades,
        schema=table_schema,
        extra_topic_configs=changelog_configs,
        store=register_store(),
        options={"dir": state_dir},
    )

    def oversize(key: str, size: int) -> None:
        metrics.state_oversize.labels("account-state").inc()
        log.error(
            "account-state of %r is %d bytes, over stream.max_state_record_bytes (%d): not checkpointed",
            key,
            size,
            max_record,
        )

    state_table = FaustStateTable(account_table, lambda: kafka_producer(app))
    accounts: CheckpointedStore[AccountState] = CheckpointedStore(
        state_table,
        AccountState.to_bytes,
        AccountState.from_json,
        AccountState,
        max_record,
        oversize,
    )
    context = detection_context(settings, {})

    async def send(topic: str, key: bytes, value: bytes) -> Awaitable[object]:
        return await app.producer.send(topic, key, value, None, None, None)

    audit = AuditWriter(
        audit_log,
        metrics,
        db.retry_max_s,
        timeout_s=3 * db.statement_timeout_s,
        on_submit=prior_alerts.remember,
    )
    stream = settings.stream
    merge: EventTimeMerge[Source, Admitted] = EventTimeMerge(
        stream.allowed_lateness_ms / 1000, stream.max_event_time_skew_ms * 1_000_000
    )
    feed_holder: list[MarketFeed] = []

    def fetched_end(source: Source) -> tuple[int, float] | None:
        """The end offset the partition's latest fetch saw (exact, unlike ListOffsets on Tansu)
        and when that fetch was answered."""
        topic, partition = source
        if topic == names.market_data:
            return feed_holder[0].fetched_end(partition) if feed_holder else None
        if source in merge.paused:
            return None
        return consumer_fetched_end(app, TP(topic, partition))

    pipeline = Pipeline(
        accounts=accounts,
        context=context,
        size_alpha=settings.windows.size_ewma_alpha,
        scorer=scorer,
        alerts=AlertPublisher(send, names.risk_alerts, clock),
        audit=audit,
        dead_letters=DeadLetterPublisher(send, names.dead_letter),
        metrics=metrics,
        clock=clock,
        market_topic=names.market_data,
        trade_topic=names.trade_logs,
        merge=merge,
        at_end=fetched_end,
        event_time_bounds=EventTimeBounds(stream.max_event_lead_s, stream.max_event_age_s, wall_clock_ns),
        linked_fills=LinkedFillPublisher(send, names.linked_fills),
        scoring_in_flight=settings.scorer.batches_in_flight,
        idle_ttl_s=stream.account_idle_ttl_s,
        reread_after_s=stream.reread_after_s,
    )
    ready = asyncio.Event()
    lock = asyncio.Lock()
    within_s = stream.batch_within_ms / 1000
    driver = FoldDriver(app, pipeline, lock, names.trade_logs, metrics)

    async def crash(exc: BaseException, what: str = "pipeline failed") -> None:
        """What one event or candidate does wrong is dead-lettered inside the pipeline; what
        reaches here is the infrastructure failing (the broker refusing alerts or dead letters).
        The worker stops so that its supervisor restarts it from the committed offsets, instead
        of Faust restarting the agent past the unprocessed batch (which would drop it)."""
        log.critical("%s; stopping the worker to replay from committed offsets", what, exc_info=exc)
        await app.crash(exc)

    driver.crash = crash

    async def deliver_market(records: list[SourceRecord]) -> None:
        if ready.is_set():
            await driver.deliver(records)

    feed = MarketFeed(
        names.market_data,
        aiokafka_kwargs(settings.kafka),
        deliver_market,
        lambda partition: merge.next_offset((names.market_data, partition)),
        settings.kafka.fetch_max_wait_ms,
        on_restart=lambda _: metrics.task_restarts.labels("market_feed").inc(),
        max_records=stream.batch_max_events,
    )
    feed_holder.append(feed)
    driver.feed = feed
    # The same broadcast reading for the linked accounts' fills, outside the event-time merge
    # (their book pairs legs in any order): from the start after every restart of the fold.
    linked_feed = MarketFeed(
        names.linked_fills,
        aiokafka_kwargs(settings.kafka),
        deliver_market,
        lambda partition: pipeline.linked_next.get(partition),
        settings.kafka.fetch_max_wait_ms,
        on_restart=lambda _: metrics.task_restarts.labels("linked_feed").inc(),
        max_records=stream.batch_max_events,
    )
    driver.linked_feed = linked_feed

    @app.task
    async def start_services() -> None:
        await audit_log.ensure_schema()
        await feed.start()
        await linked_feed.start()
        await scorer.start()
        # Half the objects the collector tracks were made at start-up (Faust, SQLAlchemy,
        # pydantic) and live forever; frozen, they no longer lengthen each full collection,
        # a pause that every event in flight waits out.
        gc.freeze()
        ready.set()
        metrics.mark_ready()
        log.info("riskstream ready: scorer=%s", settings.scorer.kind)

    @app.agent(inputs, name="surveillance")
    async def surveil(stream_: Any) -> None:
        async for events in stream_.take_events(stream.batch_max_events, within_s):
            await ready.wait()
            messages = (e.message for e in events)
            records = [SourceRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in messages]
            await driver.deliver(records)

    # Held events are released as quiet partitions' allowed lateness runs out, batch or not.
    @app.timer(max(0.01, min(0.05, stream.allowed_lateness_ms / 4000)), name="event-time")
    async def event_time_timer() -> None:
        if ready.is_set():
            await driver.deliver([])

    watchdog: StreamWatchdog[TP] = StreamWatchdog(stream.stall_after_s, stream.stall_exit_s, time.monotonic)

    def input_partitions() -> list[TP]:
        consumer: Any = app.consumer
        return [tp for tp in consumer.assignment() if tp.topic == names.trade_logs]

    async def same_log() -> bool:
        """Whether the broker still holds the log this worker has read: a broker that restarted
        empty must not receive the old log's state and offsets (a successor would skip the new
        records as already processed). The worker exits instead, to start afresh."""
        try:
            ends = await end_offsets(app, input_partitions(), settings.kafka.session_timeout_s)
        except Exception as exc:
            metrics.commit_failures.inc()
            log.warning(
                "checkpoint skipped, nothing committed: the broker did not answer end offsets (%r)", exc
            )
            return False
        rewound = watchdog.note_ends(ends)
        if rewound:
            reason = f"end offsets moved backwards on {sorted(map(str, rewound))}: the broker lost its log"
            await crash(RuntimeError(reason), "broker restarted empty")
            return False
        return True

    async def flush_producer() -> None:
        await state_table.send_pending()
        await app.producer.flush()

    async def commit(offsets: Mapping[Source, int]) -> object:
        return await commit_offsets(app, {TP(t, p): o for (t, p), o in offsets.items()})

    checkpoint = Checkpoint(
        pipeline,
        accounts,
        audit,
        CheckpointIO(flush_producer, commit, same_log, timeout_s=2 * settings.kafka.session_timeout_s),
        lock,
        metrics,
        precopy_slice_s=stream.checkpoint_slice_ms / 1000,
    )

    @app.timer(stream.checkpoint_interval_ms / 1000, name="checkpoint")
    async def checkpoint_timer() -> None:
        if not driver.restart_pending:
            await checkpoint.run()

    async def on_revoked(app_: Any, revoked: set[TP], **_: Any) -> None:
        if not driver.restart_pending:
            await checkpoint.run()
        watchdog.forget(revoked)
        # The fold starts over on the next assignment, from the committed offsets.
        driver.restart_pending = True
        # Accounts may come back after another worker alerted on them.
        prior_alerts.clear()

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]

    async def on_assigned(app_: Any, assigned: set[TP], **_: Any) -> None:
        inputs_now = [tp for tp in assigned if tp.topic == names.trade_logs]
        metrics.assigned_partitions.set(len(inputs_now))
        driver.restart_pending = True
        log.info("assigned %d input partitions", len(inputs_now))

    app.on_partitions_assigned.connect(on_assigned)  # type: ignore[arg-type]

    async def on_shutdown(app_: Any, **_: Any) -> None:
        """Graceful stop: write what is pending so the next start replays little, then release
        the scorer and the database. Offsets are not committed here (the consumer is already
        stopped); the applied offsets in the state make the replay a no-op."""
        try:
            await pipeline.drain()
            if not await audit.flush():
                log.warning(
                    "%d alerts not yet in the audit table at shutdown: their offsets are not"
                    " committed, so the next start raises them again",
                    audit.pending,
                )
            elif not driver.restart_pending:
                async with lock:
                    checkpoint.write_state()
                await flush_producer()
                accounts.seal()
                await flush_producer()
        except Exception:
            log.exception("final flush failed; the next start replays from the last checkpoint")
        await feed.stop()
        await linked_feed.stop()
        await scorer.close()
        await audit_log.close()

    app.on_before_shutdown.connect(on_shutdown)  # type: ignore[arg-type]

    @app.timer(settings.database.flush_interval_ms / 1000, name="audit-flush")
    async def audit_flush_timer() -> None:
        await audit.flush()

    def committed(tp: TP) -> int | None:
        consumer: Any = app.consumer
        offset = consumer._committed_offset.get(tp)
        return None if offset is None else int(offset)

    lag = LagMonitor(
        LagSources(
            assigned=input_partitions,
            end_offsets=lambda tps: end_offsets(app, tps, settings.kafka.session_timeout_s),
            positions=pipeline.positions,
            committed=committed,
            held=lambda: set(merge.paused),
            market_partitions=lambda: feed.partitions,
            market_end=feed.highwater,
            market_failure=lambda: feed.failure,
            waiting_on=merge.waiting_on,
            fetch_state=lambda: {**fetch_state(app), "market_feed_paused": sorted(map(str, feed.paused))},
            fold=lambda: (merge.held(), merge.last_key),
            merge_state=merge.describe,
        ),
        watchdog,
        metrics,
        names.market_data,
        crash,
    )

    @app.timer(stream.lag_poll_s, name="consumer-lag")
    async def measure_lag() -> None:
        if not (app.rebalancing or app.in_recovery or not ready.is_set() or driver.restart_pending):
            await lag.poll()

    loop_tick = [time.monotonic()]

    @app.timer(1.0, name="liveness")
    async def liveness_tick() -> None:
        loop_tick[0] = time.monotonic()

    def health_check() -> str | None:
        """Read from the metrics thread: a loop that stopped ticking, or a checkpoint that has
        run past the liveness timeout (a call that hangs), means the worker is not live."""
        now = time.monotonic()
        if now - loop_tick[0] > stream.liveness_timeout_s:
            return f"event loop has not run for {now - loop_tick[0]:.0f} s"
        started = checkpoint.started_s
        if started is not None and now - started > stream.liveness_timeout_s:
            return f"checkpoint running for {now - started:.0f} s"
        return None

    metrics.health_check = health_check

    return Runtime(app, pipeline, metrics)
