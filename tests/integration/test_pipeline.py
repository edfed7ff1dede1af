"""The whole pipeline on the real broker and a real database: scripted scenario in, exact alerts,
audit rows and dead letters out."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.broker import EmbeddedBroker
from riskstream.package_data import schema
from riskstream.records import DeadLetter, OrderEvent, OrderEventType, Quote, RiskAlert, Side
from riskstream.records.codec import dumps
from riskstream.sinks import AuditLog
from tests.integration.conftest import WorkerProcess, worker_env

pytestmark = pytest.mark.integration
MS = 1_000_000
ALERT_SCHEMA = schema("risk_alerts")
DLQ_SCHEMA = schema("dead_letter")


def o(kind: str, oid: str, account: str, side: str, qty: float, px: float, t: int, **kw: Any) -> OrderEvent:
    return OrderEvent(OrderEventType(kind), oid, account, "T1", "AAPL", Side(side), qty, px, t, **kw)


def scenario(t0: int) -> tuple[list[OrderEvent], set[tuple[str, str, tuple[str, ...]]]]:
    """Orders and the exact alerts (category, account, order ids) they must produce."""
    ev: list[OrderEvent] = [o("new", "ff-1", "ACC-FF", "buy", 100, 130.0, t0)]
    for i, px in enumerate((100.05, 100.06, 100.07)):
        ev.append(o("new", f"ly-{i}", "ACC-LY", "sell", 5000, px, t0 + i * MS))
    ev += [
        o("new", "ly-b", "ACC-LY", "buy", 1000, 100.0, t0 + 5 * MS),
        o("fill", "ly-b", "ACC-LY", "buy", 1000, 100.0, t0 + 300 * MS, last_qty=1000, last_px=100.0),
    ]
    ev += [
        o("cancel", f"ly-{i}", "ACC-LY", "sell", 5000, px, t0 + (400 + i) * MS)
        for i, px in enumerate((100.05, 100.06, 100.07))
    ]
    ev += [
        o("new", "w-1", "ACC-W1", "buy", 700, 100.0, t0),
        o(
            "fill",
            "w-1",
            "ACC-W1",
            "buy",
            700,
            100.0,
            t0 + 2 * MS,
            last_qty=700,
            last_px=100.0,
            counterparty="ACC-W2",
        ),
    ]
    ev += [
        o(
            "fill",
            f"lim-{i}",
            "ACC-LIM",
            "buy",
            2000,
            100.0 + i / 10,
            t0 + i * MS,
            last_qty=2000,
            last_px=100.0 + i / 10,
        )
        for i in range(2)
    ]
    ev += [
        o("new", "ok-1", "ACC-OK", "buy", 100, 100.01, t0),
        o("cancel", "ok-1", "ACC-OK", "buy", 100, 100.01, t0 + 2000 * MS),
    ]
    expected = {
        ("fat_finger", "ACC-FF", ("ff-1",)),
        ("layering", "ACC-LY", ("ly-b", "ly-0", "ly-1", "ly-2")),
        ("wash_trade", "ACC-W1", ("w-1",)),
        ("limit_breach", "ACC-LIM", ("lim-1",)),
    }
    return ev, expected


BAD = [
    ("trade-logs", b"ACC-X", b"{not json"),
    (
        "trade-logs",
        b"ACC-X",
        b'{"event":"fill","order_id":"x","account":"ACC-X","trader":"t",'
        b'"symbol":"AAPL","side":"buy","qty":1,"ts":0}',
    ),
    (
        "market-data",
        b"AAPL",
        b'{"kind":"quote","symbol":"AAPL","venue":"X","ts":0,"bid":2,"ask":1,"bid_size":1,"ask_size":1}',
    ),
    ("trade-logs", b"ACC-WRONG", dumps(o("new", "k-1", "ACC-Y", "buy", 1, 100.0, 0).to_json())),
]


async def consume_all(bootstrap: str, topic: str, want: int, timeout_s: float) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and len(out) < want:
            for recs in (await consumer.getmany(timeout_ms=200)).values():
                out += recs
        settle = time.monotonic() + 2.0
        while time.monotonic() < settle:
            for recs in (await consumer.getmany(timeout_ms=200)).values():
                out += recs
    finally:
        await consumer.stop()
    return out


async def wait_for(cond: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError
        await asyncio.sleep(0.1)


async def produce_scenario(
    broker: EmbeddedBroker, worker: WorkerProcess, bad: list[tuple[str, bytes, bytes]] | None = None
) -> set[tuple[str, str, tuple[str, ...]]]:
    """The market quote first (and wait until the worker has it), then the scripted order
    events and any bad messages; returns the alerts the scenario must give."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        t0 = time.time_ns()
        quote = Quote("AAPL", "XNAS", t0 - 1000 * MS, 100.0, 100.02, 1000, 1000)
        await producer.send_and_wait("market-data", dumps(quote.to_json()), key=b"AAPL")
        await wait_for(
            lambda: worker.metric("riskstream_events_consumed_total", topic="market-data") >= 1, 30
        )
        events, expected = scenario(t0)
        for ev in events:
            await producer.send("trade-logs", dumps(ev.to_json()), key=ev.account.encode())
        for topic, key, value in bad or []:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return expected


