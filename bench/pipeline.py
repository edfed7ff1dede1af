"""Pipeline benchmark on the embedded broker, in one run:

1. throughput: N simulated events are produced first, then one riskstream worker consumes
   them; consumed events/s and alerts/s, beside the raw aiokafka rate and the bare-Faust
   ceiling on the same data, and the ratios;
2. latency: events produced at a fixed rate (event time = wall time); end-to-end latency
   p50/p95/p99 from the alerts' own timings (event ts -> published ts).

    python bench/pipeline.py --events 100000 --rate 5000 --latency-s 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.raw_kafka import fill_topics, raw_consume_rate
from riskstream.broker import EmbeddedBroker, free_port
from riskstream.records import RiskAlert
from riskstream.settings import REPO_ROOT
from riskstream.sim.producer import run_simulation


def metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def start_worker(bootstrap: str, workdir: Path, app_id: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "RISKSTREAM_APP_ID": app_id,
        "RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "RISKSTREAM_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / (app_id + '.db')}",
        "RISKSTREAM_LIMITS_FILE": str(REPO_ROOT / "deploy" / "limits.demo.toml"),
        "RISKSTREAM_METRICS_PORT": str(port),
        "RISKSTREAM_LOG_LEVEL": "warning",
    }
    log = open(workdir / f"{app_id}.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "riskstream.cli", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


async def faust_ceiling(bootstrap: str, events: int, topics: list[str], *, stock_drain: bool) -> float:
    command = [
        sys.executable,
        str(REPO_ROOT / "bench" / "faust_ceiling.py"),
        "--bootstrap",
        bootstrap,
        "--events",
        str(events),
        "--topics",
        ",".join(topics),
    ]
    if stock_drain:
        command.append("--stock-drain")
    out = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=600)
    found = re.search(r"faust_ceiling_events_per_s (\d+)", out.stdout + out.stderr)
    if found is None:
        raise RuntimeError(f"faust ceiling run failed: {out.stderr[-2000:]}")
    return float(found.group(1))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def main(events: int, rate: float, latency_s: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="riskstream-bench-"))
    with EmbeddedBroker() as broker:
        bs = broker.bootstrap_servers
        settings = await fill_topics(bs, events)
        topics = [settings.topics.trade_logs, settings.topics.market_data]
        raw = await raw_consume_rate(bs, topics, events)
        ceiling = await faust_ceiling(bs, events, topics, stock_drain=False)
        ceiling_stock = await faust_ceiling(bs, events, topics, stock_drain=True)

        proc, port = start_worker(bs, workdir, "bench-throughput")
        try:
            # One scrape per poll, a few per second: a scrape costs the worker ~3 ms of CPU, and
            # polling at 20/s had been taking ~10 % of the worker away from the pipeline.
            t_first: float | None = None
            seen_first = 0.0
            while (consumed := metric(port, "riskstream_events_consumed_total")) < events:
                if t_first is None and consumed > 0:
                    t_first, seen_first = time.perf_counter(), consumed
                if proc.poll() is not None:
                    raise RuntimeError((workdir / "bench-throughput.log").read_text()[-2000:])
                await asyncio.sleep(0.02 if t_first is None else 0.25)
            assert t_first is not None
            elapsed = time.perf_counter() - t_first
            events_timed = consumed - seen_first
            consumed = metric(port, "riskstream_events_consumed_total")
            alerts = metric(port, "riskstream_alerts_total")
        finally:
            stop(proc)
        pipe_rate = events_timed / elapsed

    # Latency on a fresh broker, so the worker starts with no backlog.
    with EmbeddedBroker() as broker:
        bs = broker.bootstrap_servers
        settings = await fill_topics(bs, 0)
        proc, port = start_worker(bs, workdir, "bench-latency")
        try:
            while metric(port, "riskstream_assigned_partitions") < 1:
                if proc.poll() is not None:
                    raise RuntimeError((workdir / "bench-latency.log").read_text()[-2000:])
                await asyncio.sleep(0.2)
            consumer = AIOKafkaConsumer(
                settings.topics.risk_alerts, bootstrap_servers=bs, group_id=None, auto_offset_reset="latest"
            )
            await consumer.start()
            await asyncio.sleep(1)
            t0_ns = time.time_ns()
            stats = await run_simulation(
                settings, seed=2, rate=rate, duration_s=latency_s, inject_every_s=0.1
            )
            produced_rate = stats.events / latency_s
            latencies_ms: list[float] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for recs in (await consumer.getmany(timeout_ms=300)).values():
                    for r in recs:
                        a = RiskAlert.from_json(json.loads(r.value))
                        if a.timings.event_ns >= t0_ns and a.timings.published_ns:
                            latencies_ms.append((a.timings.published_ns - a.timings.event_ns) / 1e6)
            await consumer.stop()
        finally:
            stop(proc)

    print(f"{'measure':44} {'value':>12}")
    print(f"{'raw aiokafka consume + json (events/s)':44} {raw:>12,.0f}")
    print(f"{'bare Faust agent, stock drain (events/s)':44} {ceiling_stock:>12,.0f}")
    print(f"{'bare Faust agent, riskstream drain (events/s)':44} {ceiling:>12,.0f}")
    print(f"{'riskstream pipeline (events/s)':44} {pipe_rate:>12,.0f}")
    print(f"{'  alerts/s during that run':44} {alerts / elapsed:>12,.1f}")
    print(f"{'  pipeline / bare Faust, stock drain':44} {pipe_rate / ceiling_stock:>12.0%}")
    print(f"{'  pipeline / bare Faust, riskstream drain':44} {pipe_rate / ceiling:>12.0%}")
    print(f"{'  pipeline / raw aiokafka':44} {pipe_rate / raw:>12.0%}")
    print(f"{'latency run: produced events/s':44} {produced_rate:>12,.0f}")
    print(f"{'latency run: alerts':44} {len(latencies_ms):>12}")
    if len(stats.send_lag_ms) >= 2:
        for q in (50, 99):
            print(f"{f'simulator send lag p{q} (ms)':44} {pct(stats.send_lag_ms, q):>12.1f}")
    if len(latencies_ms) >= 2:
        for q in (50, 95, 99):
            print(f"{f'event->alert p{q} (ms)':44} {pct(latencies_ms, q):>12.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--latency-s", type=float, default=20)
    a = parser.parse_args()
    asyncio.run(main(a.events, a.rate, a.latency_s))
