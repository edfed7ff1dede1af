"""A bare Faust agent that only counts raw-bytes events with take(): the most any Faust
pipeline can do per worker on this broker.

    python bench/faust_ceiling.py --bootstrap 127.0.0.1:PORT --events N --topics a,b [--stock-drain]

It takes micro-batches with the pipeline's own ``take(max, within)`` settings, so the ratio of
the two rates is the cost of riskstream's work alone. ``--stock-drain`` runs Faust's own
per-message drain loop instead of riskstream's (see :mod:`riskstream.faust_compat`).
Prints one line: ``faust_ceiling_events_per_s <rate>``.
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
    state: dict[str, Any] = {"n": 0, "t0": None}

    @app.agent(topic)
    async def count(stream: Any) -> None:
        async for values in stream.take(batch_max, within=within_s):
            if state["t0"] is None:
                state["t0"] = time.perf_counter()
            state["n"] += len(values)
            if state["n"] >= args.events:
                rate = state["n"] / (time.perf_counter() - state["t0"])
                print(f"faust_ceiling_events_per_s {rate:.0f}", flush=True)
                os.kill(os.getpid(), signal.SIGTERM)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
