"""A micro-batch is folded in event-time order across the two topics."""

from __future__ import annotations

from riskstream.agents.pipeline import Orders, Quotes, SourceRecord, event_time_segments
from riskstream.records import OrderEvent, OrderEventType, Quote, Side


def rec(offset: int) -> SourceRecord:
    return SourceRecord("t", 0, offset, None, None)


def q(t: int) -> tuple[SourceRecord, Quote]:
    return rec(t), Quote("AAPL", "X", t, 1.0, 1.1, 1, 1)


def o(t: int, account: str = "A") -> tuple[SourceRecord, OrderEvent]:
    return rec(t), OrderEvent(OrderEventType.NEW, f"o{t}", account, "T", "AAPL", Side.BUY, 1, 1.0, t)


def times(segments: list[tuple[Quotes, Orders]]) -> list[tuple[list[int], list[int]]]:
    return [([e.ts_ns for _, e in qs], [e.ts_ns for _, e in os]) for qs, os in segments]


def test_quotes_go_before_the_orders_at_or_after_their_time() -> None:
    segments = event_time_segments([q(30), q(5), q(10)], [o(1), o(10), o(20), o(40)])
    assert times(segments) == [([], [1]), ([5, 10], [10, 20]), ([30], [40])]


def test_quotes_after_every_order_come_last() -> None:
    assert times(event_time_segments([q(50)], [o(1), o(2)])) == [([], [1, 2]), ([50], [])]


def test_orders_keep_batch_order_even_when_late() -> None:
    segments = event_time_segments([q(15)], [o(20), o(10, "B"), o(30)])
    assert times(segments) == [([15], [20, 10, 30])]


def test_one_topic_only_is_one_segment() -> None:
    assert times(event_time_segments([q(1)], [])) == [([1], [])]
    assert times(event_time_segments([], [o(1)])) == [([], [1])]
