"""Poison messages against a real worker process: each well-formed message with an absurd value
(the ones that crash-looped the worker before) goes to the dead-letter topic with its reason,
the worker keeps running, and a fat finger sent after them still alerts."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from riskstream.records import DeadLetter, Quote, RiskAlert
from riskstream.records.codec import NS_PER_S, dumps, format_ts
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import MS, consume_all, o, wait_for

pytestmark = pytest.mark.integration
YEAR_NS = 366 * 86_400 * NS_PER_S


def poison(t0: int) -> list[tuple[str, bytes, bytes, str]]:
    """(topic, key, value, a phrase of the reason it must be dead-lettered with)."""
    fill = o("fill", "p-1", "ACC-P", "buy", 1, 100.0, t0, last_qty=1, last_px=100.0).to_json()
    new = o("new", "p-2", "ACC-P", "buy", 1, 100.0, t0).to_json()
    quote = Quote("AAPL", "XNAS", t0, 100.0, 100.02, 1000, 1000).to_json()
    return [
        ("trade-logs", b"ACC-P", dumps({**fill, "last_qty": 1e300}), "last_qty 1e+300 is above"),
        ("trade-logs", b"ACC-P", dumps({**fill, "last_px": 1e300}), "last_px 1e+300 is above"),
        ("trade-logs", b"ACC-P", dumps({**new, "ts": "9999-12-31T23:59:59Z"}), "after 2262"),
        ("trade-logs", b"ACC-P", dumps({**new, "ts": "0001-01-01T00:00:00Z"}), "before 1970"),
        ("market-data", b"AAPL", dumps({**quote, "ts": "9999-12-31T23:59:59Z"}), "after 2262"),
        (
            "market-data",
            b"AAPL",
            dumps({**quote, "bid": 1000.0, "ask": 1000.2, "ts": format_ts(t0 + YEAR_NS)}),
            "ahead of the worker's clock",
        ),
        (
            "trade-logs",
            b"ACC-FF",
            dumps({**new, "account": "ACC-FF", "ts": format_ts(t0 + YEAR_NS)}),
            "ahead of the worker's clock",
        ),
    ]


async def test_poison_messages_are_dead_lettered_and_the_worker_goes_on(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    try:
        await asyncio.to_thread(worker.wait_ready)
        await producer.start()
        t0 = time.time_ns()
        market = Quote("AAPL", "XNAS", t0 - 1000 * MS, 100.0, 100.02, 1000, 1000)
        await producer.send_and_wait("market-data", dumps(market.to_json()), key=b"AAPL")
        bad = poison(t0)
        for topic, key, value, _ in bad:
            await producer.send_and_wait(topic, value, key=key)
        await producer.send_and_wait(
            "trade-logs",
            dumps(o("new", "ff-1", "ACC-FF", "buy", 100, 130.0, t0 + MS).to_json()),
            key=b"ACC-FF",
        )

        records = await consume_all(broker.bootstrap_servers, "risk-alerts", 1, 60)
        alerts = [RiskAlert.from_json(json.loads(r.value)) for r in records]
        assert [(a.category.value, a.evidence.order_ids) for a in alerts] == [("fat_finger", ("ff-1",))]

        letters = await consume_all(broker.bootstrap_servers, "dead-letter", len(bad), 30)
        dead = {
            (d.source_topic, d.value): d.reason
            for d in (DeadLetter.from_json(json.loads(r.value)) for r in letters)
        }
        assert len(letters) == len(bad)
        for topic, _, value, phrase in bad:
            assert phrase in dead[(topic, value)], dead[(topic, value)]
        assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
        assert "pipeline failed" not in worker.log_path.read_text()
        await wait_for(lambda: worker.metric("riskstream_checkpoints_total", table="all") >= 2, 10)
    finally:
        await producer.stop()
        worker.stop()
