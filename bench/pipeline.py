"""Pipeline benchmark on the embedded broker, in one run:

1. throughput: N simulated events are produced first, then one riskstream worker consumes
   them; consumed events/s, CPU per event and alerts/s, beside the raw aiokafka rate and the
   bare-Faust ceiling on the same data, and the ratios. The Faust agents and the pipeline run
   ``--repeat`` times each, interleaved, and the medians are compared: single runs on this
   broker vary by a third;
2. latency: events produced at a fixed rate (event time = wall time); end-to-end latency
   p50/p95/p99 from the alerts' own timings (event ts -> published ts).

    python -m bench.pipeline --events 150000 --rate 3350 --latency-s 30 --repeat 3

3. scorers (``--scorers rules,openai[,vllm]``): the same backlog through one worker per scorer,
   input events/s against rules only; once the backlog is consumed and the scorer's requests
   have ended, the shares of alerts whose LLM answer came within the deadline, after it, or
   not at all (shed, failed, aborted); and the p50/p99 of detection -> publication of each
   alert's version 1 (what an alert waits before anyone sees it) and version 2 (the model's
   update). ``RISKSTREAM_SCORER__FIRST_VERSION=llm`` in the environment measures the other mode.
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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bench.raw_kafka import fill_topics, raw_consume_rate
from riskstream.broker import EmbeddedBroker, free_port
from riskstream.records import RiskAlert
from riskstream.settings import REPO_ROOT, Settings
from riskstream.sim.producer import run_simulation

DRIFT_WINDOW_S = 10
"""Latency is also printed per this many seconds of the run."""


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


def start_worker(
    bootstrap: str, workdir: Path, app_id: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "RISKSTREAM_APP_ID": app_id,
        "RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "RISKSTREAM_DATABASE__URL": f"sqlite+aiosqlite:///{workdir / (app_id + '.db')}",
        "RISKSTREAM_LIMITS_FILE": str(REPO_ROOT / "deploy" / "limits.demo.toml"),
        "RISKSTREAM_METRICS_PORT": str(port),
        "RISKSTREAM_LOG_LEVEL": "warning",
        **(extra_env or {}),
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


@dataclass(frozen=True, slots=True)
class Run:
    events_per_s: float
    cpu_us_per_event: float
    """CPU time of the consuming process (all threads) per event: steadier than the rate, which
    also moves with how fetches and processing interleave on the shared broker."""
    alerts_per_s: float = 0.0
    alerts: float = 0.0
    llm_in_time: float = 0.0
    """Candidates the LLM answered within the scorer's deadline."""
    llm_late: float = 0.0
    """Candidates the LLM answered after it (published as version 2)."""
    llm_fallbacks: float = 0.0
    """Candidates left rule-scored (deadline, invalid, error, engine down, shed)."""
    publish_ms: dict[int, tuple[float, ...]] = field(default_factory=dict)
    """Alert version -> detection -> publication (wall time, ms) of this run's alerts."""


