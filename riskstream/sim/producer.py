"""Produce the simulator's traffic to a broker, in real time or as fast as possible."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from riskstream.kafka import aiokafka_kwargs
from riskstream.records import OrderEvent, SourceWatermark
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


DEMO_TICK_MS = 50
"""How often the paced simulator sends: every 50 ms of event time, one batch per input partition
with that tick's events and a watermark at its end. An event waits at most one tick before it
is sent, and once its tick is read no partition holds it back (bench/README.md, "Source
watermarks"). Every batch is an object the embedded broker lists on each fetch of its partition:
half the tick is twice the broker's listing work."""
BACKLOG_LINGER_MS = 25
"""The unpaced simulator's producer linger: a backlog is sent as fast as the broker takes it, in
batches as large as that lets the producer fill."""
MAX_UNACKED_TICKS = 20
"""Ticks sent and not yet acknowledged before the simulator waits for the broker (a broker that
falls behind slows the market down instead of filling memory)."""


class TickSender:
    """Sends the paced simulator's traffic a tick at a time, as a market-data handler or an
    order-entry gateway that knows its own clock would: each tick's events in one batch per
    partition (keyed as the producer's default partitioner keys them, so an account's orders
    land where any other producer's would), closed by a source watermark at the tick's end on
    every partition of both topics, quiet ones included."""

    def __init__(self, producer: AIOKafkaProducer, topics: list[str]) -> None:
        self._producer = producer
        self._topics = topics
        self._partitions: dict[str, list[int]] = {}
        self._pending: dict[tuple[str, int], list[tuple[bytes, bytes]]] = {}
        self._acks: deque[asyncio.Future[Any]] = deque()
        self._partitioner = DefaultPartitioner()

    async def start(self) -> None:
        for topic in self._topics:
            self._partitions[topic] = sorted(await self._producer.partitions_for(topic))

    def add(self, topic: str, key: bytes, value: bytes) -> None:
        partitions = self._partitions[topic]
        partition = self._partitioner(key, partitions, partitions)
        self._pending.setdefault((topic, partition), []).append((key, value))

    async def close_tick(self, end_ns: int) -> None:
        """Send what the tick holds; every partition then says nothing earlier than ``end_ns``
        follows on it."""
        mark = dumps(SourceWatermark(end_ns).to_json())
        for topic, partitions in self._partitions.items():
            for partition in partitions:
                records: list[tuple[bytes | None, bytes]] = [*self._pending.pop((topic, partition), [])]
                records.append((None, mark))
                await self._send(topic, partition, records)
        while self._acks and self._acks[0].done():
            self._acks.popleft().result()
        while len(self._acks) > MAX_UNACKED_TICKS * sum(map(len, self._partitions.values())):
            await self._acks.popleft()

    async def _send(self, topic: str, partition: int, records: list[tuple[bytes | None, bytes]]) -> None:
        batch = self._producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                self._acks.append(await self._producer.send_batch(batch, topic, partition=partition))
                batch = self._producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a {len(value)}-byte record does not fit a producer batch")
        self._acks.append(await self._producer.send_batch(batch, topic, partition=partition))

    async def flush(self) -> None:
        while self._acks:
            await self._acks.popleft()


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
    tick_ms: int = DEMO_TICK_MS,
    progress: SimulationStats | None = None,
) -> SimulationStats:
    """Event time advances at ``rate`` steps per second. With ``realtime`` it also follows the
    wall clock (so latencies are real) and the traffic goes out a tick of ``tick_ms`` at a
    time with source watermarks (:class:`TickSender`); without, the same market is produced as
    fast as the broker takes it (a replay of ``rate``-per-second traffic: a backlog, where
    every partition has its next event at hand and no watermark is sent).

    ``progress``, when given, has its ``events`` kept at the count sent so far (a soak reads
    the offered rate while the run goes on)."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    if tick_ms <= 0:
        raise ValueError("tick_ms must be positive")
    paced = realtime
    sim = MarketSimulator(seed, time.time_ns(), rate, inject_every_s)
    linger_ms = 0 if paced else BACKLOG_LINGER_MS
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings.kafka), linger_ms=linger_ms, acks="all")
    await producer.start()
    names = settings.topics
    ticks = TickSender(producer, [names.market_data, names.trade_logs])
    tick_ns = tick_ms * 1_000_000
    tick_end_ns: int | None = None
    tick_events_ns: list[int] = []
    sent = 0
    lags: list[float] = []
    started = time.monotonic()
    try:
        if paced:
            await ticks.start()
        for event in sim.events():
            if stop is not None and stop.is_set():
                break
            if duration_s is not None and time.monotonic() - started >= duration_s:
                break
            if max_events is not None and sent >= max_events:
                break
            if isinstance(event, OrderEvent):
                topic, key = names.trade_logs, event.account
            else:
                topic, key = names.market_data, event.symbol
            value = dumps(event.to_json())
            if not paced:
                await producer.send(topic, value, key=key.encode())
            else:
                if tick_end_ns is None:
                    tick_end_ns = event.ts_ns - event.ts_ns % tick_ns + tick_ns
                if event.ts_ns >= tick_end_ns:
                    await _close_tick(ticks, tick_end_ns, tick_events_ns, lags)
                    tick_end_ns = event.ts_ns - event.ts_ns % tick_ns + tick_ns
                ticks.add(topic, key.encode(), value)
                tick_events_ns.append(event.ts_ns)
            sent += 1
            if progress is not None:
                progress.events = sent
            if not paced and sent % 1000 == 0:
                await asyncio.sleep(0)
        if paced and tick_end_ns is not None:
            await _close_tick(ticks, tick_end_ns, tick_events_ns, lags)
            await ticks.flush()
        await producer.flush()
    finally:
        await producer.stop()
    return SimulationStats(sent, len(sim.labels), lags)


async def _close_tick(ticks: TickSender, end_ns: int, events_ns: list[int], lags_ms: list[float]) -> None:
    """Wait for the tick's end on the wall clock and send it; each of its events' send lag is
    noted (then ``events_ns`` is emptied for the next tick)."""
    delay_s = (end_ns - time.time_ns()) / 1e9
    if delay_s > 0:
        await asyncio.sleep(delay_s)
    now_ns = time.time_ns()
    lags_ms.extend((now_ns - ts_ns) / 1e6 for ts_ns in events_ns)
    events_ns.clear()
    await ticks.close_tick(end_ns)
