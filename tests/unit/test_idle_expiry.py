"""Idle accounts held as their stored state only (``stream.account_idle_ttl_s``): the backtest
and the worker raise the same alerts with a time to live of a second as with none."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from riskstream.agents.pipeline import EXPIRY_CHUNK, Expired, Restart, SourceRecord
from riskstream.core.candidates import Candidate
from riskstream.core.expiry import IdleExpiry
from riskstream.core.fold import EventTimeDetector
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.detection import detection_context
from riskstream.records import Category, MarketEvent, OrderEvent
from riskstream.records.codec import NS_PER_S, dumps
from riskstream.settings import Settings
from riskstream.sim.venue import VenueSimulator
from tests.factories import StepClockDouble, context, fill, order, quote
from tests.unit.test_pipeline_faults import ALERTS, MARKET, TRADES, build

START_NS = 1_780_000_000 * NS_PER_S


def test_accounts_come_due_oldest_first_by_event_time_and_a_deferred_one_comes_back() -> None:
    expiry = IdleExpiry(10.0)
    expiry.seen("A", 0)
    expiry.seen("B", 5 * NS_PER_S)
    expiry.seen("A", 6 * NS_PER_S)
    assert expiry.due() == []
    expiry.seen("C", 15_500_000_000)
    assert expiry.due() == ["B"]
    expiry.defer("B")
    expiry.seen("C", 17 * NS_PER_S)
    assert expiry.due() == ["B", "A"]
    expiry.seen("D", 3 * NS_PER_S)  # late: its time does not move the clock back
    assert expiry.now_ns == 17 * NS_PER_S
    assert expiry.due() == []
    assert len(expiry) == 2


def venue_events(typology: Category, seconds: float) -> list[OrderEvent | MarketEvent]:
    sim = VenueSimulator(7, START_NS, typology, 3, 60.0, first_s=60.0)
    end_ns = START_NS + int(seconds * NS_PER_S)
    out: list[OrderEvent | MarketEvent] = []
    for event in sim.events():
        if event.ts_ns > end_ns:
            break
        out.append(event)
    return out


def identity(c: Candidate) -> tuple[Any, ...]:
    entity, evidence = c.entity, c.evidence
    return (c.category, entity.account, entity.symbol, c.event_ns, evidence.order_ids, evidence.features)


def backtest(events: list[OrderEvent | MarketEvent], ttl_s: float | None) -> tuple[list[Candidate], int]:
    settings = Settings()
    detector = EventTimeDetector(
        detection_context(settings, {}), settings.windows.size_ewma_alpha, idle_ttl_s=ttl_s
    )
    found = [c for event in events for c in detector.feed(event)]
    return found + detector.finish(), detector.expired


@pytest.mark.parametrize("typology", [Category.FAT_FINGER, Category.RAMPING, Category.WASH_TRADE])
def test_the_backtest_raises_the_same_alerts_with_idle_accounts_expired_after_1_s(
    typology: Category,
) -> None:
    events = venue_events(typology, 400.0)
    kept, _ = backtest(events, None)
    found, expired = backtest(events, 1.0)
    assert expired > 10
    assert kept
    assert [identity(c) for c in found] == [identity(c) for c in kept]


def test_an_expired_account_comes_back_as_it_was_stored() -> None:
    settings = Settings()
    detector = EventTimeDetector(detection_context(settings, {}), 0.05, idle_ttl_s=1.0)
    for event in venue_events(Category.FAT_FINGER, 200.0):
        detector.feed(event)
        if detector.stored:
            break
    account, stored = next(iter(detector.stored.items()))
    revived = detector.account(account)
    # Equal as JSON: a size first seen as an integer comes back a float of the same value.
    assert revived is not None and orjson.loads(revived.to_bytes()) == orjson.loads(stored)
    assert account not in detector.stored and detector.accounts[account] is revived


LIMITS = RiskLimits(AccountLimits(1e6, 5e7, 5e5, max_loss=5_000))


def held_then_idle_then_a_fall() -> list[OrderEvent | MarketEvent]:
    """A0 buys 1 000 AAPL and goes quiet while B trades on; 20 s later AAPL falls 10 %."""
    events: list[OrderEvent | MarketEvent] = [
        quote(0, 99.995, 100.005),
        order("new", "a", "buy", 1000, 100.0, 1, "A0"),
        fill("a", "buy", 1000, 100.0, 2, "A0"),
    ]
    for i in range(1, 20):
        events.append(order("new", f"b{i}", "buy", 100, 99.0, i * 1000, "B"))
        events.append(order("cancel", f"b{i}", "buy", 100, 99.0, i * 1000 + 10, "B"))
    events.append(quote(20_000, 89.995, 90.005))
    return events


def test_an_expired_holder_is_re_marked_when_its_symbol_falls() -> None:
    *before, fall = held_then_idle_then_a_fall()
    runs = []
    for ttl_s in (1.0, None):
        detector = EventTimeDetector(context(market={}, limits=LIMITS), 0.05, idle_ttl_s=ttl_s)
        assert [c for e in before for c in detector.feed(e)] == []
        assert ("A0" in detector.stored) == (ttl_s is not None)
        runs.append([c for c in detector.feed(fall) + detector.finish()])
    assert [c.category for c in runs[0]] == [Category.LIMIT_BREACH]
    assert [c.alert_id for c in runs[0]] == [c.alert_id for c in runs[1]]


async def test_the_worker_re_marks_an_expired_holder_and_a_restart_holds_it_as_stored() -> None:
    p, send, _ = build(idle_ttl_s=1.0, context=context(market={}, limits=LIMITS))
    records = list(as_source_records(held_then_idle_then_a_fall()))
    await p.on_batch(records[:-1])
    p.accounts.write(p.accounts.snapshot(p.frontier()))
    assert p.expire_idle() == Expired(1, True) and p.accounts.cached("A0") is None
    await p.on_batch(records[-1:])
    await p.drain()
    assert [json.loads(v)["category"] for t, _, v in send.sent if t == ALERTS] == ["limit_breach"]
    assert p.accounts.cached("A0") is not None
    p.accounts.write(p.accounts.snapshot(p.frontier()))
    p.restart(Restart({0: len(records)}, [0]))
    assert p.accounts.resident == 0
    assert p.fold.holders.due("AAPL", 50.0) == ["A0"]


def as_source_records(events: list[OrderEvent | MarketEvent]) -> Iterator[SourceRecord]:
    offsets = {MARKET: -1, TRADES: -1}
    for event in events:
        topic, key = (TRADES, event.account) if isinstance(event, OrderEvent) else (MARKET, event.symbol)
        offsets[topic] += 1
        yield SourceRecord(topic, 0, offsets[topic], key.encode(), dumps(event.to_json()))


async def test_the_worker_raises_the_backtests_alerts_with_accounts_expiring_after_a_second() -> None:
    events = venue_events(Category.FAT_FINGER, 300.0)
    expected = sorted(c.alert_id for c in backtest(events, None)[0])
    p, send, metrics = build(idle_ttl_s=1.0)
    records = list(as_source_records(events))
    expired = 0
    for start in range(0, len(records), 200):
        await p.on_batch(records[start : start + 200])
        # A checkpoint's write, then its sweep (Checkpoint._run).
        p.accounts.write(p.accounts.snapshot(p.frontier()))
        expired += p.expire_idle().accounts
    await p.drain()
    assert expired > 10
    assert metrics.registry.get_sample_value("riskstream_accounts_expired_total") == expired
    published = sorted(json.loads(v)["alert_id"] for topic, _, v in send.sent if topic == ALERTS)
    assert expected and published == expected


def test_at_most_the_limit_come_due_and_the_rest_wait_for_the_next_call() -> None:
    expiry = IdleExpiry(1.0)
    for k in range(5):
        expiry.seen(f"A{k}", k)
    expiry.seen("NOW", 10 * NS_PER_S)
    assert expiry.due(2) == ["A0", "A1"]
    assert expiry.due(2) == ["A2", "A3"]
    assert expiry.due() == ["A4"]


async def test_a_sweep_stops_at_its_budget_and_the_next_one_goes_on_where_it_stopped() -> None:
    accounts = EXPIRY_CHUNK * 2 + 5
    p, _, metrics = build(idle_ttl_s=1.0)
    events: list[OrderEvent | MarketEvent] = [quote(0, 99.9, 100.1)]
    events += [order("new", f"O{k}", "buy", 10, 99.0, 1 + k, account=f"A{k:03d}") for k in range(accounts)]
    events.append(order("new", "LAST", "buy", 10, 99.0, 5_000, account="LATE"))
    await p.on_batch(list(as_source_records(events)))
    p.accounts.write(p.accounts.snapshot(p.frontier()))
    first = p.expire_idle(0.5, StepClockDouble())
    assert first == Expired(EXPIRY_CHUNK, False)
    assert p.accounts.cached("A000") is None and p.accounts.cached(f"A{accounts - 1:03d}") is not None
    rest = p.expire_idle(0.5, StepClockDouble())
    assert rest == Expired(EXPIRY_CHUNK, False)
    assert p.expire_idle() == Expired(5, True)
    assert p.accounts.cached("LATE") is not None and p.accounts.resident == 1
    assert metrics.registry.get_sample_value("riskstream_accounts_expired_total") == accounts


async def test_an_account_changed_since_the_write_is_kept_and_tried_again_at_the_next_sweep() -> None:
    p, _, _ = build(idle_ttl_s=1.0)
    events: list[OrderEvent | MarketEvent] = [quote(0, 99.9, 100.1)]
    events += [order("new", f"O{k}", "buy", 10, 99.0, 1 + k, account=f"A{k:03d}") for k in range(3)]
    events.append(order("new", "LAST", "buy", 10, 99.0, 5_000, account="LATE"))
    await p.on_batch(list(as_source_records(events)))
    p.accounts.write(p.accounts.snapshot(p.frontier()))
    p.accounts.touch("A001")  # a re-mark after the write: its change is not stored yet
    assert p.expire_idle() == Expired(2, True)
    assert p.accounts.cached("A001") is not None
    p.accounts.write(p.accounts.snapshot(p.frontier()))
    assert p.expire_idle() == Expired(1, True) and p.accounts.cached("A001") is None
