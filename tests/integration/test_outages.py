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
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.broker import EmbeddedBroker, free_port, wait_for_port
from riskstream.records import Quote, RiskAlert
from riskstream.records.codec import dumps
from riskstream.settings import KafkaSettings, Settings
from riskstream.sinks import AuditLog
from riskstream.topics import apply_specs, load_specs
from tests.integration.conftest import PG_DSN, WorkerProcess, worker_env
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
        await wait_for(lambda: supervisor.worker.metric("riskstream_commit_failures_total") >= 1, 60)

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


@pytest.fixture
def s3_storage(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A local S3 server (moto) with a bucket for Tansu; yields the broker's environment."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 30)
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="x",
            aws_secret_access_key="x",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="tansu")
        yield {
            "AWS_ENDPOINT": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_REGION": "us-east-1",
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_durable_broker_backlog_is_consumed_before_and_after_a_restart(
    s3_storage: dict[str, str], tmp_path: Path
) -> None:
    """Tansu on S3 keeps its log across a restart: the worker reads a backlog, rides out the
    restart without exiting (the log did not go back), and alerts on what comes after."""
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log", storage="s3://tansu/", env=s3_storage).start()
    port = broker.port
    try:
        await apply_specs(
            KafkaSettings(bootstrap_servers=broker.bootstrap_servers), load_specs(Settings().topics)
        )
        await background_traffic(broker.bootstrap_servers, 1000)
        env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
        supervisor = Supervisor(env, tmp_path)
        try:
            await asyncio.to_thread(supervisor.worker.wait_ready, 120)
            first = await fat_finger_after_history(broker.bootstrap_servers, "ACC-S3A")
            assert await alerted(broker.bootstrap_servers, first, 180, supervisor)
            broker.stop()
            await asyncio.sleep(3)
            broker = EmbeddedBroker(
                port=port, log_path=tmp_path / "broker.log", storage="s3://tansu/", env=s3_storage
            )
            broker.start()
            second = await fat_finger_after_history(broker.bootstrap_servers, "ACC-S3B")
            assert await alerted(broker.bootstrap_servers, second, 180, supervisor)
            assert supervisor.exit_codes == [], "the worker exited though the log survived"
        finally:
            supervisor.stop()
    finally:
        broker.stop()


class PgProxy:
    """A TCP proxy in front of PostgreSQL that can refuse connections (nothing listens: every
    open connection is cut too) or stall them (connections are accepted, and no byte moves in
    either direction): the two database outages a worker meets in production."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        listener.close()
        self.mode = "forward"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        if mode == "refuse":
            with self._lock:
                for sock in self._sockets:
                    with contextlib.suppress(OSError):
                        sock.close()
                self._sockets.clear()

    def close(self) -> None:
        self._stop = True
        self.set_mode("refuse")
        self._thread.join(timeout=5)

    def _serve(self) -> None:
        listener: socket.socket | None = None
        while not self._stop:
            if self.mode == "refuse":
                if listener is not None:
                    listener.close()
                    listener = None
                time.sleep(0.05)
                continue
            if listener is None:
                listener = socket.socket()
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", self.port))
                listener.listen(64)
                listener.settimeout(0.1)
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                continue
            with self._lock:
                self._sockets.append(client)
            if self.mode == "stall":
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.append(upstream)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()
        if listener is not None:
            listener.close()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        src.settimeout(0.1)
        while not self._stop:
            if self.mode == "stall":
                time.sleep(0.05)
                continue
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                break
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()


async def topic_alert_ids(bootstrap: str) -> set[str]:
    records = await consume_all(bootstrap, "risk-alerts", 10**6, 2)
    return {RiskAlert.from_json(json.loads(r.value)).alert_id for r in records}


async def audit_alert_ids(url: str) -> set[str]:
    audit = AuditLog(create_async_engine(url))
    try:
        return {row["alert_id"] for row in await audit.fetch_all()}
    finally:
        await audit.close()


@pytest.mark.parametrize("outage", ["refuse", "stall"])
async def test_database_outage_holds_commits_shows_in_readiness_and_loses_no_alert(
    broker: EmbeddedBroker, postgres_url: str, tmp_path: Path, outage: str
) -> None:
    pg_port = int(PG_DSN.rsplit(":", 1)[1].split("/", 1)[0])
    proxy = PgProxy(pg_port)
    proxied_url = postgres_url.replace(f":{pg_port}/", f":{proxy.port}/")
    env = worker_env(broker, proxied_url, f"rs-{uuid.uuid4().hex[:8]}")
    env["RISKSTREAM_DATABASE__STATEMENT_TIMEOUT_S"] = "1"
    env["RISKSTREAM_DATABASE__RETRY_MAX_S"] = "1"
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        first = await fat_finger_after_history(broker.bootstrap_servers, "ACC-DB1")
        assert await alerted(broker.bootstrap_servers, first, 60)
        await wait_for(lambda: worker.metric("riskstream_checkpoints_total", table="all") >= 2, 30)

        proxy.set_mode(outage)
        during = [await fat_finger_after_history(broker.bootstrap_servers, f"ACC-DB{i}") for i in (2, 3)]
        for oid in during:
            assert await alerted(broker.bootstrap_servers, oid, 60), "publishing stopped with the database"
        await wait_for(lambda: readyz(worker)[0] == 503, 60)
        assert "database" in readyz(worker)[1]
        assert worker.metric("riskstream_dependency_up", dependency="database") == 0
        assert worker.metric("riskstream_audit_write_failures_total") >= 1
        held = worker.metric("riskstream_checkpoints_total", table="all")
        await asyncio.sleep(3)
        assert worker.metric("riskstream_checkpoints_total", table="all") == held, "committed past the audit"
        text = worker.log_path.read_text(errors="replace")
        assert "audit write of" in text and "retrying in" in text

        proxy.set_mode("forward")
        await wait_for(lambda: readyz(worker)[0] == 200, 60)
        await wait_for(lambda: worker.metric("riskstream_checkpoints_total", table="all") > held, 30)
        assert await topic_alert_ids(broker.bootstrap_servers) == await audit_alert_ids(postgres_url)
        assert worker.proc is not None and worker.proc.poll() is None
    finally:
        worker.stop()
        proxy.close()
