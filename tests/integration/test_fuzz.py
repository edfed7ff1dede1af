"""100 000 malformed messages into a real worker: it never exits, every one of them is in
``dead-letter`` with a reason, and a fat finger sent after them still alerts."""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_outages import alerted, fat_finger_after_history
from tests.integration.test_pipeline import consume_all, wait_for

pytestmark = pytest.mark.integration
MESSAGES = 100_000
GOOD_ORDER: dict[str, Any] = {
    "event": "new",
    "order_id": "o",
    "account": "ACC-Z",
    "trader": "t",
    "symbol": "AAPL",
    "side": "buy",
    "qty": 1,
    "price": 10.0,
    "ts": "2026-11-25T10:00:00Z",
}
GOOD_QUOTE: dict[str, Any] = {
    "kind": "quote",
    "symbol": "AAPL",
    "venue": "X",
    "ts": "2026-11-25T10:00:00Z",
    "bid": 1.0,
    "ask": 1.1,
    "bid_size": 1,
    "ask_size": 1,
}
ODD_VALUES: list[Any] = [
    None, True, -1, 0, 1e300, -1e300, 1e-300, 2**70, "", "x" * 300, [], {}, "NaN", "2026-13-45T99:00:00Z",
    "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
]  # fmt: skip


VALID_ODDITIES: dict[str, tuple[Any, ...]] = {"price": (None,), "bid_size": (0,), "ask_size": (0,)}


def malformed(rng: random.Random, i: int) -> tuple[str, bytes, bytes]:
    """One message no decoder may accept: noise, broken JSON, a field with an impossible value,
    a missing field, or a key that is not the message's account or symbol."""
    topic = "trade-logs" if i % 2 else "market-data"
    base = GOOD_ORDER if topic == "trade-logs" else GOOD_QUOTE
    kind = i % 5
    if kind == 0:
        return topic, b"K", rng.randbytes(rng.randint(0, 64))
    if kind == 1:
        text = json.dumps(base)
        return topic, b"K", text[: rng.randint(0, len(text) - 1)].encode()
    if kind == 2:
        field = rng.choice([k for k in base if k not in ("account", "symbol", "order_id", "trader", "venue")])
        # A market order's null price and an empty side's zero size are valid, not odd.
        allowed = VALID_ODDITIES.get(field, ())
        value = rng.choice([v for v in ODD_VALUES if not any(v == a and type(v) is type(a) for a in allowed)])
        key = b"ACC-Z" if topic == "trade-logs" else b"AAPL"
        return topic, key, json.dumps({**base, field: value}).encode()
    if kind == 3:
        missing = rng.choice([k for k in base if k != "price"])  # a market order has no price
        key = b"ACC-Z" if topic == "trade-logs" else b"AAPL"
        return topic, key, json.dumps({k: v for k, v in base.items() if k != missing}).encode()
    return topic, b"WRONG-KEY", json.dumps(base).encode()


async def test_malformed_messages_all_go_to_dead_letter_and_the_worker_lives(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    rng = random.Random(12)
    try:
        await asyncio.to_thread(worker.wait_ready)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks=1, linger_ms=20)
        await producer.start()
        try:
            for i in range(MESSAGES):
                topic, key, value = malformed(rng, i)
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

        def dead() -> float:
            return sum(
                worker.metric("riskstream_dead_letters_total", topic=t) for t in ("trade-logs", "market-data")
            )

        last, still = -1.0, 0
        while dead() < MESSAGES:
            assert worker.proc is not None and worker.proc.poll() is None, "the worker exited"
            now = dead()
            still = still + 1 if now == last else 0
            assert still < 60, f"dead letters stopped at {now:.0f} of {MESSAGES}"
            last = now
            await asyncio.sleep(1)
        letters = await consume_all(broker.bootstrap_servers, "dead-letter", MESSAGES, 120)
        bodies = [json.loads(r.value) for r in letters]
        assert len({(b["source_topic"], b["partition"], b["offset"]) for b in bodies}) == MESSAGES
        assert all(b["reason"] for b in bodies)
        oid = await fat_finger_after_history(broker.bootstrap_servers, "ACC-AFTER-FUZZ")
        assert await alerted(broker.bootstrap_servers, oid, 120), worker.diagnosis()
        assert worker.proc is not None and worker.proc.poll() is None
        await wait_for(lambda: worker.metric("riskstream_checkpoints_total", table="all") >= 1, 30)
    finally:
        worker.stop()
