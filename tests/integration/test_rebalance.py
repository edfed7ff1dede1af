"""State survives a rebalance: a second worker joins mid-pattern and takes over partitions; the
patterns that started on the first worker complete on whichever worker owns them now, and the
market (quotes) reaches the worker holding the orders whichever partitions it got."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from riskstream.broker import EmbeddedBroker
from riskstream.records import RiskAlert
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import MS, consume_all, o, wait_for
from tests.integration.test_restart import produce, produce_quote

pytestmark = pytest.mark.integration


async def test_state_survives_rebalance(broker: EmbeddedBroker, tmp_path: Path) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    t0 = time.time_ns()
    levels = (100.05, 100.06, 100.07)
    accounts = [f"ACC-LY{i}" for i in range(4)]
    before = []
    after = []
    for acc in accounts:
        before += [o("new", f"{acc}-s{i}", acc, "sell", 5000, px, t0 + i * MS) for i, px in enumerate(levels)]
        before += [
            o("new", f"{acc}-b", acc, "buy", 1000, 100.0, t0 + 5 * MS),
            o("fill", f"{acc}-b", acc, "buy", 1000, 100.0, t0 + 300 * MS, last_qty=1000, last_px=100.0),
        ]
        after += [
            o("cancel", f"{acc}-s{i}", acc, "sell", 5000, px, t0 + (400 + i) * MS)
            for i, px in enumerate(levels)
        ]

    first = WorkerProcess(env, tmp_path / "worker-1.log")
    second = WorkerProcess(
        {**env, "RISKSTREAM_METRICS_PORT": str(int(env["RISKSTREAM_METRICS_PORT"]) + 1)},
        tmp_path / "worker-2.log",
    )
    first.start()
    try:
        await asyncio.to_thread(first.wait_ready)
        await produce_quote(broker.bootstrap_servers, t0)
        await produce(broker.bootstrap_servers, before)
        await wait_for(
            lambda: first.metric("riskstream_events_consumed_total", topic="trade-logs") >= len(before), 30
        )
        done = first.metric("riskstream_checkpoints_total", table="all")
        await wait_for(lambda: first.metric("riskstream_checkpoints_total", table="all") >= done + 2, 10)

        second.start()
        await asyncio.to_thread(second.wait_ready)
        await wait_for(lambda: first.metric("riskstream_assigned_partitions") < 4, 60)
        assert (
            first.metric("riskstream_assigned_partitions") + second.metric("riskstream_assigned_partitions")
            == 4
        )
        await asyncio.sleep(2)
        await produce(broker.bootstrap_servers, after)
        records = await consume_all(broker.bootstrap_servers, "risk-alerts", len(accounts), 60)
        assert second.metric("riskstream_fold_restarts_total") >= 1
    finally:
        second.stop()
        first.stop()
    alerts = [RiskAlert.from_json(json.loads(r.value)) for r in records]
    got = {(a.category.value, a.entity.account) for a in alerts}
    assert got == {("layering", acc) for acc in accounts}
