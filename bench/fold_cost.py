"""riskstream's own CPU per event, without a broker: decoding, admission, the event-time merge,
state, the ten detectors and the rule scorer, as ``Pipeline.on_batch`` runs them in the worker.

    python -m bench.fold_cost --events 60000 --repeat 3

The simulator's events (the flow ``bench.pipeline`` produces) are encoded once, spread over
partitions by key and fed to one pipeline in batches of the worker's size. The broker, the
changelog table and the audit database are hand-written doubles (below, named as such): what is
timed is riskstream's code alone, the part issue 15 asks to halve, free of the broker's noise.
It prints the CPU µs per event of each repeat and their median, and a digest of the alerts sent:
a change that only makes the fold cheaper must leave the digest as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import statistics
import time
import zlib
from collections.abc import Awaitable, Iterator
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.agents.pipeline import Pipeline, Restart, SourceRecord
from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.event_time import EventTimeMerge
from riskstream.core.state import AccountState
from riskstream.detection import detection_context
from riskstream.llm import RuleScorer
from riskstream.metrics import Metrics
from riskstream.records import OrderEvent
from riskstream.records.codec import dumps
from riskstream.settings import Settings
from riskstream.sim.market import MarketSimulator
from riskstream.sinks import AlertPublisher, AuditLog, AuditWriter, DeadLetterPublisher

MARKET, TRADES, ALERTS = "market-data", "trade-logs", "risk-alerts"
START_NS = 1_764_064_800_000_000_000
"""2025-11-25 10:00 UTC: inside the simulated venue's session."""


class SentDouble:
    """Hand-written double of the producer: keeps what was sent, acknowledged at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes) -> Awaitable[object]:
        self.sent.append((topic, key, value))
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


class TableDouble:
    """Hand-written double of the changelog table: a dict of the bytes written."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get_raw(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return None if value is None else dict(orjson.loads(value))

    def put_raw(self, key: str, value: bytes, partition: int) -> None:
        self.data[key] = value

    def put_marker(self, partition: int) -> None:
        pass

    def keys(self) -> Iterator[str]:
        return iter(self.data)


class FetchDouble:
    """Hand-written double of the consumers' fetch answers: every partition is read to the end
    of the backlog, and each batch comes a wall second after the one before, so a partition with
    nothing left (or nothing at all) holds no event back past the allowed lateness."""

    def __init__(self, ends: dict[tuple[str, int], int]) -> None:
        self.ends = ends
        self.now_s = 0.0

    def clock(self) -> float:
        return self.now_s

    def __call__(self, source: tuple[str, int]) -> tuple[int, float] | None:
        return self.ends.get(source, 0), self.now_s


def backlog(events: int, partitions: int, rate: float, seed: int) -> list[SourceRecord]:
    sim = MarketSimulator(seed, START_NS, rate)
    out: list[SourceRecord] = []
    next_offset: dict[tuple[str, int], int] = {}
    for event in sim.events():
        if len(out) >= events:
            break
        topic, key = (TRADES, event.account) if isinstance(event, OrderEvent) else (MARKET, event.symbol)
        partition = zlib.crc32(key.encode()) % partitions
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        out.append(SourceRecord(topic, partition, offset, key.encode(), dumps(event.to_json())))
    return out


async def fold_once(records: list[SourceRecord], partitions: int, batch: int) -> tuple[float, str, int]:
    """CPU µs per event of one pipeline over ``records``, the digest of its alerts, their count."""
    settings = Settings()
    stream = settings.stream
    ends: dict[tuple[str, int], int] = {}
    for rec in records:
        ends[(rec.topic, rec.partition)] = rec.offset + 1
    fetches = FetchDouble(ends)
    sent = SentDouble()
    metrics = Metrics()
    accounts = CheckpointedStore(TableDouble(), AccountState.to_bytes, AccountState.from_json, AccountState)
    engine = create_async_engine("sqlite+aiosqlite://")
    pipeline = Pipeline(
        accounts=accounts,
        context=detection_context(settings, {}),
        size_alpha=settings.windows.size_ewma_alpha,
        scorer=RuleScorer(),
        alerts=AlertPublisher(sent, ALERTS, time.time_ns),
        audit=AuditWriter(AuditLog(engine), metrics),
        dead_letters=DeadLetterPublisher(sent, "dead-letter"),
        metrics=metrics,
        clock=time.time_ns,
        market_topic=MARKET,
        trade_topic=TRADES,
        merge=EventTimeMerge(stream.allowed_lateness_ms / 1000, stream.max_event_time_skew_ms * 1_000_000),
        at_end=fetches,
        fetch_clock=fetches.clock,
    )
    pipeline.restart(Restart(dict.fromkeys(range(partitions), 0), list(range(partitions))))
    # The worker's collector settings (riskstream.cli, riskstream.app): a full collection's
    # share of the cost is part of what each event costs.
    gc.collect()
    threshold = gc.get_threshold()
    gc.set_threshold(settings.stream.gc_young_objects, *threshold[1:])
    gc.freeze()
    started = time.process_time()
    for i in range(0, len(records), batch):
        fetches.now_s += 1.0
        await pipeline.on_batch(records[i : i + batch])
    fetches.now_s += stream.allowed_lateness_ms / 1000 + 1
    await pipeline.on_batch([])
    await pipeline.drain()
    cpu_s = time.process_time() - started
    gc.unfreeze()
    gc.set_threshold(*threshold)
    await engine.dispose()
    digest = hashlib.sha256()
    alerts = 0
    for topic, key, value in sent.sent:
        if topic == ALERTS:
            alert = orjson.loads(value)
            digest.update(
                orjson.dumps([alert["alert_id"], alert["version"], alert["category"], key.decode()])
            )
            alerts += 1
    return cpu_s / len(records) * 1e6, digest.hexdigest()[:16], alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch", type=int, default=500, help="records per on_batch (the worker's take)")
    parser.add_argument("--rate", type=float, default=5000, help="the simulator's background actions/s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    records = backlog(args.events, args.partitions, args.rate, args.seed)
    costs: list[float] = []
    for run in range(args.repeat):
        cost_us, digest, alerts = asyncio.run(fold_once(records, args.partitions, args.batch))
        costs.append(cost_us)
        print(f"run {run + 1}: {cost_us:.1f} µs CPU/event, {alerts} alert records, digest {digest}")
    print(
        f"median: {statistics.median(costs):.1f} µs CPU/event, least {min(costs):.1f},"
        f" over {len(records)} events"
    )


if __name__ == "__main__":
    main()
