"""Real parts, started by fixtures: a Tansu broker process, the PostgreSQL server at
127.0.0.1:5432 (a throwaway database per test), and a real ``riskstream worker`` process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from riskstream.broker import EmbeddedBroker, free_port

PG_DSN = os.environ.get("RISKSTREAM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as b:
        yield b


async def create_pg_database() -> str:
    """A throwaway database on the real server; returns its SQLAlchemy async URL."""
    name = f"rs_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path, command: list[str] | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.command = command or [sys.executable, "-m", "riskstream.cli", "worker"]
        self.metrics_port = int(env["RISKSTREAM_METRICS_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, cwd: Path | None = None) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command,
            cwd=cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        prefix = f"{name}{{{want}}}" if labels else name
        try:
            text = self.metrics()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith(prefix + " "):
                return float(line.split()[-1])
        return 0.0

    def diagnosis(self, lines: int = 40) -> str:
        """What a failed test shows of the worker: its log's last lines (less the event-time
        timer's overlap warnings, and each repeated message once: a stall report repeats every
        poll and would push out what led to it) and its held, late, stalled, gap, restart and
        lag metrics."""
        seen: set[str] = set()
        log: list[str] = []
        for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
            if "is overlapping" in line:
                continue
            # "[date time] [pid] [LEVEL] message": the message without its time stamp.
            message = line.split("] ", 3)[-1]
            if message in seen:
                continue
            seen.add(message)
            log.append(line)
        log.reverse()
        try:
            text = self.metrics()
        except OSError as exc:
            text = f"metrics unreadable: {exc!r}"
        wanted = (
            "riskstream_events_held",
            "riskstream_late",
            "riskstream_out_of_order",
            "riskstream_stalled",
            "riskstream_consumer",
            "riskstream_offset_gaps",
            "riskstream_fold_restarts",
            "riskstream_partition_holds",
        )
        gauges = [line for line in text.splitlines() if line.startswith(wanted)]
        return "\n".join(["worker log:", *log[-lines:], "worker metrics:", *gauges])

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            ready = "riskstream ready" in self.log_path.read_text(errors="replace")
            if ready and self.metric("riskstream_assigned_partitions") >= 1:
                return
            time.sleep(0.2)
        raise TimeoutError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def worker_env(broker: EmbeddedBroker, db_url: str, app_id: str) -> dict[str, str]:
    return {
        **os.environ,
        "RISKSTREAM_APP_ID": app_id,
        "RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "RISKSTREAM_KAFKA__SESSION_TIMEOUT_S": "6",
        "RISKSTREAM_DATABASE__URL": db_url,
        "RISKSTREAM_LIMITS_FILE": str(DATA / "limits.toml"),
        "RISKSTREAM_METRICS_PORT": str(free_port()),
        "RISKSTREAM_STREAM__CHECKPOINT_INTERVAL_MS": "200",
        "RISKSTREAM_LOG_LEVEL": "info",
    }
