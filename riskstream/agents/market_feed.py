"""Every worker's own reading of the whole market-data topic (broadcast state, as in Flink).

Orders are partitioned by account and market data by symbol, so an account's orders meet
symbols of every partition. Each worker therefore reads all market-data partitions itself, with
no consumer group, and folds them with its orders in one event-time order: an order at time t
meets the market as of t on every worker, at any speed, after any restart. After a restart or a
rebalance the worker rebuilds the market from the start of the topic (:meth:`rewind`): the
market state is a function of the market's history, and nothing else has it as of the cut the
worker restarts from.

Supervised: a failing consumer is logged, counted through ``on_restart`` and replaced with
backoff, resuming at the offsets the worker expects next; ``failure`` says what is wrong while
it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from riskstream.agents.pipeline import SourceRecord

log = logging.getLogger(__name__)

RESTART_MAX_S = 30.0
"""Longest pause between reconnections of a feed whose consumer failed."""

Deliver = Callable[[list[SourceRecord]], Awaitable[None]]
Expected = Callable[[int], int | None]
"""Partition -> the next offset the worker expects (None: from the start)."""


class MarketFeed:
    def __init__(
        self,
        topic: str,
        kafka_kwargs: dict[str, Any],
        deliver: Deliver,
        expected: Expected,
        fetch_max_wait_ms: int,
        on_restart: Callable[[str], None] | None = None,
        max_records: int | None = None,
    ) -> None:
        self.topic = topic
        self._kwargs = kafka_kwargs
        self._deliver = deliver
        self._expected = expected
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._on_restart = on_restart
        self._max_records = max_records
        """Most records per delivery: a fetch of a backlog is handed over in parts, so that one
        delivery (and the fold lock it holds) stays short."""
        self.failure: str | None = None
        self.partitions: list[int] = []
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._paused: set[int] = set()

    async def start(self) -> None:
        self._consumer = await self._connect()
        self._task = asyncio.create_task(self._supervise())

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self._kwargs,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(f"market feed: topic {self.topic} has no partitions")
            self.partitions = sorted(partitions)
            consumer.assign([TopicPartition(self.topic, p) for p in self.partitions])
            self._seek_expected(consumer)
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    def _seek_expected(self, consumer: AIOKafkaConsumer) -> None:
        for p in self.partitions:
            consumer.seek(TopicPartition(self.topic, p), self._expected(p) or 0)
        consumer.pause(*(TopicPartition(self.topic, p) for p in self._paused))

    def rewind(self) -> None:
        """Read every partition again from the offsets the worker now expects (its start)."""
        self._paused.clear()
        if self._consumer is not None:
            self._consumer.resume(*self._consumer.assignment())
            self._seek_expected(self._consumer)

    def seek(self, partition: int, offset: int) -> None:
        """Read ``partition`` again from ``offset``."""
        if self._consumer is not None:
            self._consumer.seek(TopicPartition(self.topic, partition), offset)

    def hold_only(self, partitions: Iterable[int]) -> None:
        """Pause exactly ``partitions``: the others are resumed."""
        wanted = set(partitions)
        pause, resume = wanted - self._paused, self._paused - wanted
        self._paused = wanted
        if self._consumer is not None:
            if pause:
                self._consumer.pause(*(TopicPartition(self.topic, p) for p in sorted(pause)))
            if resume:
                self._consumer.resume(*(TopicPartition(self.topic, p) for p in sorted(resume)))

    @property
    def paused(self) -> set[int]:
        """Partitions this feed holds paused now."""
        return set(self._paused)

    def fetched_end(self, partition: int) -> tuple[int, float] | None:
        """The end offset the latest fetch of ``partition`` saw and when (epoch seconds) that
        fetch was answered (None: not fetched yet)."""
        if self._consumer is None:
            return None
        tp = TopicPartition(self.topic, partition)
        try:
            end = self._consumer.highwater(tp)
            at_ms = self._consumer.last_poll_timestamp(tp)
        except AssertionError:
            return None
        if end is None or at_ms is None:
            return None
        return int(end), at_ms / 1000

    def highwater(self, partition: int) -> int | None:
        """The end offset the last fetch of ``partition`` reported (None: not fetched yet)."""
        if self._consumer is None:
            return None
        end = self._consumer.highwater(TopicPartition(self.topic, partition))
        return None if end is None else int(end)

    async def _supervise(self) -> None:
        delay_s = 0.5
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._connect()
                    delay_s = 0.5
                    log.info("market feed reconnected to %s", self.topic)
                await self._follow(self._consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
                log.error("market feed failed (%s); reconnecting in %.1f s", self.failure, delay_s)
                if self._on_restart is not None:
                    self._on_restart(self.failure)
                consumer, self._consumer = self._consumer, None
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await consumer.stop()
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, RESTART_MAX_S)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=self._max_records)
            self.failure = None
            records = [
                SourceRecord(r.topic, r.partition, r.offset, r.key, r.value)
                for rs in batches.values()
                for r in rs
            ]
            await self._deliver(records)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
