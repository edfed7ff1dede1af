"""State at production size: one worker through the same number of events spread over many
accounts and symbols, and over a handful, on the embedded broker:

    python -m bench.state_size --accounts 100000 --symbols 10000 --events 300000

Per run: consumed events/s and CPU per event, checkpoint pause p99 (the worker's
``riskstream_stage_seconds{stage="checkpoint_pause"}`` histogram, bucket bound) and the number
of checkpoints, the CPU time spent in those pauses (p99), the fold-lock holds the checkpoints
made (pre-copy slices and cuts) and how many lasted over 20 ms, the generation-2
garbage-collector passes and their p99 (``riskstream_gc_pause_seconds``: the whole process
stops for each, checkpoint or not), worker RSS at the end, the account states held decoded then
(``riskstream_accounts_resident``: the others went idle past
``RISKSTREAM_STREAM__ACCOUNT_IDLE_TTL_S`` of event time and are held as their stored bytes, in
the state file of ``stream.state_dir``, not in memory; the variable passes through to the
worker), and the stored state (the latest changelog value of
every account, as a restart would read it): accounts held and mean bytes each. Resident bytes
per account are the RSS difference between the runs over the difference in accounts (symbol
states included: every worker holds every symbol).

The flow is synthetic and plain: each event is a quote on a random symbol, or an order event
of a random account (a limit order at the touch, later filled or cancelled), event time
advancing at ``--event-rate`` events per second, so that the state is what ten typologies keep
for ordinary activity, not for abuse.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.pipeline import metric, read_topic, start_worker, stop, through_backlog
from bench.soak import bucket_quantile, histogram_buckets, pause_buckets, rss_mb, scrape
from riskstream.broker import EmbeddedBroker
from riskstream.core.fold import EventTimeDetector
from riskstream.detection import detection_context
from riskstream.records import OrderEvent, OrderEventType, Quote, Side
from riskstream.records.codec import dumps
from riskstream.settings import Settings
from riskstream.topics import apply_specs, load_specs

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class SizeRun:
    accounts: int
    symbols: int
    events_per_s: float
    cpu_us_per_event: float
    checkpoints: float
    pause_p99_ms: float | None
    rss_mb: float
    stored_accounts: int
    stored_bytes_mean: float
    pauses: float
    """Fold-lock holds of the checkpoints (pre-copy slices and cuts)."""
    pauses_over_20ms: float
    pause_cpu_p99_ms: float | None
    """CPU time spent in the holds, p99 (what is left of a hold's wall time waited for a core)."""
    resident_accounts: float
    """Account states held decoded at the end (``riskstream_accounts_resident``)."""
    gc2_passes: float
    """Generation-2 collector passes (each stops the process over the whole heap)."""
    gc2_p99_ms: float | None


def synthetic_events(
    accounts: int, symbols: int, events: int, rate: float
) -> Iterator[tuple[str, str, OrderEvent | Quote]]:
    """(topic, key, event): half quotes on a random symbol, half order events of a random
    account (a limit at the touch, later filled or cancelled), event time at ``rate`` per second
    up to now."""
    rng = random.Random(accounts * 7 + symbols)
    names = [f"S{i:05d}" for i in range(symbols)]
    price = {s: rng.choice((4.0, 25.0, 120.0, 600.0)) for s in names}
    open_orders: dict[str, tuple[str, str, Side, float, float]] = {}
    t = time.time_ns() - int(events / rate * NS)
    for n in range(events):
        t += int(NS / rate)
        if n % 2 == 0:
            s = rng.choice(names)
            px = price[s]
            tick = 0.01 if px < 100 else 0.05
            quote = Quote(
                s, "XNAS", t, px - tick, px + tick, rng.randint(1, 20) * 100, rng.randint(1, 20) * 100
            )
            yield "market", s, quote
            continue
        account = f"ACC-{rng.randrange(accounts):06d}"
        if account in open_orders:
            oid, s, side, qty, px = open_orders.pop(account)
            kind = rng.choice((OrderEventType.FILL, OrderEventType.CANCEL))
            if kind is OrderEventType.FILL:
                event = OrderEvent(kind, oid, account, "T1", s, side, qty, px, t, last_qty=qty, last_px=px)
            else:
                event = OrderEvent(kind, oid, account, "T1", s, side, qty, px, t)
        else:
            s = rng.choice(names)
            side = rng.choice((Side.BUY, Side.SELL))
            qty = float(rng.randint(1, 10) * 100)
            px = price[s]
            oid = f"o-{n}"
            open_orders[account] = (oid, s, side, qty, px)
            event = OrderEvent(OrderEventType.NEW, oid, account, "T1", s, side, qty, px, t)
        yield "trades", account, event


async def produce(
    bootstrap: str, settings: Settings, accounts: int, symbols: int, events: int, rate: float
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=50, max_batch_size=1 << 20)
    await producer.start()
    topics = {"market": settings.topics.market_data, "trades": settings.topics.trade_logs}
    try:
        for topic, key, event in synthetic_events(accounts, symbols, events, rate):
            await producer.send(topics[topic], dumps(event.to_json()), key=key.encode())
        await producer.flush()
    finally:
        await producer.stop()


def held_in_process(accounts: int, symbols: int, events: int, rate: float, ttl_s: float | None) -> None:
    """The same flow folded in this process (the backtest's fold, no broker): bytes traced for
    the account states, decoded and stored, per account, with and without the idle TTL."""
    settings = Settings()
    flow = list(synthetic_events(accounts, symbols, events, rate))
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    detector = EventTimeDetector(
        detection_context(settings, {}), settings.windows.size_ewma_alpha, idle_ttl_s=ttl_s
    )
    for _, _, event in flow:
        detector.feed(event)
    detector.finish()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    market = sum(len(state.to_bytes()) for state in detector.market.values())
    known = len(detector.accounts) + len(detector.stored)
    stored = [len(state.to_bytes()) for state in detector.accounts.values()] + [
        len(b) for b in detector.stored.values()
    ]
    ttl = "none" if ttl_s is None else f"{ttl_s:g} s"
    print(
        f"in process, TTL {ttl}: {known:,} accounts, {len(detector.accounts):,} decoded, "
        f"{len(detector.stored):,} as stored bytes; {held / known:,.0f} bytes traced per account "
        f"(symbol states and the holders index included; the symbols' states alone store "
        f"{market / known:,.0f} per account), {sum(stored) / len(stored):,.0f} stored bytes each"
    )


async def stored_states(bootstrap: str, topic: str) -> dict[str, int]:
    """Key -> size of its latest value on the changelog (markers left out)."""
    sizes: dict[str, int] = {}
    async for r in read_topic(bootstrap, topic, 4, 500):
        key = json.loads(r.key)
        if not key.startswith("\x00") and r.value is not None:
            sizes[key] = len(r.value)
    return sizes


async def size_run(accounts: int, symbols: int, events: int, rate: float, workdir: Path) -> SizeRun:
    app_id = f"size-{accounts}-{symbols}"
    with EmbeddedBroker(log_path=workdir / f"{app_id}-broker.log") as broker:
        bs = broker.bootstrap_servers
        settings = Settings(kafka={"bootstrap_servers": bs})
        await apply_specs(settings.kafka, load_specs(settings.topics))
        await produce(bs, settings, accounts, symbols, events, rate)
        proc, port = start_worker(bs, workdir, app_id)
        try:
            elapsed, cpu_used, done = await through_backlog(proc, port, events, workdir / f"{app_id}.log")
            await asyncio.sleep(3)  # the last checkpoints
            text = scrape(port)
            pauses = pause_buckets(text)
            pause = bucket_quantile(pauses, {}, 0.99)
            pause_cpu = bucket_quantile(pause_buckets(text, "checkpoint_pause_cpu"), {}, 0.99)
            resident = metric(port, "riskstream_accounts_resident")
            gc2 = histogram_buckets(text, "riskstream_gc_pause_seconds", 'generation="2"')
            gc2_p99 = bucket_quantile(gc2, {}, 0.99)
            checkpoints = metric(port, "riskstream_checkpoints_total")
            rss = rss_mb(proc.pid)
        finally:
            stop(proc)
        sizes = await stored_states(bs, f"{app_id}-account-state-changelog")
    return SizeRun(
        accounts,
        symbols,
        done / elapsed,
        1e6 * cpu_used / done,
        checkpoints,
        None if pause is None else pause * 1000,
        rss,
        len(sizes),
        sum(sizes.values()) / len(sizes) if sizes else 0.0,
        pauses.get(float("inf"), 0.0),
        pauses.get(float("inf"), 0.0) - pauses.get(0.02, 0.0),
        None if pause_cpu is None else pause_cpu * 1000,
        resident,
        gc2.get(float("inf"), 0.0),
        None if gc2_p99 is None else gc2_p99 * 1000,
    )


def show(run: SizeRun) -> None:
    pause = f"{run.pause_p99_ms:.0f}" if run.pause_p99_ms is not None else "-"
    gc2 = f"{run.gc2_p99_ms:.0f}" if run.gc2_p99_ms is not None else "-"
    cpu = f"{run.pause_cpu_p99_ms:.0f}" if run.pause_cpu_p99_ms is not None else "-"
    print(
        f"{run.accounts:>9,} {run.symbols:>8,} {run.events_per_s:>9,.0f} {run.cpu_us_per_event:>8.0f} "
        f"{run.checkpoints:>6.0f} {pause:>9} {cpu:>7} {run.pauses:>6.0f} {run.pauses_over_20ms:>6.0f} "
        f"{run.gc2_passes:>5.0f} {gc2:>7} {run.rss_mb:>7.0f} {run.resident_accounts:>8,.0f} "
        f"{run.stored_accounts:>9,} {run.stored_bytes_mean:>9.0f}",
        flush=True,
    )


async def main(
    accounts: int, symbols: int, events: int, rate: float, few_accounts: int, few_symbols: int
) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="riskstream-size-"))
    print(f"state size: {events:,} events each, event time at {rate:,.0f} events/s")
    print(
        f"{'accounts':>9} {'symbols':>8} {'events/s':>9} {'CPU us':>8} {'ckpts':>6} {'pause p99':>9} "
        f"{'cpu p99':>7} {'holds':>6} {'>20ms':>6} {'gc2':>5} {'gc2 p99':>7} {'RSS MB':>7} {'live':>8} "
        f"{'stored':>9} {'B/account':>9}"
    )
    few = await size_run(few_accounts, few_symbols, events, rate, workdir)
    show(few)
    many = await size_run(accounts, symbols, events, rate, workdir)
    show(many)
    extra = many.stored_accounts - few.stored_accounts
    if extra > 0:
        resident = (many.rss_mb - few.rss_mb) * 1024 * 1024 / extra
        print(f"resident bytes per extra account (symbol states included): {resident:,.0f}")
        print(f"  / stored bytes per account: {resident / max(many.stored_bytes_mean, 1):.1f}x")
    print(f"throughput, many / few: {many.events_per_s / few.events_per_s:.0%}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--symbols", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--event-rate", type=float, default=1500.0)
    parser.add_argument("--few-accounts", type=int, default=40)
    parser.add_argument("--few-symbols", type=int, default=4)
    parser.add_argument(
        "--in-process-ttl-s",
        type=float,
        action="append",
        help="instead of the worker runs: fold the flow over --accounts in this process with this"
        " idle TTL (0: none; repeat for several) and print the bytes traced per account",
    )
    a = parser.parse_args()
    if a.in_process_ttl_s:
        for ttl_s in a.in_process_ttl_s:
            held_in_process(a.accounts, a.symbols, a.events, a.event_rate, ttl_s or None)
        raise SystemExit(0)
    asyncio.run(main(a.accounts, a.symbols, a.events, a.event_rate, a.few_accounts, a.few_symbols))
