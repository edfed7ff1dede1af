"""A worker started after retention deleted the start of market data reads from what is left.

Every restart of the fold reads market data again from offset 0 (the market is rebuilt from its
history). On a broker with retention (the embedded demo's object store keeps 30 s of data
topics; a Kafka cluster keeps its ``retention.ms``), offset 0 is gone once the topic is older
than that, and the broker answers from the first record it still has. Real parts: the embedded
broker on its retaining object store, a worker process."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from riskstream.objectstore import SWEEP_EVERY_S
from riskstream.records import Quote
from riskstream.records.codec import dumps
from riskstream.settings import Settings
from riskstream.topics import apply_specs, load_specs
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_outages import alerted, fat_finger_after_history
from tests.integration.test_pipeline import MS

pytestmark = pytest.mark.integration
RETENTION_S = 2.0


async def quotes(bootstrap: str, seconds: float) -> None:
    """A quote of every symbol every 100 ms, each its own batch, for ``seconds``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t = time.time_ns()
            for i in range(8):
                symbol = f"S{i}"
                quote = Quote(symbol, "XNAS", t - 50 * MS, 50.0, 50.01, 500, 500)
                await producer.send_and_wait("market-data", dumps(quote.to_json()), key=symbol.encode())
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


async def test_a_worker_started_after_retention_deleted_the_start_of_market_data_alerts(
    tmp_path: Path,
) -> None:
    with EmbeddedBroker(log_path=tmp_path / "broker.log", retention_s=RETENTION_S) as broker:
        settings = Settings(kafka={"bootstrap_servers": broker.bootstrap_servers})
        await apply_specs(settings.kafka, load_specs(settings.topics))
        # Older than the retention by more than a sweep when the worker starts.
        await quotes(broker.bootstrap_servers, RETENTION_S + 2 * SWEEP_EVERY_S)
        env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
        worker = WorkerProcess(env, tmp_path / "worker.log")
        worker.start()
        try:
            await asyncio.to_thread(worker.wait_ready)
            oid = await fat_finger_after_history(broker.bootstrap_servers, "ACC-AFTER-RETENTION")
            assert await alerted(broker.bootstrap_servers, oid, 60), worker.diagnosis()
        finally:
            worker.stop()
