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
from riskstream.records import SourceWatermark
from riskstream.records.codec import dumps
from riskstream.records.plausibility import EventTimeBounds
from riskstream.sinks import AlertPublisher, AuditLog, AuditWriter, DeadLetterPublisher, LinkedFillPublisher
from tests.factories import MS, T0, order, quote
from tests.factories import context as factory_context
from tests.unit.test_state_store import DictTableDouble

MARKET, TRADES, LINKED = "market-data", "trade-logs", "linked-fills"


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
        self.answered_s: dict[tuple[str, int], float] = {}
        """A partition's latest answer, where it is not the clock's time."""
        self.clock = clock

    def __call__(self, source: tuple[str, int]) -> tuple[int, float] | None:
        end = self.end.get(source)
        return None if end is None else (end, self.answered_s.get(source, self.clock()))


def pipeline(
    clock: Clock,
    ends: Ends | None = None,
    lateness_s: float = 10.0,
    partitions: int = 1,
    send: SendDouble | None = None,
    bounds: EventTimeBounds | None = None,
    reread_after_s: float | None = None,
    linked: bool = False,
) -> tuple[Pipeline, CheckpointedStore[AccountState]]:
    """A pipeline owning trade-logs partitions 0.. and reading market-data partitions 0..,
    restarted from offset 0, as after a first assignment."""
    accounts = CheckpointedStore(
        DictTableDouble(), AccountState.to_bytes, AccountState.from_json, AccountState
    )
    metrics = Metrics()
    send = send or SendDouble()
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
        fetch_clock=clock,
        event_time_bounds=bounds,
        reread_after_s=reread_after_s,
        linked_fills=LinkedFillPublisher(send, LINKED) if linked else None,
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


def mark(topic: str, offset: int, t_ms: float) -> SourceRecord:
    """A producer's watermark on partition 0 of ``topic``: unkeyed."""
    return SourceRecord(topic, 0, offset, None, dumps(SourceWatermark(T0 + int(t_ms * MS)).to_json()))


async def test_a_watermark_on_a_quiet_partition_releases_what_waits_for_it_without_the_clock() -> None:
    """The order of 9 s waits for market data past 9 s; a producer's watermark says none
    earlier will come, so it goes at once, the clock never moving and no partition at its end."""
    clock = Clock()
    p, accounts = pipeline(clock, Ends(clock), lateness_s=0.25)
    await p.on_batch([q(0, 1000), o(0, 9000)])
    assert p.held_events() == 1
    await p.on_batch([mark(MARKET, 1, 8000)])
    assert p.held_events() == 1
    await p.on_batch([mark(MARKET, 2, 9500)])
    assert p.held_events() == 0
    assert accounts.applied_offset("A", 0) == 0
    # Watermarks are records of the input, not events: positions pass them, counts leave them out.
    assert p.commit_offsets() == {(TRADES, 0): 1}
    assert p.merge.position((MARKET, 0)) == 3
    consumed = p._m.events_consumed.labels(MARKET)._value.get()
    assert consumed == 1
    assert p._m.source_watermarks.labels(MARKET)._value.get() == 2


async def test_the_same_records_give_the_same_alerts_with_and_without_watermarks() -> None:
    """Watermarks change when events are folded, never the order: the alerts are equal."""
    orders = [
        order("new", f"o{i}", "buy", 10_000 * (i + 1), 100.0 + i, 1000 + 100 * i, account="A")
        for i in range(30)
    ]
    quotes = [quote(1000 + 97 * i, 100.0 + i, 100.02 + i) for i in range(30)]

    async def alerts(with_marks: bool) -> list[bytes]:
        send = SendDouble()
        clock = Clock()
        ends = Ends(clock)
        p, _ = pipeline(clock, ends, lateness_s=0.25, send=send)
        m_off = t_off = 0
        for i in range(30):
            batch = [SourceRecord(MARKET, 0, m_off, b"AAPL", dumps(quotes[i].to_json()))]
            m_off += 1
            batch.append(SourceRecord(TRADES, 0, t_off, b"A", dumps(orders[i].to_json())))
            t_off += 1
            if with_marks:
                batch.append(mark(MARKET, m_off, 1000 + 100 * i))
                batch.append(mark(TRADES, t_off, 1000 + 100 * i))
                m_off += 1
                t_off += 1
            await p.on_batch(batch)
        ends.end[(MARKET, 0)] = m_off
        ends.end[(TRADES, 0)] = t_off
        await p.on_batch([])
        clock.now_s += 1
        await p.on_batch([])
        await p.drain()
        assert p.held_events() == 0
        return [v for topic, _, v in send.sent if topic == "risk-alerts"]

    without = await alerts(False)
    assert without
    assert await alerts(True) == without


