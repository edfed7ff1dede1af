"""Which partitions are read again because their records stopped reaching the fold: the pure
rule (:class:`StalledReads`), the pipeline that feeds it its readers' end offsets, and the
driver that seeks the readers back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from riskstream.agents import driver as driver_module
from riskstream.agents.driver import FoldDriver
from riskstream.agents.stalled_reads import StalledReads
from riskstream.metrics import Metrics
from tests.unit.test_pipeline_event_time import MARKET, TRADES, Clock, Ends, o, pipeline, q

A, B = (TRADES, 0), (MARKET, 0)


def test_a_partition_behind_its_readers_end_is_read_again_once_it_has_not_moved_for_the_wait() -> None:
    reads: StalledReads[tuple[str, int]] = StalledReads(after_s=5.0)
    assert reads.due([(A, 10, 20)], now_s=0.0) == {}
    assert reads.due([(A, 10, 20)], now_s=4.9) == {}
    assert reads.due([(A, 10, 20)], now_s=5.0) == {A: 10}
    # At most once per wait while it stays stalled.
    assert reads.due([(A, 10, 20)], now_s=9.9) == {}
    assert reads.due([(A, 10, 20)], now_s=10.0) == {A: 10}
    assert reads.rereads == 2


def test_progress_or_a_caught_up_partition_starts_the_wait_over() -> None:
    reads: StalledReads[tuple[str, int]] = StalledReads(after_s=5.0)
    reads.due([(A, 10, 20), (B, 3, 9)], now_s=0.0)
    # A moved (slow, not lost); B reached its reader's end, then fell behind again.
    reads.due([(A, 11, 20), (B, 9, 9)], now_s=4.0)
    reads.due([(A, 11, 20), (B, 9, 12)], now_s=4.5)
    assert reads.due([(A, 11, 20), (B, 9, 12)], now_s=8.9) == {}
    assert reads.due([(A, 11, 20), (B, 9, 12)], now_s=9.5) == {A: 11, B: 9}


def test_a_partition_with_nothing_known_is_never_read_again() -> None:
    reads: StalledReads[tuple[str, int]] = StalledReads(after_s=1.0)
    for now_s in (0.0, 5.0, 50.0):
        assert reads.due([(A, None, 20), (B, 3, None)], now_s) == {}


async def test_the_pipeline_reads_again_a_partition_whose_last_records_never_came() -> None:
    """Trade-logs records 1 and 2 were dropped between the client and the fold and its reader
    is at the end (3): no later record shows the gap. After the wait the pipeline names the
    partition and the offset to read it from; once they come, nothing more is read again."""
    clock = Clock()
    ends = Ends(clock)
    p, accounts = pipeline(clock, ends, reread_after_s=5.0)
    ends.end[B], ends.end[A] = 2, 3
    await p.on_batch([q(0, 1000), q(1, 2000), o(0, 1500)])
    assert p.take_stalled() == {}
    clock.now_s = 4.9
    await p.on_batch([])
    assert p.take_stalled() == {}
    clock.now_s = 5.0
    await p.on_batch([])
    assert p.take_stalled() == {A: 1}
    assert p.take_stalled() == {}
    await p.on_batch([o(1, 1600), o(2, 1700)])
    clock.now_s = 60.0
    await p.on_batch([])
    assert p.take_stalled() == {}
    assert accounts.applied_offset("A", 0) == 2


async def test_a_partition_the_merge_holds_is_not_read_again() -> None:
    clock = Clock()
    ends = Ends(clock)
    p, _ = pipeline(clock, ends, reread_after_s=5.0)
    ends.end[B], ends.end[A] = 9, 3
    await p.on_batch([q(0, 1000), o(0, 1500)])
    p.merge.paused.add(B)
    for now_s in (0.0, 6.0, 12.0):
        clock.now_s = now_s
        await p.on_batch([])
    assert set(p.take_stalled()) == {A}


class ConsumerDouble:
    """Hand-written double of Faust's consumer: its assignment, and the seeks asked of it."""

    def __init__(self, assigned: set[Any]) -> None:
        self.assigned = assigned
        self.seeks: list[tuple[Any, int]] = []

    def assignment(self) -> set[Any]:
        return self.assigned

    async def seek(self, tp: Any, offset: int) -> None:
        self.seeks.append((tp, offset))


class FeedDouble:
    """Hand-written double of the market feed's seek."""

    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []

    def seek(self, partition: int, offset: int) -> None:
        self.seeks.append((partition, offset))


async def test_the_driver_resumes_and_seeks_a_stalled_trade_partition_and_seeks_the_feed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resumed: list[Any] = []

    async def resume_partitions(app: Any, tps: Any) -> None:
        resumed.extend(tps)

    monkeypatch.setattr(driver_module, "resume_partitions", resume_partitions)
    consumer = ConsumerDouble({TP(TRADES, 0)})
    app = SimpleNamespace(consumer=consumer, rebalancing=False, in_recovery=False)
    metrics = Metrics()
    driver = FoldDriver(app, SimpleNamespace(reread_after_s=5.0), asyncio.Lock(), TRADES, metrics)  # type: ignore[arg-type]
    driver.feed = FeedDouble()
    await driver._read_again({(TRADES, 0): 7, (TRADES, 1): 4, (MARKET, 2): 3})
    assert consumer.seeks == [(TP(TRADES, 0), 7)], "trade-logs[1] is no longer owned"
    assert resumed == [TP(TRADES, 0)]
    assert driver.feed.seeks == [(2, 3)]
    gaps = metrics.offset_gaps.labels(TRADES, "stalled")._value.get()
    assert gaps == 2
