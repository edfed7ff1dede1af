"""Same input, same alerts: one simulated history through the backtest and through real worker
processes on the real broker and PostgreSQL, under the conditions a production stream meets.
In every condition the distinct alerts on ``risk-alerts`` (id, category, severity, score,
evidence) equal the backtest's exactly, and the audit table holds exactly one row per alert.
Duplicate messages (at-least-once delivery: a restart re-raises what came after its last
checkpoint, with the same id and content) are allowed; each test prints how many there were.

Conditions: replay at speed 1, 10 and max with the worker live; both cores busy with a
busy-loop process each for the whole run; three SIGKILLs at random moments, restarted each
time; a second worker joining mid-stream and leaving again (two rebalances); the whole history
produced before the worker starts (a backlog).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pyarrow.parquet as pq
import pytest

from riskstream.broker import EmbeddedBroker
from riskstream.offline.backtest import run_backtest
from riskstream.offline.comparison import AlertFacts, facts_of_backtest_row, facts_of_message
from riskstream.offline.parquet import simulate_to_parquet
from riskstream.offline.replay import replay
from riskstream.settings import KafkaSettings, Settings
from tests.integration.conftest import (
    DATA,
    WorkerProcess,
    create_pg_database,
    drop_pg_database,
    worker_env,
)
from tests.integration.test_pipeline import consume_all

pytestmark = pytest.mark.integration
T0 = 1_764_000_000_000_000_000
EVENTS = 15_000
RATE = 300.0
"""Events per second of event time: the history spans about 50 s."""
SEED = 7
SETTLE_S = 240.0

Alert = AlertFacts


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], set[Alert]]:
    """One simulated history (every typology injected) and the backtest's alerts on it."""
    root = tmp_path_factory.mktemp("history")
    simulate_to_parquet(root, seed=SEED, rate=RATE, events=EVENTS, start_ns=T0, inject_every_s=1.0)
    files = [root / "market_data.parquet", root / "trade_logs.parquet"]
    run_backtest(files, root / "alerts.parquet", Settings(limits_file=DATA / "limits.toml"))
    expected = {facts_of_backtest_row(r) for r in pq.read_table(root / "alerts.parquet").to_pylist()}
    assert len(expected) >= 15
    assert len({a[1] for a in expected}) >= 6
    return files, expected


def _busy() -> None:
    while True:
        pass


class Run:
    """One condition: a broker, a database, worker processes, and what came out."""

    def __init__(self, broker: EmbeddedBroker, tmp_path: Path, db_url: str) -> None:
        self.broker = broker
        self.tmp_path = tmp_path
        self.db_url = db_url
        self.app_id = f"rs-{uuid.uuid4().hex[:8]}"
        self.settings = Settings(
            limits_file=DATA / "limits.toml", kafka=KafkaSettings(bootstrap_servers=broker.bootstrap_servers)
        )
        self.workers: list[WorkerProcess] = []
        self.starts = 0

    def worker(self) -> WorkerProcess:
        self.starts += 1
        env = worker_env(self.broker, self.db_url, self.app_id)
        w = WorkerProcess(env, self.tmp_path / f"worker-{self.starts}.log")
        w.start()
        self.workers.append(w)
        return w

    async def replay(self, files: list[Path], speed: float | None) -> None:
        stats = await replay(files, self.settings, speed)
        assert stats.events == EVENTS

    async def outcome(self, expected: set[Alert]) -> tuple[set[Alert], int, Counter[str]]:
        """The distinct alerts on the topic once it holds the backtest's count and nothing more
        came for a while; the messages they came in; audit rows per id."""
        records = await consume_all(self.broker.bootstrap_servers, "risk-alerts", len(expected), SETTLE_S)
        await asyncio.sleep(3)
        records = await consume_all(self.broker.bootstrap_servers, "risk-alerts", len(records), 10)
        streamed = {facts_of_message(json.loads(r.value)) for r in records}
        rows = await self.audit_ids()
        out_of_order = sum(
            w.metric("riskstream_out_of_order_events_total") for w in self.workers if w.proc is not None
        )
        print(f"\nevents folded out of event-time order (running workers): {out_of_order:.0f}")
        return streamed, len(records), rows

    async def audit_ids(self) -> Counter[str]:
        dsn = self.db_url.replace("postgresql+asyncpg://", "postgresql://")
        conn = await asyncpg.connect(dsn)
        try:
            ids = [r["alert_id"] for r in await conn.fetch("SELECT alert_id FROM risk_alert_audit")]
        finally:
            await conn.close()
        return Counter(ids)

    def stop(self) -> None:
        for w in self.workers:
            w.stop()


