"""Security basics on the real parts: secrets stay out of logs, errors and /metrics; TLS to the
broker (Tansu behind a small TLS terminator, as Tansu 0.6.0 cannot take --cert and --key
together) works with the right CA and is refused with another; SQL text in message fields is
stored verbatim."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.broker import EmbeddedBroker, free_port, tansu_binary, wait_for_port
from riskstream.kafka import aiokafka_kwargs
from riskstream.records import Quote, RiskAlert
from riskstream.records.codec import dumps
from riskstream.settings import KafkaSettings, SecurityProtocol
from riskstream.sinks import AuditLog
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_outages import alerted, fat_finger_after_history
from tests.integration.test_pipeline import MS, consume_all, o

pytestmark = pytest.mark.integration
DB_PASSWORD = "pw-" + uuid.uuid4().hex
SASL_PASSWORD = "sasl-" + uuid.uuid4().hex


async def test_database_password_is_in_no_log_line_and_not_in_metrics(
    broker: EmbeddedBroker, postgres_url: str, tmp_path: Path
) -> None:
    """The server trusts any password, so the worker runs with it; then the database goes away
    under it (errors are logged) and the password must still appear nowhere."""
    url = postgres_url.replace("postgres@", f"postgres:{DB_PASSWORD}@")
    env = worker_env(broker, url, f"rs-{uuid.uuid4().hex[:8]}")
    env["RISKSTREAM_LOG_LEVEL"] = "debug"
    env["RISKSTREAM_DATABASE__STATEMENT_TIMEOUT_S"] = "1"
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        oid = await fat_finger_after_history(broker.bootstrap_servers, "ACC-SEC")
        assert await alerted(broker.bootstrap_servers, oid, 60)
        metrics = worker.metrics()
    finally:
        worker.stop()
    bad = WorkerProcess(
        {**env, "RISKSTREAM_DATABASE__URL": url.rsplit("/", 1)[0] + "/no_such_db"}, tmp_path / "bad.log"
    )
    bad.start()
    assert bad.proc is not None
    await asyncio.to_thread(bad.proc.wait, 60)
    text = (tmp_path / "worker.log").read_text(errors="replace") + (tmp_path / "bad.log").read_text(
        errors="replace"
    )
    assert len(text) > 10_000, "debug logging did not run"
    assert "no_such_db" in text, "the failing start did not say why"
    assert DB_PASSWORD not in text
    assert DB_PASSWORD not in metrics


def test_sasl_password_is_not_in_the_error_of_a_refused_start(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "RISKSTREAM_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "RISKSTREAM_KAFKA__SASL_USERNAME": "svc",
        "RISKSTREAM_KAFKA__SASL_PASSWORD": SASL_PASSWORD,
        "RISKSTREAM_LOG_LEVEL": "debug",
        "RISKSTREAM_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "riskstream.cli", "topics", "apply"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert SASL_PASSWORD not in done.stdout + done.stderr


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(cert))  # fmt: skip
    return cert, key


def make_server_cert(d: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    key, csr, cert, ext = d / "server.key", d / "server.csr", d / "server.pem", d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
            "-days", "1", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    return cert, key


class TlsTerminator:
    """Accepts TLS on its own port and forwards the plaintext to the broker."""

    def __init__(self, cert: Path, key: Path, target_port: int) -> None:
        self.port = free_port()
        self._ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ctx.load_cert_chain(cert, key)
        self._target = target_port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, ssl=self._ctx)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def tls_broker(tmp_path: Path) -> AsyncIterator[tuple[int, Path, Path]]:
    """A Tansu broker advertising the terminator's port; yields (TLS port, right CA, wrong CA)."""
    ca = make_ca(tmp_path, "ca")
    other_ca, _ = make_ca(tmp_path, "other-ca")
    cert, key = make_server_cert(tmp_path, ca)
    plain = free_port()
    terminator = TlsTerminator(cert, key, plain)
    await terminator.start()
    proc = subprocess.Popen(  # noqa: ASYNC220
        [str(tansu_binary()), "broker", "--listener-url", f"tcp://127.0.0.1:{plain}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{terminator.port}", "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_port(plain)
        yield terminator.port, ca[0], other_ca
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        await terminator.stop()


async def test_tls_with_the_right_ca_works_and_another_ca_is_refused(
    tls_broker: tuple[int, Path, Path],
) -> None:
    port, right_ca, wrong_ca = tls_broker
    good = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol=SecurityProtocol.SSL,
        ssl_cafile=str(right_ca),
    )
    producer = AIOKafkaProducer(**aiokafka_kwargs(good))
    await producer.start()
    try:
        await producer.send_and_wait("tls-check", b"over tls", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("tls-check", **aiokafka_kwargs(good), auto_offset_reset="earliest")
    await consumer.start()
    try:
        got = await consumer.getone()
        assert got.value == b"over tls"
    finally:
        await consumer.stop()

    bad = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{port}",
        security_protocol=SecurityProtocol.SSL,
        ssl_cafile=str(wrong_ca),
    )
    refused = AIOKafkaProducer(**aiokafka_kwargs(bad), request_timeout_ms=5000)
    with pytest.raises((KafkaError, ssl.SSLError, OSError)):
        await asyncio.wait_for(refused.start(), 30)
    with contextlib.suppress(Exception):
        await refused.stop()


INJECTION = "ACC'); DROP TABLE risk_alerts; --"


async def test_sql_text_in_message_fields_is_stored_verbatim(
    broker: EmbeddedBroker, postgres_url: str, tmp_path: Path
) -> None:
    worker = WorkerProcess(worker_env(broker, postgres_url, f"rs-{uuid.uuid4().hex[:8]}"), tmp_path / "w.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        await producer.start()
        try:
            t0 = time.time_ns()
            quote = Quote("AAPL", "XNAS", t0 - 1000 * MS, 100.0, 100.02, 1000, 1000)
            await producer.send_and_wait("market-data", dumps(quote.to_json()), key=b"AAPL")
            order = o("new", "x'; DELETE FROM risk_alerts; --", INJECTION[:60], "buy", 100, 130.0, t0 + MS)
            body = {**order.to_json(), "text": "'); DROP TABLE risk_alerts; --"}
            await producer.send_and_wait("trade-logs", dumps(body), key=order.account.encode())
        finally:
            await producer.stop()
        records = await consume_all(broker.bootstrap_servers, "risk-alerts", 1, 60)
        alert = RiskAlert.from_json(json.loads(records[0].value))
        assert alert.entity.account == INJECTION[:60]
        audit = AuditLog(create_async_engine(postgres_url))
        try:
            for _ in range(50):
                rows = await audit.fetch_all()
                if rows:
                    break
                await asyncio.sleep(0.2)
        finally:
            await audit.close()
        assert [(r["account"], r["alert"]["evidence"]["order_ids"]) for r in rows] == [
            (INJECTION[:60], ["x'; DELETE FROM risk_alerts; --"])
        ]
    finally:
        worker.stop()
