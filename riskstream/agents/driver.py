"""The event-time driver: every input delivery (the agent's micro-batches, the market feed's
fetches, a timer) goes through here, one at a time, into the pipeline's merge and fold.

It also starts the fold over after every assignment (:meth:`Pipeline.restart`), from the
committed offsets of the partitions now owned and the start of market data, and carries out
the merge's pauses on the two consumers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiokafka.errors import KafkaError
from faust.types import TP

from riskstream.agents.pipeline import Pipeline, Restart, SourceRecord
from riskstream.faust_compat import committed_offsets, log_start_offsets, pause_partitions, resume_partitions
from riskstream.metrics import Metrics

log = logging.getLogger(__name__)
COMMITTED_TIMEOUT_S = 10.0


class FoldDriver:
    def __init__(
        self, app: faust.App, pipeline: Pipeline, lock: asyncio.Lock, trade_topic: str, metrics: Metrics
    ) -> None:
        self._app = app
        self._pipeline = pipeline
        self._lock = lock
        self._trade_topic = trade_topic
        self._m = metrics
        self._pausing = asyncio.Lock()
        self.feed: Any = None
        self.linked_feed: Any = None
        """The reader of linked-fills (every partition, from the start at every restart)."""
        self.crash: Callable[[BaseException, str], Awaitable[None]] | None = None
        self.restart_pending = True
        """Set by every assignment: the fold starts over before it takes another event."""

    async def deliver(self, records: list[SourceRecord]) -> None:
        try:
            async with self._lock:
                if self.restart_pending:
                    # Records of an owned partition mean the assignment is settled; without
                    # them, wait until Faust has finished rebalancing and recovering tables.
                    settled = any(r.topic == self._trade_topic for r in records) or not (
                        self._app.rebalancing or self._app.in_recovery
                    )
                    if not settled:
                        return
                    await self._restart()
                await self._pipeline.on_batch(records)
                ahead = self._pipeline.take_ahead()
                stalled = self._pipeline.take_stalled()
                linked_ahead = self._pipeline.take_linked_ahead()
                suspected = self._pipeline.take_suspected()
            if suspected:
                await self._ask_log_starts(suspected)
            if ahead:
                await self._seek_back(ahead)
            if stalled:
                await self._read_again(stalled)
            for partition, offset in sorted(linked_ahead.items()):
                self._m.offset_gaps.labels(self.linked_feed.topic, "reseek").inc()
                self.linked_feed.seek(partition, offset)
            await self._pause()
        except Exception as exc:
            if self.crash is not None:
                await self.crash(exc, "pipeline failed")
            raise

    async def _restart(self) -> None:
        consumer: Any = self._app.consumer
        owned = [tp for tp in consumer.assignment() if tp.topic == self._trade_topic]
        committed = await committed_offsets(self._app, owned, COMMITTED_TIMEOUT_S)
        starts = {tp.partition: offset or 0 for tp, offset in committed.items()}
        market = list(self.feed.partitions) if self.feed is not None else []
        self._pipeline.restart(Restart(starts, market))
        if self.feed is not None:
            self.feed.rewind()
        if self.linked_feed is not None:
            self.linked_feed.rewind()
        self.restart_pending = False
        self._m.fold_restarts.inc()
        self._m.partitions_held.set(0)
        log.info(
            "fold restarted: trade-logs partitions %s from %s, market data from the start",
            sorted(starts),
            [starts[p] for p in sorted(starts)],
        )

    async def _seek_back(self, ahead: dict[tuple[str, int], int]) -> None:
        """A reader went past a record the fold has not had (a fetch that crossed a seek or a
        rewind): read the partition again from the record the merge expects."""
        for (topic, partition), offset in sorted(ahead.items()):
            log.warning(
                "%s[%d] was read past offset %d, which the fold has not had; reading it again",
                topic,
                partition,
                offset,
            )
            self._m.offset_gaps.labels(topic, "reseek").inc()
            await self._seek_reader(topic, partition, offset)

    async def _ask_log_starts(self, suspected: dict[tuple[str, int], int]) -> None:
        """Partitions whose reader kept answering past the offset the fold expects: the records
        are gone only if the broker's log now starts past that offset (retention); otherwise
        they are read again, as any jump is."""
        tps = [TP(topic, partition) for topic, partition in sorted(suspected)]
        try:
            starts = await log_start_offsets(self._app, tps, COMMITTED_TIMEOUT_S)
        except (TimeoutError, KafkaError) as exc:
            log.warning("could not ask the broker where %s start (%r); reading them again", tps, exc)
            return
        gone: dict[tuple[str, int], tuple[int, int]] = {}
        for (topic, partition), expected in sorted(suspected.items()):
            start = starts.get(TP(topic, partition))
            if start is not None and start > expected:
                gone[(topic, partition)] = (expected, start)
                continue
            log.warning(
                "%s[%d]: records past offset %d kept coming, but the log starts at %s: offset %d"
                " is in it; reading it again",
                topic,
                partition,
                expected,
                start,
                expected,
            )
            self._m.offset_gaps.labels(topic, "in_log").inc()
        if gone:
            async with self._lock:
                self._pipeline.log_starts_are(gone)

    async def _read_again(self, stalled: dict[tuple[str, int], int]) -> None:
        """A partition's records stopped reaching the fold though its reader saw more (dropped
        on their way from the client: :mod:`~riskstream.agents.stalled_reads`): read it again
        from the record the merge expects. A trade-logs partition is resumed in the client too,
        in case a pause outlived the merge's decision."""
        for (topic, partition), offset in sorted(stalled.items()):
            log.warning(
                "%s[%d]: no record from offset %d reached the fold for %.0f s though its reader"
                " saw more; reading it again",
                topic,
                partition,
                offset,
                self._pipeline.reread_after_s,
            )
            self._m.offset_gaps.labels(topic, "stalled").inc()
            await self._seek_reader(topic, partition, offset, resume=True)

    async def _seek_reader(self, topic: str, partition: int, offset: int, resume: bool = False) -> None:
        """Read ``partition`` of ``topic`` from ``offset`` next: the agent's consumer for an owned
        trade-logs partition (resumed first with ``resume``), the market feed otherwise."""
        if topic == self._trade_topic:
            tp = TP(topic, partition)
            consumer: Any = self._app.consumer
            if tp in consumer.assignment():
                if resume:
                    await resume_partitions(self._app, {tp})
                await consumer.seek(tp, offset)
        elif self.feed is not None:
            self.feed.seek(partition, offset)

    async def _pause(self) -> None:
        """Carry out the merge's pauses; nothing is decided while Faust rebalances (a new
        assignment starts unpaused, and the fold starts over with it).

        One at a time, in the order decided: the market feed and the agent both deliver, and
        pausing a trade-logs partition awaits the consumer. Two interleaved calls once carried
        out a pause after the resume decided after it: the feed held a market-data partition
        the merge counted as running, the merge waited on it for good, and the worker stood
        still with 48 000 events held. The feed's partitions are also set to exactly what the
        merge holds, not moved by differences."""
        async with self._pausing:
            if self.restart_pending or self._app.rebalancing or self._app.in_recovery:
                return
            merge = self._pipeline.merge
            decision = merge.pauses()
            if not decision.pause and not decision.resume:
                return
            trade_pause = {TP(t, p) for t, p in decision.pause if t == self._trade_topic}
            trade_resume = {TP(t, p) for t, p in decision.resume if t == self._trade_topic}
            if trade_pause:
                await pause_partitions(self._app, trade_pause)
            if trade_resume:
                await resume_partitions(self._app, trade_resume)
            if self.feed is not None:
                self.feed.hold_only(p for t, p in merge.paused if t != self._trade_topic)
            self._m.partition_holds.inc(len(decision.pause))
            self._m.partitions_held.set(len(merge.paused))
