"""The ``riskstream`` command: demo, worker, simulate, replay, backtest, topics, db, quantize."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from riskstream.settings import Settings

if TYPE_CHECKING:
    from riskstream.sinks.audit import AuditLog


def _settings(bootstrap_servers: str | None) -> Settings:
    settings = Settings()
    if bootstrap_servers:
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
        settings = settings.model_copy(update={"kafka": kafka})
    return settings


@click.group()
def main() -> None:
    """Real-time market-risk and trade-surveillance on Kafka."""


@main.command()
@click.option("--url", default="http://127.0.0.1:9108/metrics", show_default=True, help="A worker's metrics.")
@click.option("--interval-s", default=2.0, show_default=True, help="Seconds between scrapes.")
@click.option("--once", is_flag=True, help="Two scrapes, one view, then exit (for scripts).")
def top(url: str, interval_s: float, once: bool) -> None:
    """Live terminal view of a worker: throughput, lag, latency, alerts, LLM."""
    import time

    from rich.console import Console
    from rich.live import Live

    from riskstream.ops.top import fetch, render

    try:
        before = fetch(url)
        time.sleep(interval_s)
        now = fetch(url)
        if once:
            Console().print(render(before, now))
            return
        with Live(render(before, now), refresh_per_second=1) as live:
            while True:
                time.sleep(interval_s)
                before, now = now, fetch(url)
                live.update(render(before, now))
    except OSError as exc:
        raise click.ClickException(f"cannot read {url}: {exc}") from None
    except KeyboardInterrupt:
        return


@main.group()
def db() -> None:
    """The audit database's schema (Alembic migrations in riskstream/migrations)."""


def _audit_log() -> AuditLog:
    from riskstream.sinks.audit import AuditLog

    settings = Settings()
    db = settings.database
    return AuditLog.from_url(db.url.get_secret_value(), db.pool_size, db.statement_timeout_s)


async def _on_audit(action: Callable[[AuditLog], Awaitable[str]]) -> str:
    log = _audit_log()
    try:
        return await action(log)
    finally:
        await log.engine.dispose()


def _db_run(action: Callable[[AuditLog], Awaitable[str]]) -> None:
    try:
        click.echo(asyncio.run(_on_audit(action)))
    except (OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"cannot migrate the audit database: {exc}") from None


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Migrate the audit schema up to REVISION (RISKSTREAM_DATABASE__URL)."""

    async def go(log: AuditLog) -> str:
        await log.ensure_schema(revision)
        return f"audit schema at revision {await log.schema_revision()}"

    _db_run(go)


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the audit schema down to REVISION ("base" removes it)."""

    async def go(log: AuditLog) -> str:
        await log.downgrade(revision)
        return f"audit schema at revision {await log.schema_revision()}"

    _db_run(go)


@db.command("current")
def db_current() -> None:
    """Print the audit schema's revision."""

    async def go(log: AuditLog) -> str:
        return f"audit schema at revision {await log.schema_revision()}"

    _db_run(go)


@main.group()
def topics() -> None:
    """Topic specs in topics/*.toml."""


@topics.command("apply")
@click.option("--bootstrap-servers", default=None, help="Overrides RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS.")
def topics_apply(bootstrap_servers: str | None) -> None:
    """Create missing topics and check existing ones against their specs."""
    from riskstream.topics import TopicSpecError, apply_specs, load_specs

    settings = _settings(bootstrap_servers)
    try:
        report = asyncio.run(apply_specs(settings.kafka, load_specs(settings.topics)))
    except TopicSpecError as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaError as exc:
        raise click.ClickException(
            f"cannot use the broker at {settings.kafka.bootstrap_servers}: {exc!r}"
        ) from None
    for line in report:
        click.echo(line)


@main.command()
@click.option("--bootstrap-servers", default=None, help="Overrides RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS.")
def worker(bootstrap_servers: str | None) -> None:
    """Run one Faust worker against the broker and database from settings."""
    from faust.worker import Worker

    from riskstream.app import build_runtime, check_settings
    from riskstream.topics import apply_specs, load_specs, partition_counts

    settings = _settings(bootstrap_servers)
    names = settings.topics
    try:
        check_settings(settings)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"invalid configuration: {exc}") from None

    async def prepare() -> dict[str, int]:
        await apply_specs(settings.kafka, load_specs(names))
        return await partition_counts(settings.kafka, [names.trade_logs, names.market_data])

    try:
        partitions = asyncio.run(prepare())
    except KafkaError as exc:
        raise click.ClickException(
            f"cannot use the broker at {settings.kafka.bootstrap_servers}: {exc!r}"
        ) from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    runtime = build_runtime(settings, partitions)
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(settings.stream.gc_young_objects, older, oldest)
    if settings.metrics_port:
        runtime.metrics.serve(settings.metrics_port, settings.metrics_addr)
        runtime.metrics.watch_gc()
    asyncio.set_event_loop(asyncio.new_event_loop())
    Worker(runtime.app, loglevel=settings.log_level, quiet=True).execute_from_commandline()


