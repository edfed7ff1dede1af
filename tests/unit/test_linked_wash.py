"""Wash trades between linked accounts on a lit book (the venue names no counterparty): the
pair is found from the two accounts' fills, in whichever order they arrive, and the owner's
honest trading in the same name is left alone."""

from __future__ import annotations

import itertools

import pytest

from riskstream.core.detectors.linked_wash import LinkedFillBook, linked_fill
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.records import Category, OrderEvent
from riskstream.records.codec import DecodeError, dumps
from riskstream.records.linked_fills import LinkedFill, decode_linked_fill
from tests.factories import MS, T0, context, fill, order, replay

LINKED = RiskLimits(AccountLimits(1e6, 5e7, 5e5), owner_of={"WX-1": "OWNER-W", "WX-2": "OWNER-W"})


def lit_pair(
    buy_ms: float = 45, sell_ms: float = 45, sell_qty: float = 500, sell_px: float = 100.01
) -> list[OrderEvent]:
    """Two linked accounts rest opposite orders a few ms apart; the book matches them."""
    return [
        order("new", "b1", "buy", 500, 100.01, 0, account="WX-1"),
        order("new", "s1", "sell", sell_qty, sell_px, 12, account="WX-2"),
        fill("b1", "buy", 500, 100.01, buy_ms, account="WX-1"),
        fill("s1", "sell", sell_qty, sell_px, sell_ms, account="WX-2"),
    ]


def washes(events: list[OrderEvent], limits: RiskLimits = LINKED) -> list[tuple[str | None, tuple[str, ...]]]:
    found = replay(events, context(limits=limits))
    return sorted(
        (c.entity.account, c.evidence.order_ids) for c in found if c.category is Category.WASH_TRADE
    )


def test_linked_accounts_matched_on_the_lit_book_are_a_wash_for_both() -> None:
    assert washes(lit_pair()) == [("WX-1", ("b1", "s1")), ("WX-2", ("s1", "b1"))]


def test_the_alert_names_the_other_account_and_the_market_terms() -> None:
    found = [c for c in replay(lit_pair(), context(limits=LINKED)) if c.entity.account == "WX-1"]
    (alert,) = found
    assert "WX-2" in alert.evidence.summary and "OWNER-W" in alert.evidence.summary
    assert alert.evidence.features["seconds_apart"] == 0.0
    assert "spread_bps" in alert.evidence.features


def test_the_same_accounts_trading_apart_in_time_size_or_price_are_not_a_wash() -> None:
    assert washes(lit_pair(sell_ms=1045)) == []  # a second apart: two trades, each with others
    assert washes(lit_pair(sell_qty=400)) == []
    assert washes(lit_pair(sell_px=100.30)) == []


def test_unlinked_accounts_crossing_each_other_are_not_a_wash() -> None:
    assert washes(lit_pair(), RiskLimits(AccountLimits(1e6, 5e7, 5e5))) == []


def test_a_venue_cross_that_names_the_counterparty_is_raised_once_per_leg_not_twice() -> None:
    events = [
        order("new", "b1", "buy", 500, 100.01, 0, account="WX-1"),
        order("new", "s1", "sell", 500, 100.01, 12, account="WX-2"),
        fill("b1", "buy", 500, 100.01, 45, account="WX-1", counterparty="WX-2"),
        fill("s1", "sell", 500, 100.01, 45, account="WX-2", counterparty="WX-1"),
    ]
    assert washes(events) == [("WX-1", ("b1",)), ("WX-2", ("s1",))]


def leg(account: str, side: str, ts_ms: float, order_id: str, qty: float = 500) -> LinkedFill:
    event = fill(order_id, side, qty, 100.01, ts_ms, account=account)
    out = linked_fill(event, context(limits=LINKED), 3)
    assert out is not None
    return out


def test_the_book_pairs_the_same_legs_whatever_order_they_arrive_in() -> None:
    legs = [
        leg("WX-1", "buy", 0, "b1"),
        leg("WX-2", "sell", 0, "s1"),
        leg("WX-1", "buy", 800, "b2"),
        leg("WX-2", "sell", 801, "s2"),
        leg("WX-2", "sell", 5000, "s3"),
    ]
    seen = set()
    for arrival in itertools.permutations(legs):
        book = LinkedFillBook(0.01, 0.0005)
        pairs = set()
        for fill_ in arrival:
            other = book.add(fill_)
            if other is not None:
                pairs.add(frozenset((fill_.order_id, other.order_id)))
        seen.add(frozenset(pairs))
    assert seen == {frozenset({frozenset({"b1", "s1"}), frozenset({"b2", "s2"})})}


def test_a_fill_published_twice_pairs_once() -> None:
    book = LinkedFillBook(0.01, 0.0005)
    buy, sell = leg("WX-1", "buy", 0, "b1"), leg("WX-2", "sell", 0, "s1")
    assert book.add(buy) is None
    assert book.add(sell) == buy
    assert book.add(sell) is None
    assert book.add(buy) is None


def test_a_leg_waits_for_its_other_leg_within_the_horizon_only() -> None:
    book = LinkedFillBook(0.01, 0.0005)
    book.add(leg("WX-1", "buy", 0, "b1"))
    book.add(leg("WX-1", "buy", 20 * 60 * 1000, "b-late"))  # 20 minutes on: b1 has gone
    assert book.add(leg("WX-2", "sell", 0, "s1")) is None
    assert book.held() == 2


def test_one_accounts_own_fills_and_unlinked_accounts_make_no_linked_record() -> None:
    ctx = context(limits=LINKED)
    assert linked_fill(fill("x", "buy", 5, 100.0, 0, account="ACC-9"), ctx, 0) is None
    assert linked_fill(fill("x", "buy", 5, 100.0, 0, account="WX-1", counterparty="ACC-9"), ctx, 0) is None
    assert linked_fill(order("new", "x", "buy", 5, 100.0, 0, account="WX-1"), ctx, 0) is None


def test_linked_fill_records_round_trip_and_bad_ones_are_refused() -> None:
    record = leg("WX-1", "buy", 3.5, "b1")
    assert decode_linked_fill(dumps(record.to_json())) == record
    assert record.ts_ns == T0 + int(3.5 * MS)
    for change in ({"partition": -1}, {"partition": True}, {"side": "hold"}, {"qty": 0}):
        with pytest.raises(DecodeError):
            decode_linked_fill(dumps({**record.to_json(), **change}))
