"""``riskstream demo``: the whole service on embedded defaults, alerts shown as they arrive.

Starts a Tansu broker on a free loopback port, creates the topics, starts a worker process
(SQLite audit table, rule scorer, demo limits), runs the simulator and prints every alert from
``risk-alerts``. Ctrl-C (or ``--duration-s``) stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from riskstream.broker import DEMO_RETENTION_S, EmbeddedBroker, free_port
from riskstream.records import RiskAlert
from riskstream.settings import REPO_ROOT, Settings
from riskstream.sim.producer import run_simulation
from riskstream.topics import EMBEDDED_PARTITIONS, apply_specs, load_specs

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "green"}


HIDDEN = ("Cc", "Cf", "Cs", "Co")
"""Unicode categories shown as code points: controls, format (bidi overrides), surrogates,
private use."""


def untrusted(value: str) -> Text:
    """Text from a message, shown as the characters it holds: never parsed as Rich markup (an
    account id "[link=...]" would become a hyperlink), control characters (terminal escapes that
    clear the screen or retitle the window) shown as code points."""
    shown = "".join(
        ch if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co") else f"\\u{ord(ch):04x}"
        for ch in value
    )
    return Text(shown)


def _alert_row(alert: RiskAlert, table: Table) -> None:
    t = alert.timings
    latency_ms = ((t.published_ns or t.detected_ns) - t.event_ns) / 1e6
    table.add_row(
        alert.category.value,
        Text(alert.severity.value, style=SEVERITY_STYLE[alert.severity.value]),
        f"{alert.score:.2f}",
        untrusted(alert.entity.account or "-"),
        untrusted(alert.entity.symbol or "-"),
        f"{latency_ms:.0f}",
        untrusted(alert.evidence.summary),
    )


DRIFT_EVERY_S = 60.0
"""How often the demo prints its own latency: the embedded broker slows as it stores more."""
DRIFT_WARN_MS = 1000.0


class LatencyDrift:
    """The demo's own event->alert latency per interval, and the broker's memory, printed so a
    user sees the embedded stack slow down (README, Known limits) instead of guessing."""

    def __init__(self, console: Console, broker_pids: list[int], every_s: float = DRIFT_EVERY_S) -> None:
        self._console = console
        self._broker_pids = broker_pids
        self._every_s = every_s
        self._started = self._window = time.monotonic()
        self._latencies_ms: list[float] = []

    def observe(self, alert: RiskAlert) -> None:
        t = alert.timings
        self.record(((t.published_ns or t.detected_ns) - t.event_ns) / 1e6)

    def record(self, latency_ms: float) -> None:
        self._latencies_ms.append(latency_ms)

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._window < self._every_s:
            return
        self._window = now
        values, self._latencies_ms = sorted(self._latencies_ms), []
        minute = (now - self._started) / 60
        if not values:
            self._console.print(f"[dim]{minute:.0f} min: no alerts in the last {self._every_s:.0f} s[/]")
            return
        p50 = values[len(values) // 2]
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        sizes = [_rss_mb(pid) for pid in self._broker_pids]
        rss = sum(size for size in sizes if size is not None) if any(s is not None for s in sizes) else None
        line = f"{minute:.0f} min: {len(values)} alerts, event->alert p50 {p50:.0f} ms, p99 {p99:.0f} ms" + (
            f", broker {rss:.0f} MB" if rss is not None else ""
        )
        if p99 > DRIFT_WARN_MS:
            self._console.print(
                f"[yellow]{line}: over {DRIFT_WARN_MS:.0f} ms; the embedded broker is short of CPU"
                " (README, Known limits): lower --rate, or run riskstream on Kafka[/]"
            )
        else:
            self._console.print(f"[dim]{line}[/]")


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _show_alerts(
    settings: Settings, console: Console, stop: asyncio.Event, drift: LatencyDrift | None = None
) -> int:
    consumer = AIOKafkaConsumer(
        settings.topics.risk_alerts,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    seen: set[str] = set()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            if drift is not None:
                drift.tick()
            for records in batch.values():
                for rec in records:
                    alert = RiskAlert.from_json(json.loads(rec.value))
                    if alert.alert_id in seen:
                        continue
                    seen.add(alert.alert_id)
                    if drift is not None:
                        drift.observe(alert)
                    table = Table(show_header=len(seen) == 1, box=None, pad_edge=False)
                    for name, width in (
                        ("category", 12),
                        ("severity", 8),
                        ("score", 5),
                        ("account", 10),
                        ("symbol", 6),
                        ("ms", 5),
                        ("evidence", None),
                    ):
                        table.add_column(name, width=width, no_wrap=name != "evidence")
                    _alert_row(alert, table)
                    console.print(table)
    finally:
        await consumer.stop()
    return len(seen)


async def _wait_worker_ready(metrics_port: int, worker: asyncio.subprocess.Process, timeout_s: float) -> bool:
    """Ready once it owns input partitions: traffic sent earlier would queue behind the group
    join and show the join's seconds as alert latency."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and worker.returncode is None:
        try:
            text = await asyncio.to_thread(_fetch, url)
        except OSError:
            text = ""
        if re.search(r"^riskstream_assigned_partitions [1-9]", text, re.M):
            return True
        await asyncio.sleep(0.25)
    return False


