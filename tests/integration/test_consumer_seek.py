"""A seek asked of Faust's consumer is not lost to a fetch being handed out at the same time.

Faust runs the aiokafka consumer in a thread of its own and used to call its ``seek`` from the
event loop's thread; a seek that landed while the consumer thread handed out a fetch of the
partition was overwritten by the position after that fetch (10 of 800 seeks in a run of this
test). Real parts: the broker and an aiokafka consumer running on its own thread's loop;
``ConsumerThreadDouble`` is a hand-written double of Faust's consumer thread (its
``call_thread`` runs a coroutine function on that loop, as Faust's does)."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faust.types import TP

from riskstream.broker import EmbeddedBroker
from riskstream.faust_compat import _FetchWaitConsumer

pytestmark = pytest.mark.integration
T = TypeVar("T")
RECORDS = 4000
SEEKS = 800


class ConsumerThreadDouble:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.kafka: AIOKafkaConsumer | None = None

    def submit(self, fn: Callable[[], Awaitable[T]]) -> Future[T]:
        async def run() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop)

    async def call_thread(self, fn: Callable[[], Awaitable[T]]) -> T:
        return await asyncio.wrap_future(self.submit(fn))

    def _ensure_consumer(self) -> AIOKafkaConsumer:
        assert self.kafka is not None
        return self.kafka

    def stop(self) -> None:
        if self.kafka is not None:
            self.submit(self.kafka.stop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def consumer_thread(broker: EmbeddedBroker) -> Iterator[ConsumerThreadDouble]:
    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5)
        await producer.start()
        try:
            for _ in range(RECORDS):
                await producer.send("seek-race", b"x" * 50, partition=0)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())
    thread = ConsumerThreadDouble()

    async def start() -> AIOKafkaConsumer:
        kafka = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap_servers,
            enable_auto_commit=False,
            max_partition_fetch_bytes=16_384,
        )
        await kafka.start()
        kafka.assign([TopicPartition("seek-race", 0)])
        kafka.seek(TopicPartition("seek-race", 0), 0)
        return kafka

    thread.kafka = thread.submit(start).result(30)
    yield thread
    thread.stop()


async def test_a_seek_is_not_overwritten_by_a_fetch_handed_out_meanwhile(
    consumer_thread: ConsumerThreadDouble,
) -> None:
    kafka = consumer_thread._ensure_consumer()
    partition = TopicPartition("seek-race", 0)
    consumer: Any = SimpleNamespace(_thread=consumer_thread)
    rng = random.Random(7)

    async def handout() -> list[Any]:
        batches = await kafka.getmany(partition, timeout_ms=200, max_records=50)
        return list(batches.get(partition, []))

    lost = []
    for _ in range(SEEKS):
        in_flight = consumer_thread.submit(handout)
        target = rng.randrange(0, RECORDS - 100)
        # Lands anywhere in the handout, or before or after it: the event loop's thread blocks
        # on purpose, as a busy worker's does, while the consumer thread hands out.
        time.sleep(rng.random() * 0.0005)  # noqa: ASYNC251
        await _FetchWaitConsumer._seek(consumer, TP("seek-race", 0), target)
        crossed = await asyncio.wrap_future(in_flight)
        if crossed and crossed[0].offset == target:
            continue  # the seek came first: the handout itself starts at it
        following: list[Any] = []
        while not following:
            following = await asyncio.wrap_future(consumer_thread.submit(handout))
        if following[0].offset != target:
            lost.append((target, following[0].offset))
    assert lost == [], f"{len(lost)} of {SEEKS} seeks lost (sought, then read from): {lost[:5]}"
