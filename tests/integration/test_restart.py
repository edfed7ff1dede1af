"""Window state survives a worker killed with SIGKILL: a pattern that starts before the crash
and completes after it is still detected, and the replay publishes no new alert ids."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from riskstream.records import OrderEvent, Quote, RiskAlert
from riskstream.records.codec import dumps
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import MS, consume_all, o, wait_for

pytestmark = pytest.mark.integration


async def produce(bootstrap: str, events: list[OrderEvent]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for ev in events:
            await producer.send("trade-logs", dumps(ev.to_json()), key=ev.account.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def produce_quote(bootstrap: str, t0: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        quote = Quote("AAPL", "XNAS", t0 - 1000 * MS, 100.0, 100.02, 1000, 1000)
        await producer.send_and_wait("market-data", dumps(quote.to_json()), key=b"AAPL")
    finally:
        await producer.stop()


async def test_state_survives_sigkill(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    t0 = time.time_ns()
    levels = (100.05, 100.06, 100.07)
    before = [o("new", f"ly-{i}", "ACC-LY", "sell", 5000, px, t0 + i * MS) for i, px in enumerate(levels)]
    before += [
        o("new", "ly-b", "ACC-LY", "buy", 1000, 100.0, t0 + 5 * MS),
        o("fill", "ly-b", "ACC-LY", "buy", 1000, 100.0, t0 + 300 * MS, last_qty=1000, last_px=100.0),
        o("fill", "lim-0", "ACC-LIM", "buy", 2000, 100.0, t0, last_qty=2000, last_px=100.0),
    ]
    after = [
        o("cancel", f"ly-{i}", "ACC-LY", "sell", 5000, px, t0 + (400 + i) * MS) for i, px in enumerate(levels)
    ]
    after.append(
        o("fill", "lim-1", "ACC-LIM", "buy", 2000, 100.5, t0 + 500 * MS, last_qty=2000, last_px=100.5)
    )

    first = WorkerProcess(env, tmp_path / "worker-1.log")
    first.start()
    try:
        await asyncio.to_thread(first.wait_ready)
        await produce_quote(broker.bootstrap_servers, t0)
        await wait_for(lambda: first.metric("riskstream_events_consumed_total", topic="market-data") >= 1, 30)
        await produce(broker.bootstrap_servers, before)
        await wait_for(
            lambda: first.metric("riskstream_events_consumed_total", topic="trade-logs") >= len(before), 30
        )
        done = first.metric("riskstream_checkpoints_total", table="all")
        await wait_for(lambda: first.metric("riskstream_checkpoints_total", table="all") >= done + 2, 10)
        # Consumed is not folded: the orders wait until market data has passed their time.
        await wait_for(lambda: first.metric("riskstream_state_writes_total", table="account-state") >= 2, 30)
    finally:
        first.stop(kill=True)

    second = WorkerProcess(env, tmp_path / "worker-2.log")
    second.start()
    try:
        await asyncio.to_thread(second.wait_ready)
        await produce(broker.bootstrap_servers, after)
        records = await consume_all(broker.bootstrap_servers, "risk-alerts", 2, 90)
    finally:
        second.stop()
    alerts = [RiskAlert.from_json(json.loads(r.value)) for r in records]
    got = {(a.category.value, a.entity.account, tuple(sorted(a.evidence.order_ids))) for a in alerts}
    assert got == {
        ("layering", "ACC-LY", ("ly-0", "ly-1", "ly-2", "ly-b")),
        ("limit_breach", "ACC-LIM", ("lim-1",)),
    }
    assert len({a.alert_id for a in alerts}) == 2
