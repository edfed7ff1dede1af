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
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.state import SymbolState

log = logging.getLogger(__name__)


class MarketReplica:
    def __init__(self, marker_key: str, topic: str, kafka_kwargs: dict[str, Any]) -> None:
        self._marker_key = marker_key
        self.topic = topic
        self._kwargs = kafka_kwargs
        self.symbols: dict[str, SymbolState] = {}
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            **self._kwargs,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        await consumer.topics()
        partitions = consumer.partitions_for_topic(self.topic)
        if not partitions:
            await consumer.stop()
            raise RuntimeError(f"market replica: topic {self.topic} has no partitions")
        consumer.assign([TopicPartition(self.topic, p) for p in partitions])
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer))

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
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