WORKER_READY_S = 90.0
"""How long a worker may take to own its partitions (a group join on Tansu takes seconds)."""
RESTART_PAUSE_S = 1.0
"""Pause before a worker that exited is started again."""


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return str(resp.read().decode())


async def _demo(rate: float, duration_s: float | None, seed: int, console: Console) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="riskstream-demo-"))
    with EmbeddedBroker(log_path=workdir / "broker.log", retention_s=DEMO_RETENTION_S) as broker:
        metrics_port = free_port()
        env = {
            **os.environ,
            "RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "RISKSTREAM_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'audit.db'}",
            "RISKSTREAM_LIMITS_FILE": os.environ.get(
                "RISKSTREAM_LIMITS_FILE", str(REPO_ROOT / "deploy" / "limits.demo.toml")
            ),
            "RISKSTREAM_METRICS_PORT": str(metrics_port),
            "RISKSTREAM_LOG_LEVEL": "warning",
            "RISKSTREAM_TOPICS__PARTITIONS": str(EMBEDDED_PARTITIONS),
        }
        settings = Settings(
            kafka={"bootstrap_servers": broker.bootstrap_servers}, topics={"partitions": EMBEDDED_PARTITIONS}
        )
        for line in await apply_specs(settings.kafka, load_specs(settings.topics)):
            console.print(f"[dim]topic {line}[/]")
        worker = DemoWorker(env, workdir / "worker.log", metrics_port, console)
        await worker.start()
        console.print(
            f"[bold]riskstream demo[/]: broker {broker.bootstrap_servers} (pid {broker.pid}), "
            f"worker pid {worker.pid}, "
            f"metrics http://127.0.0.1:{metrics_port}/metrics, audit {workdir / 'audit.db'}\n"
            "Simulated traffic with injected abuse; alerts appear below. Ctrl-C stops."
        )
        if not await worker.wait_ready(WORKER_READY_S):
            console.print(f"[red]worker did not start; see {workdir / 'worker.log'}[/]")
            await worker.stop()
            return 0
        console.print("[dim]worker ready; starting simulated traffic[/]")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        shower = asyncio.create_task(
            _show_alerts(settings, console, stop, LatencyDrift(console, broker.pids))
        )
        supervisor = asyncio.create_task(worker.supervise(stop))
        sim = asyncio.create_task(run_simulation(settings, seed=seed, rate=rate, duration_s=None, stop=stop))
        try:
            await asyncio.wait_for(stop.wait(), timeout=duration_s)
        except TimeoutError:
            stop.set()
        with contextlib.suppress(Exception):
            await sim
        shown = await shower
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        await worker.stop()
        console.print(f"[bold]stopped[/]: {shown} alerts shown; logs in {workdir}")
        return shown


class DemoWorker:
    """The demo's worker process, started again when it exits on its own, as a deployment's
    supervisor would (a worker stops on purpose when its stream stands still or its broker
    lost its log): without it the demo went on sending traffic and showed no alert, silently."""

    def __init__(self, env: dict[str, str], log_path: Path, metrics_port: int, console: Console) -> None:
        self._env = env
        self._log_path = log_path
        self._metrics_port = metrics_port
        self._console = console
        self._proc: asyncio.subprocess.Process | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        with open(self._log_path, "ab") as log:  # noqa: ASYNC230
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "riskstream.cli",
                "worker",
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def wait_ready(self, timeout_s: float) -> bool:
        assert self._proc is not None
        return await _wait_worker_ready(self._metrics_port, self._proc, timeout_s)

    async def supervise(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            assert self._proc is not None
            code = await self._proc.wait()
            if stop.is_set():
                return
            self.restarts += 1
            self._console.print(
                f"[red]worker exited with code {code}; restarting it (its log: {self._log_path})[/]"
            )
            await asyncio.sleep(RESTART_PAUSE_S)
            await self.start()
            self._console.print(f"[dim]worker restarted: pid {self.pid}[/]")
            if await self.wait_ready(WORKER_READY_S):
                self._console.print("[dim]worker ready again[/]")

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def run_demo(rate: float, duration_s: float | None, seed: int) -> int:
    console = Console()
    shown = asyncio.run(_demo(rate, duration_s, seed, console))
    return 0 if shown else 1
