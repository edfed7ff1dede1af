"""The embedded broker on its retaining object store (riskstream.objectstore): Tansu's own
storage never deletes a batch, this one deletes what Kafka's retention would, except what a
consumer group has not read yet; the log survives a broker restart."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from riskstream.broker import EmbeddedBroker
from riskstream.objectstore import SWEEP_EVERY_S

pytestmark = pytest.mark.integration
RETENTION_S = 2.0


async def produce_one_by_one(bootstrap: str, topic: str, n: int, start: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(start, start + n):
            await producer.send_and_wait(topic, f"v{i}".encode(), key=b"k")
    finally:
        await producer.stop()


async def wait_assigned(consumer: AIOKafkaConsumer) -> None:
    """A group join on Tansu takes about half the session timeout."""
    for _ in range(120):
        if consumer.assignment():
            return
        await asyncio.sleep(0.25)
    raise TimeoutError("no partition assigned in 30 s")


async def commit(bootstrap: str, topic: str, group: str, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.commit({TopicPartition(topic, 0): offset})
    finally:
        await consumer.stop()


async def read_all(bootstrap: str, topic: str, group: str | None) -> list[int]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: list[int] = []
    try:
        await wait_assigned(consumer)
        idle = 0
        while idle < 4:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            seen += [int(r.value[1:]) for records in batch.values() for r in records]
        if group is not None and seen:
            await consumer.commit({TopicPartition(topic, 0): seen[-1] + 1})
    finally:
        await consumer.stop()
    return seen


async def test_old_batches_go_unread_ones_stay_and_a_restart_keeps_the_log(tmp_path: Path) -> None:
    topic = f"t-{uuid.uuid4().hex[:6]}"
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log", retention_s=RETENTION_S)
    broker.start()
    try:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1)])
        await admin.close()
        # The group's first commit holds the log from offset 0 on; without it retention would
        # not wait for the group's first read.
        await commit(broker.bootstrap_servers, topic, "g", 0)
        await produce_one_by_one(broker.bootstrap_servers, topic, 30)
        assert await read_all(broker.bootstrap_servers, topic, "g") == list(range(30))
        await produce_one_by_one(broker.bootstrap_servers, topic, 20, start=30)
        await asyncio.sleep(RETENTION_S + 2 * SWEEP_EVERY_S)

        # The group read 0-29: those batches are past retention and go; 30-49, unread, stay.
        assert await read_all(broker.bootstrap_servers, topic, None) == list(range(30, 50))

        broker.stop()
        broker.start()
        assert await read_all(broker.bootstrap_servers, topic, "g") == list(range(30, 50))
        started = time.monotonic()
        while time.monotonic() - started < RETENTION_S + 3 * SWEEP_EVERY_S:
            await asyncio.sleep(1)
            if await read_all(broker.bootstrap_servers, topic, None) == [49]:
                break
        # Once read, all but the newest batch go (the broker reads the latest offset from it).
        assert await read_all(broker.bootstrap_servers, topic, None) == [49]
    finally:
        broker.close()
