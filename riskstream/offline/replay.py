"""``riskstream replay``: Parquet history published to the input topics in event-time order.

``speed`` 1 keeps the original spacing of events, 10 plays it ten times faster, ``max`` sends
as fast as the broker takes it; order is kept in every case. Bad rows are not published: they
are reported with their reason (a replay should not fill the dead-letter topic with rows that
were already known to be bad).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer

from riskstream.kafka import aiokafka_kwargs
from riskstream.offline.parquet import BATCH_ROWS, RejectedRow, merged_events
from riskstream.settings import Settings

FLUSH_EVERY = 2_000
"""At ``max`` speed the producer's batches are flushed every this many events: each block of
history reaches the broker on every partition before the next is sent. Without it a partition
whose batch is still lingering in the producer looks quiet to the worker while others run
ahead, and after the allowed lateness its events count as late; with it a replay keeps the
event-time order a live feed has."""


@dataclass
class ReplayStats:
    events: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    seconds: float = 0.0


def parse_speed(text: str) -> float | None:
    """``max`` -> None (no pacing); else a positive factor."""
    if text == "max":
        return None
    speed = float(text)
    if speed <= 0:
        raise ValueError("speed must be positive or 'max'")
    return speed


async def replay(
    paths: Sequence[Path], settings: Settings, speed: float | None, batch_rows: int = BATCH_ROWS
) -> ReplayStats:
    stats = ReplayStats()
    names = settings.topics
    topic = {"market-data": names.market_data, "trade-logs": names.trade_logs}
    # No linger: a record sent before another reaches the broker no later than it (a batch
    # left lingering while the process stalls under load would reach the broker after later
    # records of other partitions, and a worker that meanwhile saw its partition at the end for
    # the allowed lateness would fold it late). Records still batch while a request is in flight.
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings.kafka), linger_ms=0, acks="all")
    await producer.start()
    started = time.monotonic()
    first_ts: int | None = None
    try:
        for fe in merged_events(paths, stats.rejected, batch_rows):
            if speed is not None:
                first_ts = fe.ts_ns if first_ts is None else first_ts
                due = started + (fe.ts_ns - first_ts) / 1e9 / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            # One partition per key keeps each account's and symbol's events in order.
            await producer.send(topic[fe.kind], fe.raw, key=fe.key.encode())
            stats.events += 1
            if speed is None and stats.events % FLUSH_EVERY == 0:
                await producer.flush()
        await producer.flush()
    finally:
        await producer.stop()
    stats.seconds = time.monotonic() - started
    return stats
