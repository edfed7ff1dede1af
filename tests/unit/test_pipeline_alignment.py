"""The pipeline holding events for event-time alignment, without a broker: the sends go to a
hand-written double, the state tables are the in-memory double of ``test_state_store``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.agents.market_replica import MarketReplica, MarketView
from riskstream.agents.pipeline import Pipeline, SourceRecord
from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.alignment import EventTimeAligner
from riskstream.core.state import AccountState, SymbolState
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

    async def __call__(self, topic: str, key: bytes, value: bytes) -> object:
        self.sent.append((topic, key, value))
        return None


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def pipeline(clock: Clock) -> tuple[Pipeline, CheckpointedStore[AccountState]]:
    accounts = CheckpointedStore(
        DictTableDouble(), AccountState.to_bytes, AccountState.from_json, AccountState
    )
    symbols = CheckpointedStore(DictTableDouble(), SymbolState.to_bytes, SymbolState.from_json, SymbolState)
    market = MarketView(symbols, MarketReplica("marker", "symbol-state-changelog", {}))
    metrics = Metrics()
    send = SendDouble()
    p = Pipeline(
        accounts=accounts,
        symbols=symbols,
        context=factory_context(market=market),
        size_alpha=0.1,
        scorer=RuleScorer(),
        alerts=AlertPublisher(send, "risk-alerts", lambda: 0),
        audit=AuditWriter(AuditLog(create_async_engine("sqlite+aiosqlite://")), metrics),
        dead_letters=DeadLetterPublisher(send, "dead-letter"),
        metrics=metrics,
        clock=lambda: 0,
        market_topic=MARKET,
        aligner=EventTimeAligner(max_skew_ns=10**9, idle_after_s=10.0, clock=clock),
    )
    return p, accounts


def q(offset: int, t_ms: float) -> SourceRecord:
    return SourceRecord(MARKET, 0, offset, b"AAPL", dumps(quote(t_ms, 100.0, 100.02).to_json()))


def o(offset: int, t_ms: float) -> SourceRecord:
    event = order("new", f"o{offset}", "buy", 100, 100.0, t_ms, account="A")
    return SourceRecord(TRADES, 0, offset, b"A", dumps(event.to_json()))


async def test_events_ahead_of_another_partition_wait_and_are_not_committed_while_they_wait() -> None:
    p, accounts = pipeline(Clock())
    await p.on_batch([q(0, 1000), q(1, 2000), o(0, 1500), o(1, 5000)])
    assert p.held_events() == 1
    assert accounts.applied_offset("A", 0) == 0
    assert p.commit_offsets() == {(MARKET, 0): 2, (TRADES, 0): 1}

    await p.on_batch([q(2, 6000)])
    assert accounts.applied_offset("A", 0) == 1
    # The quote of 6 s now waits in turn, for the orders to reach 6 s.
    assert p.held_events() == 1
    assert p.commit_offsets() == {(MARKET, 0): 2, (TRADES, 0): 2}


async def test_held_events_go_once_the_partition_they_wait_on_falls_silent() -> None:
    clock = Clock()
    p, accounts = pipeline(clock)
    await p.on_batch([q(0, 1000), o(0, 9000)])
    assert await p.release_due() == []
    assert p.held_events() == 1
    clock.now_s += 11
    await p.release_due()
    assert p.held_events() == 0
    assert accounts.applied_offset("A", 0) == 0


async def test_a_rebalance_drops_what_waits_and_commits_stop_before_it() -> None:
    p, _ = pipeline(Clock())
    await p.on_batch([q(0, 1000), o(0, 5000), o(1, 6000)])
    assert p.commit_offsets()[(TRADES, 0)] == 0
    p.drop_held()
    assert p.held_events() == 0
