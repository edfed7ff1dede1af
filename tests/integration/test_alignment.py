"""A worker catching up on a backlog holds the input partitions that run ahead in event time.

The backlog: one symbol quoted every 5 ms, flat at 100 for 100 s, then rising to 130 over 60 s;
one account placing a passive order just under the mid every 20 ms. Per byte, the orders cover
event time about 2.4 times faster than the quotes, so a consumer that reads both as fast as the
broker hands them over sees the orders of the rise against the flat market of a minute before:
every one of them is then more than 5 % from "the" mid, a fat finger. Held back within
``stream.max_event_time_skew_ms`` of the market, the orders meet the market of their own time
and nothing alerts. The first 100 s absorb the lead of the first fetches, which no hold can
take back (they are in the stream's buffer before the first batch is seen).
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from riskstream.records import OrderEvent, OrderEventType, Quote, Side
from riskstream.records.codec import dumps
from riskstream.settings import Settings
from riskstream.topics import apply_specs, load_specs
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import consume_all, wait_for

pytestmark = pytest.mark.integration
MS = 1_000_000
FLAT_MS, RISE_MS = 100_000, 60_000


def mid_at(t_ms: int) -> float:
    return 100.0 + 30.0 * max(0, t_ms - FLAT_MS) / RISE_MS


async def produce_backlog(bootstrap: str) -> int:
    settings = Settings(kafka={"bootstrap_servers": bootstrap})
    await apply_specs(settings.kafka, load_specs(settings.topics))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    t0 = time.time_ns() - (FLAT_MS + RISE_MS + 10_000) * MS
    sent = 0
    try:
        for t_ms in range(0, FLAT_MS + RISE_MS, 5):
            mid = mid_at(t_ms)
            quote = Quote(
                "AAPL", "XNAS", t0 + t_ms * MS, round(mid - 0.01, 4), round(mid + 0.01, 4), 500, 500
            )
            await producer.send("market-data", dumps(quote.to_json()), key=b"AAPL")
            sent += 1
            if t_ms % 20 == 0:
                order = OrderEvent(
                    OrderEventType.NEW,
                    f"o-{t_ms}",
                    "ACC-1",
                    "T-1",
                    "AAPL",
                    Side.BUY,
                    100,
                    round(mid - 0.05, 4),
                    t0 + t_ms * MS + 1,
                )
                await producer.send("trade-logs", dumps(order.to_json()), key=b"ACC-1")
                sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def catch_up(broker: EmbeddedBroker, tmp_path: Path, max_skew_ms: int) -> tuple[int, float]:
    """Fat-finger alerts and partition holds of one worker through the whole backlog."""
    sent = await produce_backlog(broker.bootstrap_servers)
    env = {
        **worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}"),
        "RISKSTREAM_STREAM__MAX_EVENT_TIME_SKEW_MS": str(max_skew_ms),
        "RISKSTREAM_LOG_LEVEL": "warning",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await wait_for(lambda: worker.metric("riskstream_events_consumed_total", topic="trade-logs") > 0, 60)
        await wait_for(
            lambda: (
                worker.metric("riskstream_events_consumed_total", topic="market-data")
                + worker.metric("riskstream_events_consumed_total", topic="trade-logs")
                >= sent
            ),
            120,
        )
        holds = worker.metric("riskstream_partition_holds_total")
        records = await consume_all(broker.bootstrap_servers, "risk-alerts", 10**6, 3)
    finally:
        worker.stop()
    categories = [json.loads(r.value)["category"] for r in records]
    return categories.count("fat_finger"), holds


async def test_orders_of_a_backlog_meet_the_market_of_their_own_time(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    fat_fingers, holds = await catch_up(broker, tmp_path, 500)
    assert holds > 0
    assert fat_fingers == 0, (fat_fingers, holds)


async def test_without_holding_the_same_backlog_misreads_the_market(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The control: the scenario does what the first test says it does."""
    fat_fingers, holds = await catch_up(broker, tmp_path, 0)
    assert holds == 0
    assert fat_fingers > 100, fat_fingers
