"""Produce the simulator's traffic to a broker, in real time or as fast as possible."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from riskstream.kafka import aiokafka_kwargs
from riskstream.records import OrderEvent
from riskstream.records.codec import dumps
from riskstream.settings import Settings
from riskstream.sim.market import MarketSimulator


@dataclass
class SimulationStats:
    events: int
    injected: int
    send_lag_ms: list[float] = field(default_factory=list)
    """Per paced event: wall time it was handed to the producer minus its event time. A
    latency measured from event time includes this; it is the simulator's, not the pipeline's."""


DEMO_LINGER_MS = 100
"""The simulator's batching delay: every batch is an object the embedded broker lists on each
fetch of its partition, so its cost grows with the square of the batch rate; 100 ms is a
quarter of the batches of 25 ms (bench/README.md, "Soak")."""


async def run_simulation(
    settings: Settings,
    *,
    seed: int,
    rate: float,
    duration_s: float | None,
    stop: asyncio.Event | None = None,
    inject_every_s: float = 4.0,
    max_events: int | None = None,
    realtime: bool = True,
    linger_ms: int = DEMO_LINGER_MS,
    progress: SimulationStats | None = None,
) -> SimulationStats:
    """Event time advances at ``rate`` steps per second. With ``realtime`` it also follows the
    wall clock (so latencies are real); without, the same market is produced as fast as the
    broker takes it (a replay of ``rate``-per-second traffic).

    ``linger_ms`` is the producer's batching delay, as a trading system would set it. It is
    part of every event->alert latency measured from event time, and it sets how many batches
    the broker stores: Tansu spends CPU per stored batch on every fetch (bench/README.md), so
    2 ms lingers saturated it within 10 s at 5 000 events/s. The event->alert median moves
    less than the linger, since an event waits for every partition's next batch anyway.

    ``progress``, when given, has its ``events`` kept at the count sent so far (a soak reads
    the offered rate while the run goes on)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    paced = realtime
    sim = MarketSimulator(seed, time.time_ns(), rate, inject_every_s)
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings.kafka), linger_ms=linger_ms, acks="all")
    await producer.start()
    names = settings.topics
    sent = 0
    lags: list[float] = []
    started = time.monotonic()
    try:
        for event in sim.events():
            if stop is not None and stop.is_set():
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            if max_events is not None and sent >= max_events:
                break
            if paced:
                delay_s = (event.ts_ns - time.time_ns()) / 1e9
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            if isinstance(event, OrderEvent):
                topic, key = names.trade_logs, event.account
            else:
                topic, key = names.market_data, event.symbol
            if paced:
                lags.append((time.time_ns() - event.ts_ns) / 1e6)
            await producer.send(topic, dumps(event.to_json()), key=key.encode())
            sent += 1
            if progress is not None:
                progress.events = sent
            if not paced and sent % 1000 == 0:
                await asyncio.sleep(0)
        await producer.flush()
    finally:
        await producer.stop()
    return SimulationStats(sent, len(sim.labels), lags)