async def test_an_implausible_watermark_is_dead_lettered_and_moves_nothing() -> None:
    """A watermark a day ahead of the clock would make every later event of its partition late."""
    send = SendDouble()
    now_ns = 10**18
    bounds = EventTimeBounds(60.0, 0.0, lambda: now_ns)
    p, _ = pipeline(Clock(), send=send, bounds=bounds)
    await p.on_batch([mark(MARKET, 0, (now_ns - T0) / MS + 86_400_000)])
    letters = [v for topic, _, v in send.sent if topic == "dead-letter"]
    assert len(letters) == 1
    assert b"ahead of the worker's clock" in letters[0]
    assert p.merge.describe()[str((MARKET, 0))].startswith("0 waiting, head None, watermark -1")
    assert p.merge.position((MARKET, 0)) == 1


async def test_an_order_meets_a_quote_written_before_it_that_an_idle_partition_has_not_fetched_yet() -> None:
    """The quote is written, then the order; the order's fetch is answered first. The market
    partition has been idle for long, but its latest fetch may have been read off the broker
    before the quote was written: the order waits for a fetch asked after it arrived, and meets
    the quote (a fat finger, 30 % through it)."""
    send = SendDouble()
    clock = Clock()
    ends = Ends(clock)
    p, _ = pipeline(clock, ends, lateness_s=0.25, send=send)
    await p.on_batch(
        [
            q(0, 1000),
            SourceRecord(
                TRADES, 0, 0, b"A", dumps(order("new", "o0", "buy", 100, 100.0, 1000, account="A").to_json())
            ),
        ]
    )
    ends.end[(MARKET, 0)] = 1
    ends.end[(TRADES, 0)] = 1
    for _ in range(5):
        clock.now_s += 0.1
        await p.on_batch([])
    assert p.held_events() == 0

    # The market's latest answer came just before the order; the one after it, just after
    # the order, was asked before the order came: neither has the quote.
    ends.answered_s[(MARKET, 0)] = clock.now_s + 0.005
    clock.now_s += 0.01
    fat = order("new", "ff", "buy", 100, 130.0, 60_000, account="A")
    await p.on_batch([SourceRecord(TRADES, 0, 1, b"A", dumps(fat.to_json()))])
    assert p.held_events() == 1
    ends.answered_s[(MARKET, 0)] = clock.now_s + 0.005
    clock.now_s += 0.01
    await p.on_batch([])
    assert p.held_events() == 1
    assert p.merge.waiting_on() == [(MARKET, 0)]
    # The next fetch was asked after that answer: it brings the quote.
    del ends.answered_s[(MARKET, 0)]
    clock.now_s += 0.01
    ends.end[(MARKET, 0)] = 2
    await p.on_batch([SourceRecord(MARKET, 0, 1, b"AAPL", dumps(quote(59_000, 100.0, 100.02).to_json()))])
    # The quote goes; the order then waits out the allowed lateness on the quiet market.
    assert p.merge.describe()[str((MARKET, 0))].startswith("0 waiting")
    for _ in range(4):
        clock.now_s += 0.1
        await p.on_batch([])
    await p.drain()
    assert p.held_events() == 0
    assert p.merge.late == 0
    alerts = [v for topic, _, v in send.sent if topic == "risk-alerts"]
    assert any(b'"ff"' in v and b"fat_finger" in v for v in alerts), alerts
