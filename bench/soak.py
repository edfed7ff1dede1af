"""Soak: the embedded stack (a Tansu broker, one worker, the simulator) at a fixed offered rate
for a long run, one line per interval, so that a drift shows as it starts:

    python -m bench.soak --minutes 60 --rate 200          # the demo's default rate
    python -m bench.soak --minutes 60 --rate 670          # ~1 000 events/s

Per interval: offered events/s (what the simulator sent), consumed events/s (the worker's
``riskstream_events_consumed_total``), the fold's restarts (``riskstream_fold_restarts_total``:
a rebalance, after which the worker replays from its last commit), the alerts published in it
for the first time and those published again (a replay after a rebalance or restart: consumers
dedupe them), event->alert
p50/p99 of the first (from the alerts' own timings), consumer lag at its end, checkpoint pause
p99 (the worker's ``riskstream_stage_seconds{stage="checkpoint_pause"}`` histogram, bucket
bound) and the CPU time spent in those pauses (``checkpoint_pause_cpu``: what is left of a pause
is waiting for a core), the generation-2 garbage-collector passes and the longest one's bucket
bound (``riskstream_gc_pause_seconds``: the process stops for each), and RSS and CPU (share of
one core) of the worker and of the broker. ``--bootstrap`` runs against a broker of your own
instead of the embedded one (no broker figures then). The simulator takes about 1.5 events per
step (``--rate`` is steps per second).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.pipeline import cpu_s, start_worker, stop
from riskstream.broker import DEMO_RETENTION_S, EmbeddedBroker
from riskstream.records import RiskAlert
from riskstream.settings import Settings
from riskstream.sim.producer import DEMO_TICK_MS, SimulationStats, run_simulation
from riskstream.topics import EMBEDDED_PARTITIONS, apply_specs, load_specs


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def total(text: str, name: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def pause_buckets(text: str, stage: str = "checkpoint_pause") -> dict[float, float]:
    """Checkpoint-pause histogram (wall time, or ``checkpoint_pause_cpu``: the CPU time spent
    in each pause): upper bound (s) -> cumulative count."""
    return histogram_buckets(text, "riskstream_stage_seconds", f'stage="{stage}"')


def histogram_buckets(text: str, name: str, label: str) -> dict[float, float]:
    """One labelled series of a histogram (``label`` as in the exposition, e.g.
    ``generation="2"``): upper bound (s) -> cumulative count."""
    pattern = re.compile(rf'^{name}_bucket\{{(?=.*{re.escape(label)}).*le="([^"]+)"')
    out: dict[float, float] = {}
    for line in text.splitlines():
        found = pattern.match(line)
        if found is not None:
            out[float(found.group(1))] = float(line.split()[-1])
    return out


def bucket_quantile(now: dict[float, float], before: dict[float, float], q: float) -> float | None:
    """The q-quantile's bucket bound of what the histogram counted between two scrapes."""
    counts = sorted((bound, now[bound] - before.get(bound, 0.0)) for bound in now)
    if not counts or counts[-1][1] <= 0:
        return None
    want = q * counts[-1][1]
    return next(bound for bound, cumulative in counts if cumulative >= want)


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


@dataclass
class Reading:
    t: float
    offered: int
    consumed: float
    fold_restarts: float
    pauses: dict[float, float]
    pauses_cpu: dict[float, float]
    gc2: dict[float, float]
    worker_cpu_s: float
    broker_cpu_s: float


class AlertTally:
    """One interval's alerts as a consumer that dedupes on (alert_id, version) sees them: new
    ones with their event->alert latency, and how many came again (a replay after a rebalance
    or a restart publishes its alerts again; they are no new alert and no latency)."""

    def __init__(self) -> None:
        self._published: set[tuple[str, int]] = set()
        self.latencies_ms: list[float] = []
        self.again = 0

    def add(self, alert: RiskAlert) -> None:
        key = (alert.alert_id, alert.version)
        if key in self._published:
            self.again += 1
            return
        self._published.add(key)
        if alert.timings.published_ns:
            self.latencies_ms.append((alert.timings.published_ns - alert.timings.event_ns) / 1e6)

    def next_interval(self) -> None:
        self.latencies_ms = []
        self.again = 0


HEADER = (
    f"{'min':>5} {'offered/s':>9} {'consumed/s':>10} {'restarts':>8} {'alerts':>6} {'again':>5} "
    f"{'p50 ms':>8} {'p99 ms':>8} "
    f"{'lag':>7} {'ckpt p99 ms':>11} {'cpu p99 ms':>10} {'gc2':>4} {'gc2 max ms':>10} "
    f"{'worker MB':>9} {'worker %':>8} {'broker MB':>9} {'broker %':>8}"
)