@main.command()
@click.option("--bootstrap-servers", default=None, help="Overrides RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same traffic.")
@click.option(
    "--rate", default=200.0, show_default=True, help="Simulator steps per second (~1.5 events each)."
)
@click.option("--duration-s", default=0.0, help="Stop after this many seconds (0 = run until Ctrl-C).")
@click.option(
    "--parquet",
    "parquet_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write market_data/trade_logs/labels .parquet here instead of producing to a broker.",
)
@click.option("--events", default=100_000, show_default=True, help="Events to write with --parquet.")
@click.option(
    "--start",
    default=None,
    help="Event time of the first event with --parquet (ISO-8601 with offset, e.g. 2026-11-24T20:50:00Z;"
    " default now). With --seed it makes the files reproducible; near 16:00 New York it includes the close.",
)
def simulate(
    bootstrap_servers: str | None,
    seed: int,
    rate: float,
    duration_s: float,
    parquet_dir: Path | None,
    events: int,
    start: str | None,
) -> None:
    """Produce simulated market data and trade logs, with labelled abuse, to any broker or to
    Parquet files."""
    if parquet_dir is not None:
        import time

        from riskstream.offline.parquet import simulate_to_parquet
        from riskstream.records import DecodeError, parse_ts

        try:
            start_ns = time.time_ns() if start is None else parse_ts(start)
        except DecodeError as exc:
            raise click.BadParameter(exc.reason, param_hint="--start") from None
        counts = simulate_to_parquet(parquet_dir, seed, rate, events, start_ns)
        click.echo(", ".join(f"{v} {k}" for k, v in counts.items()) + f" written to {parquet_dir}")
        return
    from riskstream.sim.producer import run_simulation

    settings = _settings(bootstrap_servers)
    try:
        stats = asyncio.run(run_simulation(settings, seed=seed, rate=rate, duration_s=duration_s or None))
    except KeyboardInterrupt:
        return
    click.echo(f"produced {stats.events} events ({stats.injected} injected abuse cases)")


_files = click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)


@main.command()
@_files
@click.option("--bootstrap-servers", default=None, help="Overrides RISKSTREAM_KAFKA__BOOTSTRAP_SERVERS.")
@click.option("--speed", default="max", show_default=True, help="1 = original pace, 10 = ten times, max.")
def replay(files: tuple[Path, ...], bootstrap_servers: str | None, speed: str) -> None:
    """Publish Parquet market data and trade logs to the topics in event-time order."""
    from riskstream.offline.replay import parse_speed
    from riskstream.offline.replay import replay as run_replay

    try:
        factor = parse_speed(speed)
        stats = asyncio.run(run_replay(list(files), _settings(bootstrap_servers), factor))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except KafkaError as exc:
        raise click.ClickException(f"broker: {exc}") from None
    for r in stats.rejected[:20]:
        click.echo(f"rejected {r.path}:{r.row}: {r.reason}", err=True)
    click.echo(
        f"replayed {stats.events} events in {stats.seconds:.1f} s; {len(stats.rejected)} rows rejected"
    )


@main.command()
@_files
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("alerts.parquet"),
    show_default=True,
    help="Alerts Parquet file to write.",
)
def backtest(files: tuple[Path, ...], out: Path) -> None:
    """Run the detectors over Parquet files without a broker; write the alerts to Parquet."""
    from riskstream.offline.backtest import run_backtest

    try:
        stats = run_backtest(list(files), out, Settings())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    for r in stats.rejected[:20]:
        click.echo(f"rejected {r.path}:{r.row}: {r.reason}", err=True)
    per = ", ".join(f"{k} {v}" for k, v in sorted(stats.by_category.items()))
    click.echo(
        f"{stats.events} events, {stats.alerts} alerts ({per}), {len(stats.rejected)} rows rejected -> {out}"
    )


@main.command()
@click.option(
    "--rate", default=200.0, show_default=True, help="Simulator steps per second (~1.5 events each)."
)
@click.option("--duration-s", default=0.0, help="Stop after this many seconds (0 = until Ctrl-C).")
@click.option("--seed", default=7, show_default=True)
def demo(rate: float, duration_s: float, seed: int) -> None:
    """Start broker, topics, worker and simulator on embedded defaults and show alerts."""
    from riskstream.demo import run_demo

    logging.basicConfig(level=logging.WARNING)
    sys.exit(run_demo(rate=rate, duration_s=duration_s or None, seed=seed))


@main.command()
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Local directory of the fp16/bf16 model.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to write the 4-bit checkpoint to (must be new or empty).",
)
@click.option("--scheme", type=click.Choice(["awq", "gptq"]), default="awq", show_default=True)
@click.option("--samples", default=64, show_default=True, help="Calibration prompts.")
@click.option("--max-seq-len", default=1024, show_default=True, help="Calibration sequence cap, tokens.")
@click.option(
    "--calibration-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="One calibration text per line instead of scorer-shaped prompts.",
)
def quantize(
    model_dir: Path, out_dir: Path, scheme: str, samples: int, max_seq_len: int, calibration_file: Path | None
) -> None:
    """Quantize a model to 4-bit weights (W4A16) that vLLM serves (llm-compressor)."""
    try:
        from riskstream.quantize import quantize as run_quantize
    except ImportError as exc:
        raise click.ClickException(f"quantize needs the llm extra installed (make llm): {exc}") from None
    logging.basicConfig(level=logging.INFO)
    try:
        result = run_quantize(
            model_dir,
            out_dir,
            "gptq" if scheme == "gptq" else "awq",
            samples,
            max_seq_len,
            calibration_file,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {result.scheme} W4A16 checkpoint to {result.out_dir} in {result.seconds:.0f} s")


if __name__ == "__main__":
    main()
