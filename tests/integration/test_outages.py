"""Outages of the broker and of the audit database, made for real: the Tansu process killed and
started again on its port, PostgreSQL behind a TCP proxy that refuses or stalls connections.
In each, readiness tells the truth while it lasts, and afterwards the stream is surveilled again
without anyone touching the worker (it resumes, or exits non-zero and its supervisor, played
here by the test as Kubernetes would, starts it again)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.broker import EmbeddedBroker
from riskstream.records import Quote, RiskAlert
from riskstream.records.codec import dumps
from riskstream.settings import KafkaSettings, Settings
from riskstream.sinks import AuditLog
from riskstream.topics import apply_specs, load_specs
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import MS, consume_all, o, wait_for

pytestmark = pytest.mark.integration


def readyz(worker: WorkerProcess) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/readyz", timeout=2) as r:
            return int(r.status), r.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
    except OSError:
        return 0, ""


class Supervisor:
    """Restarts the worker whenever it exits, as a Deployment would, and keeps the exit codes."""

    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env, self.tmp_path = env, tmp_path
        self.exit_codes: list[int] = []
        self.worker = self._start()

    def _start(self) -> WorkerProcess:
        worker = WorkerProcess(self.env, self.tmp_path / f"worker-{len(self.exit_codes)}.log")
        worker.start()
        return worker

    def poll(self) -> None:
        assert self.worker.proc is not None
        rc = self.worker.proc.poll()
        if rc is not None:
            self.exit_codes.append(rc)
            self.worker = self._start()

    def stop(self) -> None:
        self.worker.stop()


async def fat_finger_after_history(bootstrap: str, account: str) -> str:
    """A quote, then a buy 30 % through the market: returns the fat finger's order id."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        t0 = time.time_ns()
        quote = Quote("AAPL", "XNAS", t0 - 1000 * MS, 100.0, 100.02, 1000, 1000)
        await producer.send_and_wait("market-data", dumps(quote.to_json()), key=b"AAPL")
        oid = f"ff-{uuid.uuid4().hex[:6]}"
        order = o("new", oid, account, "buy", 100, 130.0, t0)
        await producer.send_and_wait("trade-logs", dumps(order.to_json()), key=account.encode())
    finally:
        await producer.stop()
    return oid


async def background_traffic(bootstrap: str, n: int) -> None:
    """Ordinary quotes and small orders on every partition, so that the offsets the worker has
    reached are far past where a restarted in-memory broker starts its logs again."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        t0 = time.time_ns()
        for i in range(n):
            symbol = f"S{i % 16}"
            quote = Quote(symbol, "XNAS", t0 + i * MS, 50.0, 50.01, 500, 500)
            await producer.send("market-data", dumps(quote.to_json()), key=symbol.encode())
            account = f"ACC-BG{i % 32}"
            order = o("new", f"bg-{i}", account, "buy", 10, 49.0, t0 + i * MS)
            await producer.send(
                "trade-logs", dumps({**order.to_json(), "symbol": symbol}), key=account.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def alerted(
    bootstrap: str, order_id: str, timeout_s: float, supervisor: Supervisor | None = None
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if supervisor is not None:
            supervisor.poll()
        with contextlib.suppress(Exception):
            records = await consume_all(bootstrap, "risk-alerts", 10**6, 2)
            for r in records:
                if order_id in RiskAlert.from_json(json.loads(r.value)).evidence.order_ids:
                    return True
        await asyncio.sleep(1)
    return False


async def test_broker_restart_is_seen_in_readiness_and_the_stream_resumes(tmp_path: Path) -> None:
    port_holder = EmbeddedBroker(log_path=tmp_path / "broker.log")
    broker = port_holder.start()
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    env["RISKSTREAM_STREAM__LAG_POLL_S"] = "1"
    supervisor = Supervisor(env, tmp_path)
    try:
        await asyncio.to_thread(supervisor.worker.wait_ready)
        await background_traffic(broker.bootstrap_servers, 2000)
        first = await fat_finger_after_history(broker.bootstrap_servers, "ACC-FF1")
        assert await alerted(broker.bootstrap_servers, first, 120)

        broker.stop()
        await wait_for(lambda: readyz(supervisor.worker)[0] == 503, 60)
        assert "broker" in readyz(supervisor.worker)[1]
        assert supervisor.worker.metric("riskstream_dependency_up", dependency="broker") == 0

        broker = EmbeddedBroker(port=port_holder.port, log_path=tmp_path / "broker.log").start()
        await apply_specs(
            KafkaSettings(bootstrap_servers=broker.bootstrap_servers), load_specs(Settings().topics)
        )
        second = await fat_finger_after_history(broker.bootstrap_servers, "ACC-FF2")
        assert await alerted(broker.bootstrap_servers, second, 240, supervisor), (
            f"no alert after the broker came back; worker exits {supervisor.exit_codes}"
        )
        assert all(rc != 0 for rc in supervisor.exit_codes), supervisor.exit_codes
        await wait_for(lambda: readyz(supervisor.worker)[0] == 200, 60)
    finally:
        supervisor.stop()
        broker.stop()
