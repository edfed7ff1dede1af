"""Raw aiokafka consume + json.loads rate on the embedded broker: the ceiling of any consumer.

python bench/raw_kafka.py --events 200000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiokafka import AIOKafkaConsumer

from riskstream.broker import EmbeddedBroker
from riskstream.settings import Settings
from riskstream.sim.producer import run_simulation
from riskstream.topics import apply_specs, load_specs


async def fill_topics(bootstrap: str, events: int) -> Settings:
    settings = Settings(kafka={"bootstrap_servers": bootstrap})
    await apply_specs(settings.kafka, load_specs(settings.topics))
    await run_simulation(
        settings,
        seed=1,
        rate=5000,
        duration_s=None,
        max_events=events,
        inject_every_s=0.5,
        realtime=False,
    )
    return settings


async def raw_consume_rate(bootstrap: str, topics: list[str], events: int) -> float:
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id="bench-raw",
        auto_offset_reset="earliest",
        max_poll_records=5000,
    )
    await consumer.start()
    n = 0
    started: float | None = None
    try:
        while n < events:
            for recs in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                if started is None:
                    started = time.perf_counter()
                for r in recs:
                    json.loads(r.value)
                n += len(recs)
    finally:
        await consumer.stop()
    assert started is not None
    return n / (time.perf_counter() - started)


async def main(events: int) -> None:
    with EmbeddedBroker() as broker:
        settings = await fill_topics(broker.bootstrap_servers, events)
        rate = await raw_consume_rate(
            broker.bootstrap_servers, [settings.topics.trade_logs, settings.topics.market_data], events
        )
        print(f"raw aiokafka consume + json: {rate:,.0f} events/s ({events} events)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().events))
