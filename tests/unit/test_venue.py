"""The second benchmark generator (riskstream.sim.venue): deterministic, time-ordered, labelled,
and made of names and participants of different character."""

from __future__ import annotations

import itertools
import statistics
from collections import defaultdict

import pytest

from riskstream.records import Category, OrderEvent, OrderEventType, Quote
from riskstream.records.codec import NS_PER_S
from riskstream.records.market_data import MarketEvent
from riskstream.sim.market import CLOSE
from riskstream.sim.venue import INJECTED, LINKED_ACCOUNTS, VenueSimulator

START_NS = 1_764_000_000 * NS_PER_S


def _run(
    seed: int, typology: Category | None, span_s: float, cases: int = 2, start_ns: int = START_NS
) -> tuple[VenueSimulator, list[OrderEvent | MarketEvent]]:
    sim = VenueSimulator(seed, start_ns, typology, cases, every_s=30.0, first_s=20.0)
    end = start_ns + int(span_s * NS_PER_S)
    events = list(itertools.takewhile(lambda e: e.ts_ns <= end, sim.events()))
    return sim, events


def test_the_same_seed_gives_the_same_market_and_another_seed_another() -> None:
    _, a = _run(3, Category.SPOOFING, 60)
    _, b = _run(3, Category.SPOOFING, 60)
    _, c = _run(4, Category.SPOOFING, 60)
    assert a == b
    assert a != c


def test_events_come_in_event_time_order() -> None:
    _, events = _run(5, Category.LAYERING, 90)
    times = [e.ts_ns for e in events]
    assert times == sorted(times)


@pytest.mark.parametrize("typology", INJECTED)
def test_every_typology_is_injected_in_order_and_labelled_with_orders_that_exist(typology: Category) -> None:
    start = START_NS
    if typology is Category.MARKING_THE_CLOSE:
        start = CLOSE.next_close_ns(START_NS) - 60 * NS_PER_S
    span_s = 420.0 if typology is Category.RAMPING else 100.0
    sim, events = _run(11, typology, span_s, cases=1, start_ns=start)
    times = [e.ts_ns for e in events]
    assert times == sorted(times)
    labels = [lb for lb in sim.labels if lb.category is typology]
    assert labels, f"no {typology.value} label"
    order_ids = {e.order_id for e in events if isinstance(e, OrderEvent)}
    for label in labels:
        assert label.start_ns <= label.end_ns
        assert set(label.order_ids) <= order_ids
        assert (label.account is None) == (typology is Category.MARKET_SHOCK)


def test_names_differ_in_price_and_relative_spread() -> None:
    _, events = _run(7, None, 60)
    spread_bps: dict[str, list[float]] = defaultdict(list)
    mids: dict[str, list[float]] = defaultdict(list)
    for e in events:
        if isinstance(e, Quote):
            mid = (e.bid + e.ask) / 2
            spread_bps[e.symbol].append((e.ask - e.bid) / mid * 1e4)
            mids[e.symbol].append(mid)
    widest = max(statistics.median(v) for v in spread_bps.values())
    tightest = min(statistics.median(v) for v in spread_bps.values())
    assert widest > 10 * tightest
    prices = [statistics.median(v) for v in mids.values()]
    assert max(prices) > 100 * min(prices)


def test_market_makers_cancel_nearly_all_their_orders() -> None:
    _, events = _run(8, None, 120)
    new = sum(
        1
        for e in events
        if isinstance(e, OrderEvent) and e.account == "LP-A" and e.event is OrderEventType.NEW
    )
    cancelled = sum(
        1
        for e in events
        if isinstance(e, OrderEvent) and e.account == "LP-A" and e.event is OrderEventType.CANCEL
    )
    assert new > 100
    assert cancelled / new >= 0.95


def test_linked_accounts_wash_on_the_lit_book_without_a_named_counterparty() -> None:
    found_lit = False
    for seed in range(12):
        _, events = _run(seed, Category.WASH_TRADE, 140, cases=4)
        fills = [
            e
            for e in events
            if isinstance(e, OrderEvent) and e.event is OrderEventType.FILL and e.account in LINKED_ACCOUNTS
        ]
        for a, b in itertools.combinations(fills, 2):
            if (
                a.account != b.account
                and a.side is b.side.opposite
                and a.last_px == b.last_px
                and a.ts_ns == b.ts_ns
                and a.counterparty is None
                and b.counterparty is None
            ):
                found_lit = True
        if found_lit:
            break
    assert found_lit
