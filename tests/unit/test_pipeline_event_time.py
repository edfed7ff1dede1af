"""The pipeline folding both inputs in one event-time order, without a broker: the sends go to a
hand-written double, the state tables are the in-memory double of ``test_state_store``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.agents.pipeline import Pipeline, Restart, SourceRecord
from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.event_time import EventTimeMerge
from riskstream.core.state import AccountState
from riskstream.llm import RuleScorer
from riskstream.metrics import Metrics
from riskstream.records.codec import dumps
from riskstream.sinks import AlertPublisher, AuditLog, AuditWriter, DeadLetterPublisher
from tests.factories import context as factory_context
from tests.factories import order, quote
from tests.unit.test_state_store import DictTableDouble

MARKET, TRADES = "market-data", "trade-logs"


class SendDouble:
    """Hand-written double of the producer: records what was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes) -> Awaitable[object]:
        self.sent.append((topic, key, value))
        acked: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        acked.set_result(None)
        return acked


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


class Ends:
    """Hand-written double of the consumers' end offsets: what each partition's latest fetch
    saw, answered at the clock's time (None: unknown)."""

    def __init__(self, clock: Clock) -> None:
        self.end: dict[tuple[str, int], int] = {}
        self.clock = clock

    def __call__(self, source: tuple[str, int]) -> tuple[int, float] | None:
        end = self.end.get(source)
        return None if end is None else (end, self.clock())


def pipeline(
    clock: Clock, ends: Ends | None = None, lateness_s: float = 10.0, partitions: int = 1
) -> tuple[Pipeline, CheckpointedStore[AccountState]]:
    """A pipeline owning trade-logs partitions 0.. and reading market-data partitions 0..,
    restarted from offset 0, as after a first assignment."""
    accounts = CheckpointedStore(
        DictTableDouble(), AccountState.to_bytes, AccountState.from_json, AccountState
    )
    metrics = Metrics()
    send = SendDouble()
    p = Pipeline(
        accounts=accounts,
        context=factory_context(market={}),
        size_alpha=0.1,
        scorer=RuleScorer(),
        alerts=AlertPublisher(send, "risk-alerts", lambda: 0),
        audit=AuditWriter(AuditLog(create_async_engine("sqlite+aiosqlite://")), metrics),
        dead_letters=DeadLetterPublisher(send, "dead-letter"),
        metrics=metrics,
        clock=lambda: 0,
        market_topic=MARKET,
        trade_topic=TRADES,
        merge=EventTimeMerge(lateness_s, 10**9),
        at_end=ends,
    )
    p.restart(Restart(dict.fromkeys(range(partitions), 0), list(range(partitions))))
    return p, accounts


def q(offset: int, t_ms: float) -> SourceRecord:
    return SourceRecord(MARKET, 0, offset, b"AAPL", dumps(quote(t_ms, 100.0, 100.02).to_json()))


def o(offset: int, t_ms: float) -> SourceRecord:
    event = order("new", f"o{offset}", "buy", 100, 100.0, t_ms, account="A")
    return SourceRecord(TRADES, 0, offset, b"A", dumps(event.to_json()))


async def test_events_ahead_of_another_partition_wait_and_are_not_committed_while_they_wait() -> None:
    p, accounts = pipeline(Clock())
    await p.on_batch([q(0, 1000), q(1, 2000), o(0, 1500), o(1, 5000)])
    # The order of 5 s waits for market data past 5 s; the quote of 2 s waits for the orders
    # to pass 2 s, which the order of 5 s (queued) does.
    assert p.held_events() == 1
    assert accounts.applied_offset("A", 0) == 0
    assert p.commit_offsets() == {(TRADES, 0): 1}

    await p.on_batch([q(2, 6000)])
    assert accounts.applied_offset("A", 0) == 1
    # The quote of 6 s now waits in turn, for the orders to pass 6 s.
    assert p.held_events() == 1
    assert p.commit_offsets() == {(TRADES, 0): 2}


async def test_a_partition_read_to_its_end_stops_holding_back_after_the_allowed_lateness() -> None:
    clock = Clock()
    ends = Ends(clock)
    p, accounts = pipeline(clock, ends, lateness_s=0.25)
    await p.on_batch([q(0, 1000), o(0, 9000)])
    assert p.held_events() == 1
    # Market data read to its end: still waited for until the allowed lateness has run.
    ends.end[(MARKET, 0)] = 1
    await p.on_batch([])
    assert p.held_events() == 1
    clock.now_s += 0.3
    await p.on_batch([])
    assert p.held_events() == 0
    assert accounts.applied_offset("A", 0) == 0


async def test_a_partition_silent_but_not_at_its_end_holds_back_however_long() -> None:
    """A backlog under load: a partition whose next records have not been fetched yet is not
    idle, however long the wall clock says it has been silent."""
    clock = Clock()
    ends = Ends(clock)
    p, accounts = pipeline(clock, ends, lateness_s=0.25)
    ends.end[(MARKET, 0)] = 50
    await p.on_batch([q(0, 1000), o(0, 9000)])
    clock.now_s += 3600
    await p.on_batch([])
    assert p.held_events() == 1
    assert accounts.applied_offset("A", 0) == -1


async def test_a_restart_drops_what_waits_and_commits_stop_before_it() -> None:
    p, _ = pipeline(Clock())
    await p.on_batch([q(0, 1000), o(0, 5000), o(1, 6000)])
    assert p.commit_offsets()[(TRADES, 0)] == 0
    p.restart(Restart({0: 0}, [0]))
    assert p.held_events() == 0


async def test_records_past_the_next_expected_offset_ask_for_a_seek_back_and_are_not_folded() -> None:
    """A reader that went past a record (a fetch crossing a seek) must read it again: the
    records after the gap wait, and the pipeline names the partition and the offset."""
    p, accounts = pipeline(Clock())
    await p.on_batch([q(0, 1000), q(1, 2000), o(0, 1500), o(2, 1800), o(3, 1900)])
    assert p.take_ahead() == {(TRADES, 0): 1}
    assert p.take_ahead() == {}
    assert p.merge.next_offset((TRADES, 0)) == 1
    await p.on_batch([o(1, 1600), o(2, 1800), o(3, 1900), q(2, 3000)])
    assert p.take_ahead() == {}
    assert accounts.applied_offset("A", 0) == 3
