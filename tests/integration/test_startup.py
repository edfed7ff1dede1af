"""Start-up beside other workers: two workers starting together on a fresh broker and a fresh
database both create topics and migrate the audit schema without failing (the migration holds a
PostgreSQL advisory lock, topic creation tolerates a topic another worker just made)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream import migrations
from riskstream.broker import EmbeddedBroker
from riskstream.settings import KafkaSettings, Settings
from riskstream.sinks import AuditLog
from riskstream.topics import apply_specs, load_specs, partition_counts

pytestmark = pytest.mark.integration


async def test_two_workers_migrate_the_same_fresh_database_at_once(postgres_url: str) -> None:
    logs = [AuditLog(create_async_engine(postgres_url)) for _ in range(4)]
    try:
        # Without the advisory lock the racing DDL deadlocked here: bounded, so that fails.
        await asyncio.wait_for(asyncio.gather(*(log.ensure_schema() for log in logs)), 60)
        assert await logs[0].schema_revision() == migrations.head()
    finally:
        for log in logs:
            await log.close()


async def test_two_workers_create_the_same_topics_at_once(broker: EmbeddedBroker) -> None:
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    specs = load_specs(Settings().topics)
    reports = await asyncio.gather(*(apply_specs(kafka, specs) for _ in range(3)))
    assert all(len(report) == len(specs) for report in reports)
    counts = await partition_counts(kafka, [s.name for s in specs])
    assert counts == {s.name: s.partitions for s in specs}


async def test_market_feed_recovers_from_a_failed_consumer(broker: EmbeddedBroker) -> None:
    """Its consumer stopped under it (what a client error does): the feed reports the failure,
    reconnects, and goes on from the offsets the worker expects next, not from the start and
    not past a record."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    from riskstream.agents.market_feed import MarketFeed
    from riskstream.agents.pipeline import SourceRecord
    from riskstream.kafka import aiokafka_kwargs
    from tests.integration.test_pipeline import wait_for

    topic = "feed-test-market-data"
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    restarts: list[str] = []
    got: list[SourceRecord] = []
    next_offset: dict[int, int] = {}

    async def deliver(records: list[SourceRecord]) -> None:
        for r in records:
            if r.offset == next_offset.get(r.partition, 0):
                got.append(r)
                next_offset[r.partition] = r.offset + 1

    feed = MarketFeed(topic, aiokafka_kwargs(kafka), deliver, next_offset.get, 10, on_restart=restarts.append)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await feed.start()
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"1", key=b"AAPL", partition=0)
        await wait_for(lambda: len(got) == 1, 30)
        consumer = feed._consumer
        assert consumer is not None
        await consumer.stop()
        await wait_for(lambda: bool(restarts), 30)
        await producer.send_and_wait(topic, b"2", key=b"MSFT", partition=1)
        await producer.send_and_wait(topic, b"3", key=b"AAPL", partition=0)
        await wait_for(lambda: len(got) == 3, 30)
        assert feed.failure is None
        assert sorted((r.partition, r.offset, r.value) for r in got) == [
            (0, 0, b"1"),
            (0, 1, b"3"),
            (1, 0, b"2"),
        ]
    finally:
        await producer.stop()
        await feed.stop()