async def faust_ceiling(bootstrap: str, events: int, topics: list[str], *, stock_drain: bool) -> Run:
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
    found = re.search(r"faust_ceiling_events_per_s (\d+) cpu_us_per_event ([\d.]+)", out.stdout + out.stderr)
    if found is None:
        raise RuntimeError(f"faust ceiling run failed: {out.stderr[-2000:]}")
    return Run(float(found.group(1)), float(found.group(2)))


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def through_backlog(
    proc: subprocess.Popen[bytes], port: int, events: int, log_path: Path
) -> tuple[float, float, float]:
    """Wait until the worker has consumed ``events``; (seconds, CPU seconds, events) from its
    first consumed event on."""
    # One scrape per poll, a few per second: a scrape costs the worker ~3 ms of CPU, and
    # polling at 20/s had been taking ~10 % of the worker away from the pipeline.
    t_first: float | None = None
    seen_first = cpu_first = 0.0
    while (consumed := metric(port, "riskstream_events_consumed_total")) < events:
        if t_first is None and consumed > 0:
            t_first, seen_first, cpu_first = time.perf_counter(), consumed, cpu_s(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(log_path.read_text()[-2000:])  # noqa: ASYNC240 (the worker is gone)
        await asyncio.sleep(0.02 if t_first is None else 0.25)
    assert t_first is not None
    return time.perf_counter() - t_first, cpu_s(proc.pid) - cpu_first, consumed - seen_first


async def pipeline_run(
    bootstrap: str, events: int, workdir: Path, app_id: str, extra_env: dict[str, str] | None = None
) -> Run:
    """One worker, a consumer group of its own, through the whole backlog."""
    started_ns = time.time_ns()
    proc, port = start_worker(bootstrap, workdir, app_id, extra_env)
    try:
        elapsed, cpu_used, events_timed = await through_backlog(proc, port, events, workdir / f"{app_id}.log")
        alerts = metric(port, "riskstream_alerts_total")
        settle_by = time.monotonic() + SCORER_SETTLE_S
        while metric(port, "riskstream_llm_inflight_requests") > 0 and time.monotonic() < settle_by:
            await asyncio.sleep(0.5)
        in_time = metric(port, 'riskstream_llm_assessments_total{outcome="ok"}')
        late = metric(port, 'riskstream_llm_assessments_total{outcome="late"}')
        fallbacks = metric(port, "riskstream_llm_fallbacks_total")
    finally:
        stop(proc)
    by_version = await publish_ms(bootstrap, started_ns)
    rate, cpu_us = events_timed / elapsed, 1e6 * cpu_used / events_timed
    return Run(rate, cpu_us, alerts / elapsed, alerts, in_time, late, fallbacks, by_version)


async def read_topic(
    bootstrap: str, topic: str, idle_polls: int, poll_ms: int
) -> AsyncIterator[ConsumerRecord]:
    """Every record of ``topic`` from its start, until ``idle_polls`` polls in a row find none."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        idle = 0
        while idle < idle_polls:
            batch = await consumer.getmany(timeout_ms=poll_ms, max_records=10_000)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    yield r
    finally:
        await consumer.stop()


async def publish_ms(bootstrap: str, since_ns: int) -> dict[int, tuple[float, ...]]:
    """Alert version -> detection -> publication (ms) of every alert detected since
    ``since_ns`` (wall time): version 1 is what an alert waits before anyone sees it."""
    out: dict[int, list[float]] = {}
    async for r in read_topic(bootstrap, Settings().topics.risk_alerts, 3, 300):
        a = RiskAlert.from_json(json.loads(r.value))
        t = a.timings
        if t.detected_ns >= since_ns and t.published_ns:
            out.setdefault(a.version, []).append((t.published_ns - t.detected_ns) / 1e6)
    return {version: tuple(ms) for version, ms in out.items()}


def median_run(runs: list[Run]) -> Run:
    return Run(
        statistics.median(r.events_per_s for r in runs),
        statistics.median(r.cpu_us_per_event for r in runs),
        statistics.median(r.alerts_per_s for r in runs),
    )


def spread(runs: list[Run]) -> str:
    rates = [r.events_per_s for r in runs]
    return f"{min(rates):,.0f}-{max(rates):,.0f}"


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def quantiles(ms: list[float]) -> str:
    """``p50/p99`` of a latency sample, ``-`` when it has fewer than two values."""
    return f"{pct(ms, 50):,.0f}/{pct(ms, 99):,.0f}" if len(ms) > 1 else "-"


async def main(
    events: int, rate: float, latency_s: float, repeat: int, scorers: list[str], vllm_model: str | None
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="riskstream-bench-"))
    if repeat > 0:
        await throughput(events, repeat, workdir)
    if scorers:
        await scorer_throughput(events, max(repeat, 1), workdir, scorers, vllm_model)
    if latency_s > 0:
        await latency(rate, latency_s, workdir)


LLM_DOUBLE_DELAY_S = 0.3
SCORER_SETTLE_S = 15.0
"""Longest wait, after the backlog, for the scorer's requests to end (the update deadline is
10 s by default): the answer shares count every request."""


async def scorer_throughput(
    events: int, repeat: int, workdir: Path, scorers: list[str], vllm_model: str | None
) -> None:
    """The same backlog through one worker per scorer: rules only, the ``openai`` scorer
    against a server double answering after 300 ms, the ``vllm`` scorer on a local model."""
    from bench.llm_server_double import SlowLLMServerDouble

    server = SlowLLMServerDouble(LLM_DOUBLE_DELAY_S)
    base_url = await server.start()
    envs: dict[str, dict[str, str]] = {
        "rules": {"RISKSTREAM_SCORER__KIND": "rules"},
        "openai": {
            "RISKSTREAM_SCORER__KIND": "openai",
            "RISKSTREAM_SCORER__OPENAI__BASE_URL": base_url,
        },
    }
    if vllm_model:
        envs["vllm"] = {
            "RISKSTREAM_SCORER__KIND": "vllm",
            "RISKSTREAM_SCORER__VLLM__MODEL_PATH": vllm_model,
            # On the CPU backend a share of memory is refused when other processes hold some:
            # a fixed KV cache, as the tests size it (a GPU run may drop this).
            "RISKSTREAM_SCORER__VLLM__KV_CACHE_MEMORY_BYTES": os.environ.get(
                "RISKSTREAM_SCORER__VLLM__KV_CACHE_MEMORY_BYTES", str(64 << 20)
            ),
        }
    runs: dict[str, list[Run]] = {name: [] for name in scorers if name in envs}
    try:
        with EmbeddedBroker() as broker:
            bs = broker.bootstrap_servers
            await fill_topics(bs, events)
            for i in range(repeat):
                for name in runs:
                    runs[name].append(
                        await pipeline_run(bs, events, workdir, f"bench-{name}-{i}", envs[name])
                    )
    finally:
        await server.stop()
    print(f"scorers: {events:,} events, median of {repeat} runs; the openai server double answers in 300 ms")
    print(
        f"{'scorer':8} {'events/s':>10} {'vs rules':>9} {'alerts/s':>9} {'LLM in time':>12} "
        f"{'LLM late':>9} {'rules only':>11} {'v1 p50/p99 ms':>14} {'v2 p50/p99 ms':>14}"
    )
    base = median_run(runs["rules"]).events_per_s if runs.get("rules") else None
    for name, rs in runs.items():
        med = median_run(rs)
        alerts = sum(r.alerts for r in rs)
        shares = [
            f"{sum(getattr(r, f) for r in rs) / alerts:.0%}" if alerts and name != "rules" else "-"
            for f in ("llm_in_time", "llm_late", "llm_fallbacks")
        ]
        ratio = f"{med.events_per_s / base:.2f}" if base else "-"
        latency = [quantiles([ms for r in rs for ms in r.publish_ms.get(v, ())]) for v in (1, 2)]
        print(
            f"{name:8} {med.events_per_s:>10,.0f} {ratio:>9} {med.alerts_per_s:>9,.1f} {shares[0]:>12} "
            f"{shares[1]:>9} {shares[2]:>11} {latency[0]:>14} {latency[1]:>14}"
        )


async def throughput(events: int, repeat: int, workdir: Path) -> None:
    stock_runs: list[Run] = []
    lean_runs: list[Run] = []
    pipe_runs: list[Run] = []
    with EmbeddedBroker() as broker:
        bs = broker.bootstrap_servers
        settings = await fill_topics(bs, events)
        topics = [settings.topics.trade_logs, settings.topics.market_data]
        raw = await raw_consume_rate(bs, topics, events)
        # Interleaved, so a slow spell of the machine or the broker hits all three alike.
        for i in range(repeat):
            stock_runs.append(await faust_ceiling(bs, events, topics, stock_drain=True))
            lean_runs.append(await faust_ceiling(bs, events, topics, stock_drain=False))
            pipe_runs.append(await pipeline_run(bs, events, workdir, f"bench-throughput-{i}"))
    stock, lean, pipe = median_run(stock_runs), median_run(lean_runs), median_run(pipe_runs)
    print(f"throughput: {events:,} events, median of {repeat} runs (min-max events/s)")
    print(f"{'measure':44} {'events/s':>10} {'min-max':>15} {'CPU us/event':>13}")
    print(f"{'raw aiokafka consume + json':44} {raw:>10,.0f}")
    for name, runs, med in (
        ("bare Faust agent, stock drain", stock_runs, stock),
        ("bare Faust agent, riskstream drain", lean_runs, lean),
        ("riskstream pipeline", pipe_runs, pipe),
    ):
        print(f"{name:44} {med.events_per_s:>10,.0f} {spread(runs):>15} {med.cpu_us_per_event:>13.1f}")
    print(f"{'  alerts/s during the pipeline runs':44} {pipe.alerts_per_s:>10,.1f}")
    print(f"{'  pipeline / bare Faust, stock drain':44} {pipe.events_per_s / stock.events_per_s:>10.0%}")
    print(f"{'  pipeline / bare Faust, riskstream drain':44} {pipe.events_per_s / lean.events_per_s:>10.0%}")
    print(f"{'  pipeline / raw aiokafka':44} {pipe.events_per_s / raw:>10.0%}")


async def latency(rate: float, latency_s: float, workdir: Path) -> None:
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
            by_window: dict[int, list[float]] = {}
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                for recs in (await consumer.getmany(timeout_ms=300)).values():
                    for r in recs:
                        a = RiskAlert.from_json(json.loads(r.value))
                        if a.timings.event_ns >= t0_ns and a.timings.published_ns:
                            latency_ms = (a.timings.published_ns - a.timings.event_ns) / 1e6
                            latencies_ms.append(latency_ms)
                            window = (a.timings.event_ns - t0_ns) // (DRIFT_WINDOW_S * 1_000_000_000)
                            by_window.setdefault(int(window), []).append(latency_ms)
            await consumer.stop()
        finally:
            stop(proc)

    print(f"latency: {latency_s:.0f} s of simulated traffic at {rate:,.0f} steps/s, produced live")
    print(f"{'latency run: produced events/s':44} {produced_rate:>12,.0f}")
    print(f"{'latency run: alerts':44} {len(latencies_ms):>12}")
    if len(stats.send_lag_ms) >= 2:
        for q in (50, 99):
            print(f"{f'simulator send lag p{q} (ms)':44} {pct(stats.send_lag_ms, q):>12.1f}")
    if len(latencies_ms) >= 2:
        for q in (50, 95, 99):
            print(f"{f'event->alert p{q} (ms)':44} {pct(latencies_ms, q):>12.1f}")
    # The embedded broker's cost grows with what it stores: a drift shows here first.
    for window, values in sorted(by_window.items()):
        label = f"  p99 of alerts {window * DRIFT_WINDOW_S}-{(window + 1) * DRIFT_WINDOW_S} s (ms)"
        print(f"{label:44} {max(values) if len(values) < 2 else pct(values, 99):>12.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5000)
    parser.add_argument("--latency-s", type=float, default=20)
    parser.add_argument(
        "--repeat", type=int, default=3, help="throughput runs of each consumer (0: latency only)"
    )
    parser.add_argument(
        "--scorers",
        default="",
        help="comma-separated: rules, openai (against a 300-ms server double), vllm (needs --vllm-model)",
    )
    parser.add_argument("--vllm-model", default=None, help="a local model folder for the vllm scorer")
    a = parser.parse_args()
    scorers = [x for x in a.scorers.split(",") if x]
    asyncio.run(main(a.events, a.rate, a.latency_s, a.repeat, scorers, a.vllm_model))
