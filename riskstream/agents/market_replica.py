"""Every worker's read-only copy of the whole market.

The agent that owns a market-data partition keeps its symbols' state live; an account's orders
may be on another worker. This replica follows the symbol-state changelog (all partitions, no
consumer group) so detectors on any worker see every symbol, at most one checkpoint interval
behind the owner.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.state import SymbolState

log = logging.getLogger(__name__)


RESTART_MAX_S = 30.0
"""Longest pause between reconnections of a replica whose consumer failed."""


class MarketReplica:
    """Supervised: a failure of its consumer (broker gone, client error) is logged, reported
    through ``on_restart`` and recovered by a fresh consumer with backoff, so a worker never
    goes on with a frozen market unnoticed. ``failure`` says what is wrong while it is."""

    def __init__(
        self,
        marker_key: str,
        topic: str,
        kafka_kwargs: dict[str, Any],
        on_restart: Callable[[str], None] | None = None,
    ) -> None:
        self._marker_key = marker_key
        self.topic = topic
        self._kwargs = kafka_kwargs
        self._on_restart = on_restart
        self.symbols: dict[str, SymbolState] = {}
        self.failure: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = await self._connect()
        self._task = asyncio.create_task(self._supervise())

    async def _connect(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **self._kwargs,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            await consumer.topics()
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                raise RuntimeError(f"market replica: topic {self.topic} has no partitions")
            consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    async def _supervise(self) -> None:
        delay_s = 0.5
        while True:
            try:
                if self._consumer is None:
                    self._consumer = await self._connect()
                    delay_s = 0.5
                    log.info("market replica reconnected to %s", self.topic)
                await self._follow(self._consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"
                log.error("market replica failed (%s); reconnecting in %.1f s", self.failure, delay_s)
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
            batches = await consumer.getmany(timeout_ms=500)
            self.failure = None
            for records in batches.values():
                for rec in records:
                    self.apply(rec.key, rec.value)

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        symbol = json.loads(key)
        if symbol == self._marker_key:
            return
        if value is None:
            self.symbols.pop(symbol, None)
            return
        try:
            self.symbols[symbol] = SymbolState.from_json(json.loads(value)["s"])
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable symbol-state changelog record for %r", symbol)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


class MarketView(Mapping[str, SymbolState]):
    """What detectors read: the live state where this worker has the symbol in hand, else the
    replica, else what the owned table recovered (before the replica has caught up)."""

    def __init__(self, owned: CheckpointedStore[SymbolState], replica: MarketReplica) -> None:
        self._owned = owned
        self._replica = replica

    def __getitem__(self, symbol: str) -> SymbolState:
        state = self._owned.cached(symbol) or self._replica.symbols.get(symbol)
        if state is None:
            state = self._owned.peek(symbol)
        if state is None:
            raise KeyError(symbol)
        return state

    def __iter__(self) -> Iterator[str]:
        return iter(set(self._replica.symbols) | set(self._owned.keys()))

    def __len__(self) -> int:
        return len(set(self._replica.symbols) | set(self._owned.keys()))
