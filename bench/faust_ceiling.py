"""A bare Faust agent that only counts raw-bytes events with take(): the most any Faust
pipeline can do per worker on this broker.

    python bench/faust_ceiling.py --bootstrap 127.0.0.1:PORT --events N --topics a,b [--stock-drain]

It takes micro-batches with the pipeline's own ``take(max, within)`` settings, so the ratio of
the two rates is the cost of riskstream's work alone. ``--stock-drain`` runs Faust's own
per-message drain loop instead of riskstream's (see :mod:`riskstream.faust_compat`).
Prints one line: ``faust_ceiling_events_per_s <rate> cpu_us_per_event <cpu>``, both from the
first micro-batch on (the process's CPU time, all threads, over the events counted).
"""

from __future__ import annotations

import argparse
import os
import signal
import time
import uuid
from typing import Any

import faust

from riskstream.faust_compat import RiskstreamApp
from riskstream.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--topics", default="trade-logs,market-data")
    parser.add_argument("--stock-drain", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    batch_max, within_s = settings.stream.batch_max_events, settings.stream.batch_within_ms / 1000
    app = RiskstreamApp(
        f"bench-ceiling-{uuid.uuid4().hex[:6]}",
        fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms,
        lean_drain=not args.stock_drain,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        web_enabled=False,
        autodiscover=False,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,
    )
    topic = app.topic(
        *args.topics.split(","),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    state: dict[str, Any] = {"n": 0, "n0": 0, "t0": None, "cpu0": 0.0}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for values in stream.take(batch_max, within=within_s):
            state["n"] += len(values)
            if state["t0"] is None:
                # Timed from the first micro-batch on, as the pipeline is: its events are not.
                state["t0"], state["cpu0"] = time.perf_counter(), time.process_time()
                state["n0"] = state["n"]
                continue
            if state["n"] >= args.events:
                timed = state["n"] - state["n0"]
                rate = timed / (time.perf_counter() - state["t0"])
                cpu_us = 1e6 * (time.process_time() - state["cpu0"]) / timed
                print(f"faust_ceiling_events_per_s {rate:.0f} cpu_us_per_event {cpu_us:.1f}", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
