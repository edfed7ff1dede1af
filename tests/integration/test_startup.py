"""Start-up beside other workers: two workers starting together on a fresh broker and a fresh
database both create topics and migrate the audit schema without failing (the migration holds a
PostgreSQL advisory lock, topic creation tolerates a topic another worker just made)."""

from __future__ import annotations

import asyncio
import json

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


async def test_market_replica_recovers_from_a_failed_consumer(broker: EmbeddedBroker) -> None:
    """Its consumer stopped under it (what a client error does): the replica reports the
    failure, reconnects, and follows the changelog again instead of freezing the market."""
    from aiokafka import AIOKafkaProducer

    from riskstream.agents.market_replica import MarketReplica
    from riskstream.core.state import SymbolState
    from riskstream.kafka import aiokafka_kwargs
    from tests.integration.test_pipeline import wait_for

    topic = "replica-test-changelog"
    kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    restarts: list[str] = []
    replica = MarketReplica("marker", topic, aiokafka_kwargs(kafka), on_restart=restarts.append)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
    await replica.start()
    await producer.start()

    async def publish(symbol: str, bid: float) -> None:
        state = SymbolState(bid=bid, ask=bid + 0.01, bid_size=1, ask_size=1, ts_ns=1)
        value = json.dumps({"off": 1, "s": state.to_json()}).encode()
        await producer.send_and_wait(topic, value, key=json.dumps(symbol).encode())

    try:
        await publish("AAPL", 100.0)
        await wait_for(lambda: "AAPL" in replica.symbols, 30)
        consumer = replica._consumer
        assert consumer is not None
        await consumer.stop()
        await wait_for(lambda: bool(restarts), 30)
        await publish("MSFT", 200.0)
        await wait_for(lambda: "MSFT" in replica.symbols, 30)
        assert replica.failure is None
        assert replica.symbols["MSFT"].bid == 200.0
    finally:
        await producer.stop()
        await replica.stop()