async def soak(
    rate: float,
    minutes: float,
    interval_s: float,
    bootstrap: str | None,
    seed: int,
    retention_s: float | None,
    tick_ms: int,
    partitions: int,
    inject_every_s: float = 4.0,
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="riskstream-soak-"))
    broker = (
        None
        if bootstrap
        else EmbeddedBroker(log_path=workdir / "broker.log", retention_s=retention_s).start()
    )
    try:
        bs = bootstrap or (broker.bootstrap_servers if broker else "")
        # The embedded stack's topics as the demo makes them; a broker of your own, the specs'.
        override = {"RISKSTREAM_TOPICS__PARTITIONS": str(partitions)} if broker else {}
        settings = Settings(
            kafka={"bootstrap_servers": bs}, topics={"partitions": partitions if broker else None}
        )
        await apply_specs(settings.kafka, load_specs(settings.topics))
        proc, port = start_worker(bs, workdir, f"soak-{os.getpid()}", override)
        broker_pids = broker.pids if broker else []
        try:
            while total(scrape(port), "riskstream_assigned_partitions") < 1:
                if proc.poll() is not None:
                    raise RuntimeError((workdir / f"soak-{os.getpid()}.log").read_text()[-2000:])
                await asyncio.sleep(0.2)
            alerts = AIOKafkaConsumer(
                settings.topics.risk_alerts, bootstrap_servers=bs, group_id=None, auto_offset_reset="latest"
            )
            await alerts.start()
            live = SimulationStats(0, 0)
            duration_s = minutes * 60
            simulation = asyncio.create_task(
                run_simulation(
                    settings,
                    seed=seed,
                    rate=rate,
                    duration_s=duration_s,
                    progress=live,
                    tick_ms=tick_ms,
                    inject_every_s=inject_every_s,
                )
            )
            print(f"soak: {minutes:g} min at {rate:g} simulator steps/s, report every {interval_s:g} s")
            print(HEADER, flush=True)

            def read() -> Reading:
                text = scrape(port)
                return Reading(
                    time.monotonic(),
                    live.events,
                    total(text, "riskstream_events_consumed_total"),
                    total(text, "riskstream_fold_restarts_total"),
                    pause_buckets(text),
                    pause_buckets(text, "checkpoint_pause_cpu"),
                    histogram_buckets(text, "riskstream_gc_pause_seconds", 'generation="2"'),
                    cpu_s(proc.pid),
                    sum(cpu_s(pid) for pid in broker_pids),
                )

            last = read()
            started = last.t
            tally = AlertTally()
            while True:
                tally.next_interval()
                deadline = last.t + interval_s
                while (left := deadline - time.monotonic()) > 0:
                    batches = await alerts.getmany(timeout_ms=int(min(left, 0.5) * 1000) + 1)
                    for records in batches.values():
                        for r in records:
                            tally.add(RiskAlert.from_json(json.loads(r.value)))
                if proc.poll() is not None:
                    raise RuntimeError(
                        "the worker exited: " + (workdir / f"soak-{os.getpid()}.log").read_text()[-2000:]
                    )
                now = read()
                span = now.t - last.t
                lag = total(scrape(port), "riskstream_consumer_lag_messages")
                pause = bucket_quantile(now.pauses, last.pauses, 0.99)
                pause_cpu = bucket_quantile(now.pauses_cpu, last.pauses_cpu, 0.99)
                gc2_max = bucket_quantile(now.gc2, last.gc2, 1.0)
                gc2_passes = now.gc2.get(float("inf"), 0.0) - last.gc2.get(float("inf"), 0.0)
                print(
                    f"{(now.t - started) / 60:>5.1f} {(now.offered - last.offered) / span:>9,.0f} "
                    f"{(now.consumed - last.consumed) / span:>10,.0f} "
                    f"{now.fold_restarts - last.fold_restarts:>8.0f} "
                    f"{len(tally.latencies_ms):>6} {tally.again:>5} "
                    f"{pct(tally.latencies_ms, 50):>8.1f} {pct(tally.latencies_ms, 99):>8.1f} {lag:>7,.0f} "
                    f"{pause * 1000 if pause is not None else float('nan'):>11.1f} "
                    f"{pause_cpu * 1000 if pause_cpu is not None else float('nan'):>10.1f} "
                    f"{gc2_passes:>4.0f} {gc2_max * 1000 if gc2_max is not None else float('nan'):>10.0f} "
                    f"{rss_mb(proc.pid):>9.0f} {100 * (now.worker_cpu_s - last.worker_cpu_s) / span:>8.0f} "
                    f"{sum(rss_mb(pid) for pid in broker_pids):>9.0f} "
                    f"{100 * (now.broker_cpu_s - last.broker_cpu_s) / span:>8.0f}",
                    flush=True,
                )
                last = now
                if simulation.done():
                    break
            stats = simulation.result()
            await alerts.stop()
            print(f"offered {stats.events:,} events in {duration_s:.0f} s")
        finally:
            stop(proc)
    finally:
        if broker is not None:
            broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=200.0, help="simulator steps/s (the demo's default)")
    parser.add_argument("--interval-s", type=float, default=60.0, help="seconds per report line")
    parser.add_argument("--bootstrap", default=None, help="a broker of your own instead of the embedded one")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--retention-s",
        type=float,
        default=DEMO_RETENTION_S,
        help="the embedded broker's retention (riskstream.objectstore); 0: Tansu's memory storage",
    )
    parser.add_argument(
        "--tick-ms",
        type=int,
        default=DEMO_TICK_MS,
        help="the simulator's tick: how often it sends, with source watermarks",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=EMBEDDED_PARTITIONS,
        help="partitions per topic on the embedded broker (the demo's); --bootstrap: the specs'",
    )
    parser.add_argument(
        "--inject-every-s",
        type=float,
        default=4.0,
        help=(
            "event time between the simulator's injected abuse cases (its default 4 s gives 10-25"
            " alerts a minute, so a minute's p99 is its slowest alert or two; 1 s gives about 4x)"
        ),
    )
    a = parser.parse_args()
    # A soak stopped with SIGTERM still stops its worker and broker (the finally blocks run).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    retention_s = a.retention_s or None
    asyncio.run(
        soak(
            a.rate,
            a.minutes,
            a.interval_s,
            a.bootstrap,
            a.seed,
            retention_s,
            a.tick_ms,
            a.partitions,
            a.inject_every_s,
        )
    )


if __name__ == "__main__":
    main()
