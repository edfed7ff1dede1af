"""Same input, same alerts, measured at the issue's size: one simulated history through the
backtest and, run after run, through a real worker on the embedded broker, replayed at a given
speed with the worker SIGKILLed at random moments and restarted each time. Prints, per run,
the backtest's alert count, the stream's distinct alerts, missing, extra, and duplicate
messages.

    python -m bench.determinism --events 60000 --seed 5 --speed 4 --kills 3 --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer

from riskstream.broker import EmbeddedBroker, free_port
from riskstream.offline.backtest import run_backtest
from riskstream.offline.comparison import facts_of_backtest_row, facts_of_message
from riskstream.offline.parquet import simulate_to_parquet
from riskstream.offline.replay import parse_speed, replay
from riskstream.settings import REPO_ROOT, KafkaSettings, Settings

T0 = 1_764_000_000_000_000_000
LIMITS = REPO_ROOT / "deploy" / "limits.demo.toml"


class Worker:
    def __init__(self, bootstrap: str, workdir: Path, app_id: str) -> None:
        self.env = {
            **os.environ,
            "RISKSTREAM_APP_ID": app_id,
            "RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
            "RISKSTREAM_KAFKA__SESSION_TIMEOUT_S": "6",
            "RISKSTREAM_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / 'audit.db'}",
            "RISKSTREAM_LIMITS_FILE": str(LIMITS),
            "RISKSTREAM_STREAM__CHECKPOINT_INTERVAL_MS": "200",
        }
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        env = {**self.env, "RISKSTREAM_METRICS_PORT": str(free_port())}
        log = open(self.workdir / f"worker-{self.starts}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "riskstream.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def ready(self) -> bool:
        text = (self.workdir / f"worker-{self.starts}.log").read_text(errors="replace")
        return "fold restarted" in text

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


async def wait_ready(worker: Worker, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not worker.ready():
        if time.monotonic() > deadline:
            raise TimeoutError("worker not ready")
        await asyncio.sleep(0.2)


async def alerts_on_topic(bootstrap: str, want: int, timeout_s: float) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        "risk-alerts", bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while time.monotonic() < deadline:
            got = [
                json.loads(r.value) for rs in (await consumer.getmany(timeout_ms=500)).values() for r in rs
            ]
            if got:
                out += got
                quiet_since = time.monotonic()
            elif len({b["alert_id"] for b in out}) >= want and time.monotonic() - quiet_since > 5:
                break
    finally:
        await consumer.stop()
    return out


async def one_run(
    files: list[Path], expected: set[tuple[Any, ...]], args: argparse.Namespace, run: int
) -> bool:
    rng = random.Random(args.kill_seed + run)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(log_path=Path(tmp) / "broker.log") as broker:
        workdir = Path(tmp)
        settings = Settings(
            limits_file=LIMITS, kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        )
        worker = Worker(broker.bootstrap_servers, workdir, f"det-{run}")
        worker.start()
        await wait_ready(worker)
        producing = asyncio.create_task(replay(files, settings, parse_speed(args.speed)))
        for _ in range(args.kills):
            await asyncio.sleep(rng.uniform(args.kill_min_s, args.kill_max_s))
            worker.kill()
            worker.start()
            await wait_ready(worker)
        await producing
        bodies = await alerts_on_topic(broker.bootstrap_servers, len(expected), args.settle_s)
        worker.stop()
    streamed = {facts_of_message(b) for b in bodies}
    missing, extra = expected - streamed, streamed - expected
    print(
        f"run {run}: backtest {len(expected)}, stream {len(streamed)} distinct in {len(bodies)} messages"
        f" ({len(bodies) - len(streamed)} duplicates), missing {len(missing)}, extra {len(extra)}:"
        f" {'equal' if not missing and not extra else 'NOT EQUAL'}",
        flush=True,
    )
    return not missing and not extra


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="simulator steps per second")
    parser.add_argument("--speed", default="4")
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--kill-min-s", type=float, default=5.0)
    parser.add_argument("--kill-max-s", type=float, default=25.0)
    parser.add_argument("--kill-seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settle-s", type=float, default=300.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        simulate_to_parquet(root, seed=args.seed, rate=args.rate, events=args.events, start_ns=T0)
        files = [root / "market_data.parquet", root / "trade_logs.parquet"]
        run_backtest(files, root / "alerts.parquet", Settings(limits_file=LIMITS))
        expected = {facts_of_backtest_row(r) for r in pq.read_table(root / "alerts.parquet").to_pylist()}
        print(
            f"history: {args.events} events, seed {args.seed}; backtest: {len(expected)} alerts", flush=True
        )
        equal = [await one_run(files, expected, args, run) for run in range(args.runs)]
    print(f"equal in {sum(equal)} of {len(equal)} runs (speed {args.speed}, {args.kills} kills each)")


if __name__ == "__main__":
    asyncio.run(main())
