"""Lag monitoring on its own, with hand-written doubles of the broker's answers and the fold's
positions: lag per partition of both inputs, readiness conditions, and the exit on a stall."""

from __future__ import annotations

from collections.abc import Mapping

from faust.types import TP

from riskstream.agents.lag import LagMonitor, LagSources
from riskstream.agents.watchdog import StreamWatchdog
from riskstream.metrics import Metrics

TRADES, MARKET = "trade-logs", "market-data"


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class World:
    """What the broker and the fold say now (a double of both)."""

    def __init__(self) -> None:
        self.ends: dict[TP, int] | None = {TP(TRADES, 0): 10}
        self.positions: dict[tuple[str, int], int] = {(TRADES, 0): 9, (MARKET, 0): 4}
        self.market_end = 8
        self.crashes: list[str] = []

    async def end_offsets(self, tps: list[TP]) -> Mapping[TP, int]:
        if self.ends is None:
            raise TimeoutError("no answer")
        return self.ends

    async def crash(self, exc: BaseException, what: str) -> None:
        self.crashes.append(f"{what}: {exc}")


def monitor(world: World, clock: Clock, metrics: Metrics) -> LagMonitor:
    sources = LagSources(
        assigned=lambda: [TP(TRADES, 0)],
        end_offsets=world.end_offsets,
        positions=lambda: world.positions,
        committed=lambda tp: 5,
        held=set,
        market_partitions=lambda: [0],
        market_end=lambda p: world.market_end,
        market_failure=lambda: None,
        waiting_on=list,
    )
    return LagMonitor(sources, StreamWatchdog(30.0, 120.0, clock), metrics, MARKET, world.crash)


def gauge(metrics: Metrics, topic: str, partition: str) -> float:
    value = metrics.registry.get_sample_value(
        "riskstream_consumer_lag_messages", {"topic": topic, "partition": partition}
    )
    assert value is not None
    return value


async def test_lag_of_both_inputs_and_readiness_follow_the_broker() -> None:
    world, clock, metrics = World(), Clock(), Metrics()
    metrics.mark_ready()
    lag = monitor(world, clock, metrics)
    await lag.poll()
    assert gauge(metrics, TRADES, "0") == 0
    assert gauge(metrics, MARKET, "0") == 3
    assert metrics.readiness() is None
    world.ends = None
    await lag.poll()
    assert "broker" in (metrics.readiness() or "")


async def test_a_partition_with_records_waiting_and_no_progress_stalls_then_exits() -> None:
    world, clock, metrics = World(), Clock(), Metrics()
    metrics.mark_ready()
    lag = monitor(world, clock, metrics)
    world.ends = {TP(TRADES, 0): 50}
    await lag.poll()
    clock.now_s = 31
    await lag.poll()
    assert "stalled" in (metrics.readiness() or "")
    assert world.crashes == []
    clock.now_s = 200
    await lag.poll()
    assert world.crashes and "not moving" in world.crashes[0]