@pytest.fixture
async def run(broker: EmbeddedBroker, tmp_path: Path) -> Any:
    url = await create_pg_database()
    r = Run(broker, tmp_path, url)
    try:
        yield r
    finally:
        r.stop()
        await drop_pg_database(url)


def check(name: str, expected: set[Alert], streamed: set[Alert], messages: int, rows: Counter[str]) -> None:
    missing = expected - streamed
    extra = streamed - expected
    print(
        f"\n{name}: backtest {len(expected)} alerts, stream {len(streamed)} distinct in {messages}"
        f" messages ({messages - len(streamed)} duplicates), missing {len(missing)}, extra {len(extra)},"
        f" audit rows {sum(rows.values())}"
    )
    assert not missing, f"{name}: missing {sorted(missing)[:5]}"
    assert not extra, f"{name}: not in the backtest {sorted(extra)[:5]}"
    assert set(rows) == {a[0] for a in expected}
    assert all(n == 1 for n in rows.values())


async def live(run: Run, files: list[Path], speed: float | None) -> None:
    worker = run.worker()
    await asyncio.to_thread(worker.wait_ready)
    await run.replay(files, speed)


@pytest.mark.parametrize("speed", [1.0, 10.0, None], ids=["speed-1", "speed-10", "speed-max"])
async def test_replay_at_any_speed_gives_the_backtests_alerts(
    run: Run, history: tuple[list[Path], set[Alert]], speed: float | None
) -> None:
    files, expected = history
    await live(run, files, speed)
    check(f"speed {speed or 'max'}", expected, *await run.outcome(expected))


async def test_both_cores_busy_for_the_whole_run(run: Run, history: tuple[list[Path], set[Alert]]) -> None:
    files, expected = history
    hogs = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(2)]
    for hog in hogs:
        hog.start()
    try:
        await live(run, files, None)
        outcome = await run.outcome(expected)
    finally:
        for hog in hogs:
            hog.kill()
    check("cpu hog", expected, *outcome)


async def test_three_sigkills_at_random_moments(run: Run, history: tuple[list[Path], set[Alert]]) -> None:
    files, expected = history
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    print(f"\nkill seed {seed}")
    worker = run.worker()
    await asyncio.to_thread(worker.wait_ready)
    producing = asyncio.create_task(run.replay(files, 2.0))
    for _ in range(3):
        await asyncio.sleep(rng.uniform(3.0, 9.0))
        worker.stop(kill=True)
        worker = run.worker()
        await asyncio.to_thread(worker.wait_ready)
    await producing
    check(f"3 kills (seed {seed})", expected, *await run.outcome(expected))


async def test_a_second_worker_joins_and_leaves_mid_stream(
    run: Run, history: tuple[list[Path], set[Alert]]
) -> None:
    files, expected = history
    first = run.worker()
    await asyncio.to_thread(first.wait_ready)
    producing = asyncio.create_task(run.replay(files, 2.0))
    await asyncio.sleep(4.0)
    second = run.worker()
    await asyncio.to_thread(second.wait_ready)
    joined = time.monotonic()
    # A poll of another process's metrics: no event to wait on.
    while first.metric("riskstream_assigned_partitions") >= 4 and time.monotonic() - joined < 30:  # noqa: ASYNC110
        await asyncio.sleep(0.2)
    await asyncio.sleep(6.0)
    second.stop()
    await producing
    check("join and leave", expected, *await run.outcome(expected))


async def test_a_backlog_of_the_whole_history(run: Run, history: tuple[list[Path], set[Alert]]) -> None:
    files, expected = history
    await run.replay(files, None)
    worker = run.worker()
    await asyncio.to_thread(worker.wait_ready)
    check("backlog", expected, *await run.outcome(expected))
