"""The driver carries out the event-time merge's pauses in the order they were decided, even
when the market feed's delivery and the agent's interleave around the await that pauses a
trade-logs partition (the race that once left a market-data partition paused for good).

Hand-written doubles: ``ScriptedMerge`` (the merge's decisions, scripted: the real merge's
decisions are tested in ``test_event_time_merge.py``) and ``AppDouble`` (Faust's rebalance
flags); the market feed is the real one, not started (its pause state without a consumer);
pausing a trade-logs partition is replaced by an await that yields to the other delivery, as
the real one does."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from riskstream.agents import driver as driver_module
from riskstream.agents.driver import FoldDriver
from riskstream.agents.market_feed import MarketFeed
from riskstream.core.event_time import Pauses
from riskstream.metrics import Metrics

TRADES, MARKET = "trade-logs", "market-data"


class ScriptedMerge:
    def __init__(self, decisions: list[Pauses[tuple[str, int]]]) -> None:
        self._decisions = decisions
        self.paused: set[tuple[str, int]] = set()

    def pauses(self) -> Pauses[tuple[str, int]]:
        decision = self._decisions.pop(0)
        self.paused |= decision.pause
        self.paused -= decision.resume
        return decision


class AppDouble:
    rebalancing = False
    in_recovery = False


async def nothing(records: object) -> None:
    return None


def unstarted_feed() -> MarketFeed:
    return MarketFeed(MARKET, {}, deliver=nothing, expected=lambda p: 0, fetch_max_wait_ms=10)


async def test_a_resume_decided_after_a_pause_is_carried_out_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def pause_partitions(app: Any, tps: Any) -> None:
        await asyncio.sleep(0)  # the consumer thread's round trip: the other delivery runs

    monkeypatch.setattr(driver_module, "pause_partitions", pause_partitions)
    monkeypatch.setattr(driver_module, "resume_partitions", pause_partitions)
    merge = ScriptedMerge(
        [
            Pauses(frozenset({(TRADES, 0), (MARKET, 0)}), frozenset()),
            Pauses(frozenset(), frozenset({(MARKET, 0)})),
        ]
    )
    driver = FoldDriver(AppDouble(), SimpleNamespace(merge=merge), asyncio.Lock(), TRADES, Metrics())  # type: ignore[arg-type]
    driver.restart_pending = False
    driver.feed = unstarted_feed()
    await asyncio.gather(driver._pause(), driver._pause())
    assert merge.paused == {(TRADES, 0)}
    assert driver.feed.paused == set(), "the feed holds what the merge holds, nothing more"
