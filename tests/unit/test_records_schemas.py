"""Records and schemas/ checked against each other, both ways: what the code writes validates
against the schema, and what the schema admits or rejects the decoder admits or rejects."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from riskstream.core.candidates import Candidate
from riskstream.llm.base import to_alert
from riskstream.llm.rules import assess_by_rules
from riskstream.package_data import schema
from riskstream.records import (
    AlertEntity,
    Category,
    DeadLetter,
    DecodeError,
    Evidence,
    OrderEvent,
    OrderEventType,
    Print,
    Quote,
    RiskAlert,
    Side,
    SourceWatermark,
    WindowBounds,
    decode_market_data,
    decode_market_input,
    decode_trade_input,
    decode_trade_log,
    format_ts,
    parse_ts,
)
from riskstream.records.codec import MAX_TS_NS, PRICE, QUANTITY, dumps
from riskstream.records.linked_fills import LinkedFill, decode_linked_fill

MARKET, TRADES, ALERTS, DLQ = (schema(n) for n in ("market_data", "trade_logs", "risk_alerts", "dead_letter"))
WATERMARK = schema("watermark")
BASE_ORDER_FIELDS = {"event": "new", "order_id": "o", "account": "A", "trader": "t", "symbol": "S"}
ids = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
prices = st.floats(min_value=PRICE.smallest, max_value=PRICE.largest)
quantities = st.floats(min_value=QUANTITY.smallest, max_value=QUANTITY.largest)
sizes = st.just(0.0) | quantities
ts_ns = st.integers(min_value=0, max_value=MAX_TS_NS)


@st.composite
def quotes(draw: st.DrawFn) -> Quote:
    bid = draw(prices)
    ask = min(PRICE.largest, bid + draw(st.floats(min_value=0, max_value=100, allow_nan=False)))
    return Quote(draw(ids), draw(ids), draw(ts_ns), bid, ask, draw(sizes), draw(sizes))


@st.composite
def order_events(draw: st.DrawFn) -> OrderEvent:
    kind = draw(st.sampled_from(OrderEventType))
    is_fill = kind is OrderEventType.FILL
    return OrderEvent(
        kind,
        draw(ids),
        draw(ids),
        draw(ids),
        draw(ids),
        draw(st.sampled_from(Side)),
        draw(quantities),
        draw(st.none() | prices),
        draw(ts_ns),
        draw(quantities) if is_fill else None,
        draw(prices) if is_fill else None,
        draw(st.none() | ids),
        draw(st.none() | st.text(min_size=1, max_size=256)),
    )


@given(quotes())
def test_quote_round_trip_validates(q: Quote) -> None:
    body = q.to_json()
    jsonschema.validate(body, MARKET)
    assert decode_market_data(dumps(body)) == q


@given(st.builds(Print, ids, ids, ts_ns, prices, quantities))
def test_print_round_trip_validates(p: Print) -> None:
    jsonschema.validate(p.to_json(), MARKET)
    assert decode_market_data(dumps(p.to_json())) == p


@given(order_events())
def test_order_event_round_trip_validates(e: OrderEvent) -> None:
    jsonschema.validate(e.to_json(), TRADES)
    assert decode_trade_log(dumps(e.to_json())) == e


@given(ts_ns)
def test_a_watermark_round_trips_on_both_inputs_and_is_no_event_of_either(ts: int) -> None:
    body = SourceWatermark(ts).to_json()
    jsonschema.validate(body, WATERMARK)
    assert decode_trade_input(dumps(body)) == SourceWatermark(ts)
    assert decode_market_input(dumps(body)) == SourceWatermark(ts)
    for event_schema in (TRADES, MARKET):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, event_schema)
    # Integer epoch ns is a watermark too, as it is an event time.
    jsonschema.validate({"watermark": ts}, WATERMARK)
    assert decode_trade_input(dumps({"watermark": ts})) == SourceWatermark(ts)


@given(order_events(), quotes())
def test_events_are_no_watermarks_and_read_as_events_on_the_input_path(e: OrderEvent, q: Quote) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(e.to_json(), WATERMARK)
    assert decode_trade_input(dumps(e.to_json())) == e
    assert decode_market_input(dumps(q.to_json())) == q


@pytest.mark.parametrize(
    "body",
    [
        {"watermark": "yesterday"},
        {"watermark": -1},
        {"watermark": None},
        {"watermark": 5, "account": "A"},
        {"watermark": 5, **BASE_ORDER_FIELDS},
    ],
)
def test_malformed_watermarks_are_refused_by_schema_and_decoder_alike(body: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, WATERMARK)
    with pytest.raises(DecodeError):
        decode_trade_input(dumps(body))
    with pytest.raises(DecodeError):
        decode_market_input(dumps(body))


@given(ts_ns)
def test_timestamps_round_trip(ts: int) -> None:
    assert parse_ts(format_ts(ts)) == ts


@given(ts_ns, st.integers(min_value=0, max_value=10**9 - 1))
def test_timestamps_of_a_second_already_seen_parse_the_same(ts: int, other_ns: int) -> None:
    """The second event of a second takes the cached path: it must agree with the full parse."""
    first = format_ts(ts)
    second = format_ts(ts - ts % 10**9 + other_ns)
    assert parse_ts(first) == ts
    assert parse_ts(second) == ts - ts % 10**9 + other_ns


@pytest.mark.parametrize("fraction", ["12345678x", "\uff1123456789", "1234 5678", "-12345678"])
def test_timestamps_with_a_bad_fraction_are_rejected_after_a_good_one(fraction: str) -> None:
    parse_ts("2026-11-25T10:00:00.123456789Z")
    with pytest.raises(DecodeError, match="not ISO-8601"):
        parse_ts(f"2026-11-25T10:00:00.{fraction}Z")


BASE_ORDER = {
    "event": "new",
    "order_id": "o",
    "account": "A",
    "trader": "t",
    "symbol": "S",
    "side": "buy",
    "qty": 1,
    "price": 10.0,
    "ts": "2026-11-25T10:00:00.5Z",
}
BAD_ORDERS = [
    {"event": "amend"},
    {"side": "long"},
    # Values that are not strings, unhashable ones included (a lookup by value must not raise).
    {"event": ["new"]},
    {"event": {"new": 1}},
    {"event": 1},
    {"side": ["buy"]},
    {"side": None},
    {"event": "NEW"},
    {"qty": 0},
    {"qty": "5"},
    {"price": -1},
    {"ts": "2026-11-25T10:00:00"},
    {"ts": "yesterday"},
    {"ts": -5},
    {"ts": 2**63},
    {"ts": "9999-12-31T23:59:59Z"},
    {"ts": "0001-01-01T00:00:00Z"},
    {"qty": 1e300},
    {"qty": 1e-300},
    {"price": 1e300},
    {"price": 2e9},
    {"event": "fill", "last_qty": 1e300, "last_px": 10.0},
    {"event": "fill", "last_qty": 1, "last_px": 1e300},
    {"account": ""},
    {"account": "x" * 65},
    {"event": "fill"},
    {"event": "fill", "last_qty": 1},
    {"counterparty": ""},
    {"text": "x" * 257},
]


@pytest.mark.parametrize("change", BAD_ORDERS)
def test_schema_and_decoder_reject_the_same_orders(change: dict[str, Any]) -> None:
    body = {**BASE_ORDER, **change}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, TRADES)
    with pytest.raises(DecodeError):
        decode_trade_log(dumps(body))


@pytest.mark.parametrize("missing", ["order_id", "account", "trader", "symbol", "side", "qty", "ts", "event"])
def test_schema_and_decoder_require_the_same_fields(missing: str) -> None:
    body = {k: v for k, v in BASE_ORDER.items() if k != missing}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, TRADES)
    with pytest.raises(DecodeError):
        decode_trade_log(dumps(body))


BASE_QUOTE = {
    "kind": "quote",
    "symbol": "S",
    "venue": "V",
    "ts": 1,
    "bid": 1.0,
    "ask": 1.1,
    "bid_size": 0,
    "ask_size": 5,
}


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "book"},
        {"bid": 0},
        {"bid_size": -1},
        {"ts": 1.5},
        {"symbol": None},
        {"ts": True},
        {"ts": "9999-01-01T00:00:00Z"},
        {"ask": 1e300},
        {"ask_size": 1e300},
        {"bid_size": 1e-300},
    ],
)
def test_schema_and_decoder_reject_the_same_quotes(change: dict[str, Any]) -> None:
    body = {**BASE_QUOTE, **change}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, MARKET)
    with pytest.raises(DecodeError):
        decode_market_data(dumps(body))


def test_crossed_quote_is_rejected_by_decoder() -> None:
    with pytest.raises(DecodeError, match="crossed"):
        decode_market_data(dumps({**BASE_QUOTE, "bid": 2.0, "ask": 1.0}))


@pytest.mark.parametrize("raw", [b"", b"[]", b"\xff\xfe", b"null", b'"x"'])
def test_non_objects_are_decode_errors(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_trade_log(raw)


@given(
    st.sampled_from(Category),
    st.floats(min_value=1, max_value=1e6),
    ts_ns,
    st.lists(ids, min_size=1, max_size=5),
    st.none() | ids,
)
def test_alert_validates_and_round_trips(
    category: Category, strength: float, ts: int, order_ids: list[str], account: str | None
) -> None:
    candidate = Candidate(
        category,
        AlertEntity(account, "S"),
        WindowBounds(ts, ts),
        Evidence({"x": 1.5}, tuple(order_ids), "summary"),
        strength,
    )
    alert = to_alert(candidate, assess_by_rules(candidate), ts + 10).published(ts + 20)
    jsonschema.validate(alert.to_json(), ALERTS)
    assert RiskAlert.from_json(json.loads(dumps(alert.to_json()))) == alert


@given(st.none() | st.binary(), st.none() | st.binary(), st.text(min_size=1), ts_ns)
def test_dead_letter_validates_and_round_trips(
    key: bytes | None, value: bytes | None, reason: str, ts: int
) -> None:
    letter = DeadLetter("trade-logs", 3, 42, key, value, reason, ts)
    jsonschema.validate(letter.to_json(), DLQ)
    assert DeadLetter.from_json(json.loads(dumps(letter.to_json()))) == letter


LINKED = schema("linked_fills")


@given(
    ids,
    ids,
    st.integers(min_value=0, max_value=2**31),
    ids,
    ids,
    st.sampled_from(Side),
    quantities,
    prices,
    ts_ns,
)
def test_linked_fill_validates_and_round_trips(
    owner: str,
    account: str,
    partition: int,
    oid: str,
    symbol: str,
    side: Side,
    qty: float,
    px: float,
    ts: int,
) -> None:
    fill = LinkedFill(owner, account, partition, oid, symbol, side, qty, px, ts)
    jsonschema.validate(fill.to_json(), LINKED)
    assert decode_linked_fill(dumps(fill.to_json())) == fill


@pytest.mark.parametrize(
    "change", [{"partition": -1}, {"side": "short"}, {"qty": 0}, {"price": -1.0}, {"owner": ""}, {"extra": 1}]
)
def test_schema_and_decoder_reject_the_same_linked_fills(change: dict[str, Any]) -> None:
    good = LinkedFill("O", "A", 0, "o1", "AAPL", Side.BUY, 5.0, 10.0, 0).to_json()
    bad = {**good, **change}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, LINKED)
    if "extra" not in change:  # the decoder ignores fields it does not know, as for every topic
        with pytest.raises(DecodeError):
            decode_linked_fill(dumps(bad))
