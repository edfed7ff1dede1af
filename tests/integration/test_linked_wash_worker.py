"""A wash between two linked accounts on a lit book, through a real worker and broker: the
fills name no counterparty and the accounts sit on different trade-logs partitions, so the
legs meet only through ``linked-fills``; each account gets its alert, and the owner's honest
trade a second later gets none."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from riskstream.records import Category, Quote, RiskAlert
from riskstream.records.codec import dumps
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import MS, consume_all, o

pytestmark = pytest.mark.integration


async def test_linked_accounts_on_two_partitions_washing_on_the_lit_book_alert_both(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        t0 = time.time_ns()
        events = [
            o("new", "lb-1", "ACC-L1", "buy", 700, 100.01, t0),
            o("new", "ls-1", "ACC-L3", "sell", 700, 100.01, t0 + 15 * MS),
            o("fill", "lb-1", "ACC-L1", "buy", 700, 100.01, t0 + 40 * MS, last_qty=700, last_px=100.01),
            o("fill", "ls-1", "ACC-L3", "sell", 700, 100.01, t0 + 40 * MS, last_qty=700, last_px=100.01),
            # The same owner trading again a second later, against others: no wash.
            o("new", "lb-2", "ACC-L1", "buy", 300, 100.02, t0 + 1000 * MS),
            o("fill", "lb-2", "ACC-L1", "buy", 300, 100.02, t0 + 1010 * MS, last_qty=300, last_px=100.02),
            o("new", "ls-2", "ACC-L3", "sell", 300, 100.02, t0 + 2500 * MS),
            o("fill", "ls-2", "ACC-L3", "sell", 300, 100.02, t0 + 2510 * MS, last_qty=300, last_px=100.02),
        ]
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            quote = Quote("AAPL", "XNAS", t0 - 1000 * MS, 100.0, 100.02, 1000, 1000)
            await producer.send_and_wait("market-data", dumps(quote.to_json()), key=b"AAPL")
            for event in events:
                await producer.send_and_wait("trade-logs", dumps(event.to_json()), key=event.account.encode())
        finally:
            await producer.stop()

        washes: dict[str | None, tuple[str, ...]] = {}
        deadline = time.monotonic() + 120
        while len(washes) < 2 and time.monotonic() < deadline:
            for r in await consume_all(broker.bootstrap_servers, "risk-alerts", 10**6, 2):
                alert = RiskAlert.from_json(json.loads(r.value))
                if alert.category is Category.WASH_TRADE:
                    washes[alert.entity.account] = alert.evidence.order_ids
        assert washes == {"ACC-L1": ("lb-1", "ls-1"), "ACC-L3": ("ls-1", "lb-1")}, worker.diagnosis()
        legs = [
            json.loads(r.value) for r in await consume_all(broker.bootstrap_servers, "linked-fills", 4, 30)
        ]
        assert sorted(leg["order_id"] for leg in legs) == ["lb-1", "lb-2", "ls-1", "ls-2"]
        assert {leg["owner"] for leg in legs} == {"FUND-L"}
        assert {leg["partition"] for leg in legs} == {2, 3}
    finally:
        worker.stop()
