"""Nothing is lost or counted twice across SIGKILLs: a worker killed at random moments while the
input keeps flowing, restarted each time, ends with every account's position equal to the sum
of its fills in the trade log and every symbol's traded volume equal to the sum of its prints.

The loss this guards against was intermittent (a fetch in flight across the seek to the
committed offsets after a restart made the drain skip a block of records; 7 of 8 crash runs),
so the test kills the worker several times with input in flight on both topics, each restart
on a backlog. On the drain loop before the fix it failed (18 of 40 accounts wrong in the run
tried). A failure names its seed; ``CRASH_TEST_SEED=N`` reruns that input."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from riskstream.broker import EmbeddedBroker
from riskstream.records import Print, Quote
from riskstream.records.codec import dumps
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import o

pytestmark = pytest.mark.integration
ACCOUNTS = [f"ACC-{i:02d}" for i in range(40)]
SYMBOLS = ["AAPL", "MSFT", "TINY", "BRKA"]
KILLS = 4
EVENTS_PER_S = 1000
PRODUCE_S = 40.0
STALL_S = 30.0
SETTLE_MAX_S = 300.0
"""However it goes, the last worker is given this long after the input ends."""
TOPICS = ("trade-logs", "market-data")
DOWN_S = (1.0, 4.0)
"""A killed worker stays down this long (uniform) while input piles up: the restart then starts
on a backlog, where the in-flight fetch across the seek happened."""


class History:
    """What was produced, and the positions and volumes it implies."""

    def __init__(self) -> None:
        self.positions: dict[str, dict[str, float]] = {a: {} for a in ACCOUNTS}
        self.volumes: dict[str, float] = dict.fromkeys(SYMBOLS, 0.0)
        self.produced = 0


async def produce(bootstrap: str, history: History, stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        n = 0
        started = time.monotonic()
        while not stop.is_set() and time.monotonic() - started < PRODUCE_S:
            t = time.time_ns()
            symbol = rng.choice(SYMBOLS)
            if n % 3 == 0:
                account = rng.choice(ACCOUNTS)
                side = rng.choice(("buy", "sell"))
                qty = float(rng.randint(1, 20))
                event = o("fill", f"f-{n}", account, side, qty, 100.0, t, last_qty=qty, last_px=100.0)
                body = {**event.to_json(), "symbol": symbol}
                await producer.send("trade-logs", dumps(body), key=account.encode())
                pos = history.positions[account]
                pos[symbol] = pos.get(symbol, 0.0) + (qty if side == "buy" else -qty)
            elif n % 3 == 1:
                size = float(rng.randint(1, 50))
                await producer.send(
                    "market-data", dumps(Print(symbol, "XNAS", t, 100.0, size).to_json()), key=symbol.encode()
                )
                history.volumes[symbol] += size
            else:
                quote = Quote(symbol, "XNAS", t, 99.99, 100.01, 1000, 1000)
                await producer.send("market-data", dumps(quote.to_json()), key=symbol.encode())
            n += 1
            history.produced = n
            if n % 20 == 0:
                await asyncio.sleep(20 / EVENTS_PER_S)
        await producer.flush()
    finally:
        await producer.stop()


async def latest_states(bootstrap: str, topic: str) -> dict[str, dict[str, Any]]:
    """The last value of every key of a state changelog, checkpoint markers left out."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: dict[str, dict[str, Any]] = {}
    try:
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=300)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    key = json.loads(r.key)
                    if not key.startswith("\x00"):
                        out[key] = json.loads(r.value)
    finally:
        await consumer.stop()
    return out


def positions_now(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Each stored state is {"off": last offset folded, "s": the state}."""

    def positions(a: str) -> dict[str, float]:
        state = states.get(a, {}).get("s", {})
        return dict(state.get("limits", {}).get("positions", {}))

    return {a: {s: q for s, q in positions(a).items() if q} for a in ACCOUNTS}


def expected_positions(history: History) -> dict[str, dict[str, float]]:
    return {a: {s: q for s, q in pos.items() if q} for a, pos in history.positions.items()}


async def test_no_input_is_lost_or_doubled_across_kills(broker: EmbeddedBroker, tmp_path: Path) -> None:
    app_id = f"rs-{uuid.uuid4().hex[:8]}"
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", app_id)
    # A fold that stops releasing logs what it waits on before the test gives up on it.
    env["RISKSTREAM_STREAM__STALL_AFTER_S"] = str(STALL_S / 3)
    seed = int(os.environ.get("CRASH_TEST_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    history = History()
    stop = asyncio.Event()
    worker = WorkerProcess(env, tmp_path / "worker-0.log")
    worker.start()
    await asyncio.to_thread(worker.wait_ready)
    producing = asyncio.create_task(produce(broker.bootstrap_servers, history, stop, seed))
    try:
        for kill in range(KILLS):
            await asyncio.sleep(rng.uniform(2.0, 5.0))
            worker.stop(kill=True)
            await asyncio.sleep(rng.uniform(*DOWN_S))
            worker = WorkerProcess(env, tmp_path / f"worker-{kill + 1}.log")
            worker.start()
            await asyncio.to_thread(worker.wait_ready, 90)
        await producing
        want_positions = expected_positions(history)
        # Wait while the last worker makes progress, however slowly the machine runs it; stop
        # when it matches, or when it has consumed nothing more for STALL_S.
        consumed, changed_at = -1.0, time.monotonic()
        give_up = time.monotonic() + SETTLE_MAX_S
        while time.monotonic() < give_up:
            accounts = await latest_states(broker.bootstrap_servers, f"{app_id}-account-state-changelog")
            got_positions = positions_now(accounts)
            if got_positions == want_positions:
                break
            now_consumed = sum(worker.metric("riskstream_events_consumed_total", topic=t) for t in TOPICS)
            if now_consumed != consumed:
                wrong_now = sum(got_positions[a] != want_positions[a] for a in ACCOUNTS)
                print(f"consumed {now_consumed:.0f}, {wrong_now} accounts not there yet")
                consumed, changed_at = now_consumed, time.monotonic()
            elif time.monotonic() - changed_at > STALL_S:
                state = [
                    line
                    for line in worker.metrics().splitlines()
                    if line.startswith(
                        ("riskstream_partitions_held", "riskstream_events_held", "riskstream_consumer_lag")
                    )
                ]
                print("the last worker stopped making progress:", *state, sep="\n  ")
                print(worker.diagnosis(lines=40))
                break
            await asyncio.sleep(3)
        wrong = [a for a in ACCOUNTS if got_positions[a] != want_positions[a]]
        assert wrong == [], (
            f"seed {seed}: {len(wrong)} of {len(ACCOUNTS)} accounts' positions differ from the trade log "
            f"({history.produced} events produced, {KILLS} kills)"
        )
        logs = sorted(tmp_path.glob("worker-*.log"))  # noqa: ASYNC240
        texts = [p.read_text(errors="replace") for p in logs]
        assert not any("are not in the log" in text for text in texts)
        reseeks = sum(text.count("seeking back") for text in texts)
        rereads = sum(text.count("though its reader saw more") for text in texts)
    finally:
        stop.set()
        await asyncio.gather(producing, return_exceptions=True)
        worker.stop()
    print(
        f"seed {seed}: {history.produced} events, {KILLS} kills, {reseeks} offset jumps sought back,"
        f" {rereads} stalled partitions read again"
    )