async def run_scenario(broker: EmbeddedBroker, db_url: str, tmp_path: Path) -> None:
    worker = WorkerProcess(worker_env(broker, db_url, f"rs-{uuid.uuid4().hex[:8]}"), tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        expected = await produce_scenario(broker, worker, bad=BAD)

        records = await consume_all(broker.bootstrap_servers, "risk-alerts", len(expected), 60)
        alerts = [RiskAlert.from_json(json.loads(r.value)) for r in records]
        for r in records:
            jsonschema.validate(json.loads(r.value), ALERT_SCHEMA)
        got = {
            (a.category.value, a.entity.account or "", tuple(sorted(a.evidence.order_ids))) for a in alerts
        }
        assert got == {(c, acc, tuple(sorted(ids))) for c, acc, ids in expected}
        assert all(r.key == (a.entity.account or "").encode() for r, a in zip(records, alerts, strict=True))
        assert all(
            a.timings.published_ns is not None and a.timings.published_ns >= a.timings.detected_ns
            for a in alerts
        )

        letters = await consume_all(broker.bootstrap_servers, "dead-letter", len(BAD), 30)
        dead = [DeadLetter.from_json(json.loads(r.value)) for r in letters]
        for r in letters:
            jsonschema.validate(json.loads(r.value), DLQ_SCHEMA)
        assert sorted((d.source_topic, d.key, d.value) for d in dead) == sorted(BAD)
        reasons = " | ".join(d.reason for d in dead)
        for phrase in ("not valid JSON", "a fill needs last_qty", "crossed quote", "is not the account"):
            assert phrase in reasons

        audit = AuditLog(create_async_engine(db_url))
        try:
            rows = await audit.fetch_all()
        finally:
            await audit.close()
        assert {r["alert_id"] for r in rows} == {a.alert_id for a in alerts}
        by_id = {a.alert_id: a for a in alerts}
        for row in rows:
            alert = by_id[row["alert_id"]]
            assert row["category"] == alert.category.value
            assert row["account"] == alert.entity.account
            assert row["alert"] == alert.to_json()
        assert worker.metric("riskstream_decode_failures_total", topic="trade-logs") == 3
        assert worker.metric("riskstream_decode_failures_total", topic="market-data") == 1
        assert worker.metric("riskstream_dead_letters_total", topic="trade-logs") == 3
        assert worker.metric("riskstream_event_to_alert_seconds_count") == len(expected)
        assert worker.metric("riskstream_alerts_total", category="layering", severity="critical") == 1
        assert worker.metric("riskstream_assigned_partitions") == 4
        assert worker.metric("riskstream_fold_restarts_total") >= 1
        await wait_for(lambda: worker.metric("riskstream_checkpoints_total", table="all") >= 2, 10)
        text = worker.metrics()
        for stage in (
            "decode",
            "detect",
            "score",
            "publish",
            "checkpoint_pause",
            "checkpoint_commit",
        ):
            assert f'riskstream_stage_seconds_count{{stage="{stage}"}}' in text
        assert "riskstream_audit_write_seconds_count" in text
        lag_lines = [ln for ln in text.splitlines() if ln.startswith("riskstream_consumer_lag_messages{")]
        assert len(lag_lines) == 8, lag_lines
    finally:
        worker.stop()


async def test_pipeline_on_postgres(broker: EmbeddedBroker, postgres_url: str, tmp_path: Path) -> None:
    await run_scenario(broker, postgres_url, tmp_path)


async def test_pipeline_on_sqlite(broker: EmbeddedBroker, tmp_path: Path) -> None:
    await run_scenario(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", tmp_path)
