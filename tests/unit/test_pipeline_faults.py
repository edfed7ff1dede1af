"""No message stops the stream: arbitrary well-formed input, extreme values included, folds
through the real pipeline without raising, and whatever fails for one event goes to the
dead-letter topic with its reason while the events after it are still surveilled.

The producer is the hand-written double of ``test_pipeline_event_time`` and the state tables the
in-memory double of ``test_state_store``; the decoders, state, detectors, rule scorer and alert
encoding are the real ones (the broker-backed version is ``tests/integration/test_poison.py``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.agents.pipeline import Pipeline, Restart, SourceRecord
from riskstream.agents.state_store import CheckpointedStore
from riskstream.core import surveillance
from riskstream.core.candidates import Candidate
from riskstream.core.detectors import DetectionContext
from riskstream.core.event_time import EventTimeMerge
from riskstream.core.state import AccountState
from riskstream.detection import detection_context
from riskstream.llm import RuleScorer
from riskstream.llm.base import Scorer
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds
from riskstream.records.codec import MAX_TS_NS, NS_PER_S, format_ts
from riskstream.records.plausibility import EventTimeBounds
from riskstream.settings import Settings
from riskstream.sinks import AlertPublisher, AuditLog, AuditWriter, DeadLetterPublisher
from tests.factories import T0
from tests.unit.test_pipeline_event_time import SendDouble
from tests.unit.test_state_store import DictTableDouble

MARKET, TRADES, ALERTS, DLQ = "market-data", "trade-logs", "risk-alerts", "dead-letter"


def build(
    bounds: EventTimeBounds | None = None,
    *,
    scorer: Scorer | None = None,
    scoring_in_flight: int = 0,
    send: SendDouble | None = None,
    idle_ttl_s: float | None = None,
    context: DetectionContext | None = None,
) -> tuple[Pipeline, SendDouble, Metrics]:
    """Every partition is read to its end at once: each event is folded as it comes."""
    accounts = CheckpointedStore(
        DictTableDouble(), AccountState.to_bytes, AccountState.from_json, AccountState
    )
    metrics = Metrics()
    send = send or SendDouble()
    p = Pipeline(
        accounts=accounts,
        context=context or detection_context(Settings(), {}),
        size_alpha=0.05,
        scorer=scorer or RuleScorer(),
        alerts=AlertPublisher(send, ALERTS, lambda: T0),
        audit=AuditWriter(AuditLog(create_async_engine("sqlite+aiosqlite://")), metrics),
        dead_letters=DeadLetterPublisher(send, DLQ),
        metrics=metrics,
        clock=lambda: T0,
        market_topic=MARKET,
        trade_topic=TRADES,
        merge=EventTimeMerge(0.0, 10**18),
        # Every partition at its end, in fetches asked no earlier than the records came.
        at_end=lambda source: (0, 0.0),
        fetch_clock=lambda: 0.0,
        event_time_bounds=bounds,
        scoring_in_flight=scoring_in_flight,
        idle_ttl_s=idle_ttl_s,
    )
    p.restart(Restart({0: 0}, [0]))
    return p, send, metrics


def dead_letters(send: SendDouble) -> list[dict[str, Any]]:
    return [json.loads(v) for topic, _, v in send.sent if topic == DLQ]


def alerts(send: SendDouble) -> list[dict[str, Any]]:
    return [json.loads(v) for topic, _, v in send.sent if topic == ALERTS]


EXTREME_NUMBERS = st.sampled_from(
    [
        0,
        0.0,
        1e-300,
        1e-9,
        1e-8,
        0.5,
        1,
        9.99,
        100.0,
        4.01,
        1e6,
        1e9,
        1.0000001e9,
        1e12,
        1e13,
        1e300,
        -1,
        2**64,
    ]
)
NUMBERS = EXTREME_NUMBERS | st.floats(min_value=1e-8, max_value=1e9) | st.integers(1, 10**6)
TIMESTAMPS = st.one_of(
    st.integers(T0, T0 + 3600 * NS_PER_S),
    st.sampled_from([0, 1, MAX_TS_NS, MAX_TS_NS + 1, 2**64, T0 + 366 * 86400 * NS_PER_S]),
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2262-04-12T00:00:00Z"]),
    st.integers(T0, T0 + 3600 * NS_PER_S).map(format_ts),
)
SYMBOLS = st.sampled_from(["AAPL", "TINY", "BRK.A"])
ACCOUNTS = st.sampled_from(["A1", "A2", "MM"])
ORDER_IDS = st.sampled_from([f"o{i}" for i in range(6)])


@st.composite
def market_message(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"symbol": draw(SYMBOLS), "venue": "XNAS", "ts": draw(TIMESTAMPS)}
    if draw(st.booleans()):
        bid = draw(NUMBERS)
        spread = draw(st.sampled_from([0, 0.0, 1e-8, 0.01, 1.0, 1e6]))
        ask = bid + spread if isinstance(bid, int | float) and bid < 1e300 else bid
        body |= {
            "kind": "quote",
            "bid": bid,
            "ask": ask,
            "bid_size": draw(NUMBERS),
            "ask_size": draw(NUMBERS),
        }
    else:
        body |= {"kind": "trade", "price": draw(NUMBERS), "size": draw(NUMBERS)}
    return body


@st.composite
def order_message(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(st.sampled_from(["new", "new", "replace", "cancel", "fill", "fill", "reject"]))
    body: dict[str, Any] = {
        "event": event,
        "order_id": draw(ORDER_IDS),
        "account": draw(ACCOUNTS),
        "trader": "T",
        "symbol": draw(SYMBOLS),
        "side": draw(st.sampled_from(["buy", "sell"])),
        "qty": draw(NUMBERS),
        "price": draw(st.none() | NUMBERS),
        "ts": draw(TIMESTAMPS),
    }
    if event == "fill":
        body |= {"last_qty": draw(NUMBERS), "last_px": draw(NUMBERS)}
    if draw(st.booleans()):
        body["counterparty"] = draw(ACCOUNTS)
    return body


def as_records(messages: Iterable[tuple[str, dict[str, Any]]], offsets: dict[str, int]) -> list[SourceRecord]:
    out = []
    for topic, body in messages:
        key = body["symbol"] if topic == MARKET else body["account"]
        offset = offsets[topic] = offsets.get(topic, -1) + 1
        out.append(SourceRecord(topic, 0, offset, key.encode(), json.dumps(body).encode()))
    return out


MESSAGE = st.tuples(st.just(MARKET), market_message()) | st.tuples(st.just(TRADES), order_message())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(MESSAGE, min_size=1, max_size=30), min_size=1, max_size=8))
async def test_arbitrary_well_formed_input_never_raises_and_every_refusal_has_a_reason(
    batches: list[list[tuple[str, dict[str, Any]]]],
) -> None:
    p, send, _ = build()
    offsets: dict[str, int] = {}
    total = 0
    for batch in batches:
        records = as_records(batch, offsets)
        total += len(records)
        await p.on_batch(records)
    letters = dead_letters(send)
    assert all(d["reason"] for d in letters)
    assert len({(d["source_topic"], d["offset"]) for d in letters}) <= total
    # The safety net is for bugs: none of these well-formed messages may need it.
    assert [d["reason"] for d in letters if "processing failed" in d["reason"]] == []
    for alert in alerts(send):
        assert alert["score"] == alert["score"]


def order(event: str, oid: str, qty: float, price: float | None, t_s: float, **extra: Any) -> dict[str, Any]:
    return {
        "event": event,
        "order_id": oid,
        "account": "A1",
        "trader": "T",
        "symbol": "AAPL",
        "side": "buy",
        "qty": qty,
        "price": price,
        "ts": format_ts(T0 + int(t_s * NS_PER_S)),
        **extra,
    }


def quote(bid: float, ask: float, t_s: float, size: float = 1000) -> dict[str, Any]:
    return {
        "kind": "quote",
        "symbol": "AAPL",
        "venue": "XNAS",
        "ts": format_ts(T0 + int(t_s * NS_PER_S)),
        "bid": bid,
        "ask": ask,
        "bid_size": size,
        "ask_size": size,
    }


def history_then_fat_finger(t0_s: float = 0.0) -> list[tuple[str, dict[str, Any]]]:
    """A quoted market and 25 ordinary orders (the account's usual size), then one order of
    1000 times that size: a fat finger by any standard."""
    out: list[tuple[str, dict[str, Any]]] = [(MARKET, quote(100.0, 100.02, t0_s))]
    for i in range(25):
        out.append((TRADES, order("new", f"n{i}", 100, 100.0, t0_s + 1 + i * 0.1)))
    out.append((TRADES, order("new", "fat", 100_000, 100.0, t0_s + 4)))
    return out


POISON = [
    (TRADES, order("fill", "p1", 1, 100.0, 0.5, last_qty=1e300, last_px=100.0)),
    (TRADES, order("fill", "p2", 1, 100.0, 0.5, last_qty=1, last_px=1e300)),
    (TRADES, {**order("new", "p3", 1, 100.0, 0), "ts": "9999-12-31T23:59:59Z"}),
    (TRADES, {**order("new", "p4", 1, 100.0, 0), "ts": "0001-01-01T00:00:00Z"}),
    (MARKET, {**quote(100.0, 100.02, 0), "ts": "9999-12-31T23:59:59Z"}),
]


async def test_each_poison_message_is_dead_lettered_and_a_fat_finger_after_it_still_alerts() -> None:
    p, send, _ = build()
    offsets: dict[str, int] = {}
    for message in POISON:
        await p.on_batch(as_records([message], offsets))
    await p.on_batch(as_records(history_then_fat_finger(), offsets))
    letters = dead_letters(send)
    assert len(letters) == len(POISON)
    assert all("processing failed" not in d["reason"] for d in letters)
    assert [a["category"] for a in alerts(send) if "fat" in a["evidence"]["order_ids"]] == ["fat_finger"]


async def test_future_dated_events_do_not_become_the_market_or_move_a_watermark() -> None:
    """A quote dated a year ahead at 10x the price and an order dated a year ahead are refused
    against the worker's clock, so the market and the account's window stay as they were."""
    year_s = 366 * 86400.0
    bounds = EventTimeBounds(60.0, 10 * year_s, lambda: T0 + 3600 * NS_PER_S)
    p, send, _ = build(bounds)
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0))], offsets))
    await p.on_batch(
        as_records(
            [(MARKET, quote(1000.0, 1000.2, year_s)), (TRADES, order("new", "f", 1, 100.0, year_s))], offsets
        )
    )
    await p.on_batch(as_records(history_then_fat_finger(10.0), offsets))
    letters = dead_letters(send)
    assert [d["offset"] for d in letters] == [1, 0]
    assert all("stream.max_event_lead_s" in d["reason"] for d in letters)
    assert p.fold.market["AAPL"].bid == 100.0
    fat = [a for a in alerts(send) if a["category"] == "fat_finger"]
    assert [a["evidence"]["order_ids"] for a in fat] == [["fat"]]


async def test_an_event_whose_detection_raises_is_dead_lettered_and_the_next_still_alerts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A detector bug (here: a stand-in that raises on one order id) costs that event only."""
    real = surveillance.surveil_account

    def surveil_account_raising_on_bug(state: Any, events: Any, ctx: Any, alpha: float) -> Any:
        if any(e.order_id == "bug" for e in events):
            raise ZeroDivisionError("float division by zero")
        return real(state, events, ctx, alpha)

    monkeypatch.setattr("riskstream.core.fold.surveil_account", surveil_account_raising_on_bug)
    p, send, metrics = build()
    offsets: dict[str, int] = {}
    bug = (TRADES, order("new", "bug", 100, 100.0, 0.5))
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), bug], offsets))
    await p.on_batch(as_records(history_then_fat_finger(1.0), offsets))
    (letter,) = dead_letters(send)
    assert letter["offset"] == 0 and letter["source_topic"] == TRADES
    assert base64.b64decode(letter["key_b64"]) == b"A1"
    assert letter["reason"] == "order processing failed: ZeroDivisionError: float division by zero"
    assert metrics.event_failures.labels(TRADES, "order")._value.get() == 1
    assert any(a["evidence"]["order_ids"] == ["fat"] for a in alerts(send))


async def test_a_candidate_that_cannot_be_encoded_dead_letters_its_event_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A detector that puts an infinity into the evidence (a stand-in for such a bug): the alert
    cannot be JSON, so its triggering quote is dead-lettered, and other alerts still go out."""
    real = surveillance.surveil_market

    def surveil_market_with_infinite_feature(state: Any, event: Any, ctx: Any) -> list[Candidate]:
        found: list[Candidate] = real(state, event, ctx)
        if event.bid_size == 7:
            found.append(
                Candidate(
                    Category.MARKET_SHOCK,
                    AlertEntity(None, event.symbol),
                    WindowBounds(event.ts_ns, event.ts_ns),
                    Evidence({"volatility": float("inf")}, (), "inf"),
                    2.0,
                )
            )
        return found

    monkeypatch.setattr("riskstream.core.fold.surveil_market", surveil_market_with_infinite_feature)
    p, send, metrics = build()
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0, size=7))], offsets))
    await p.on_batch(as_records(history_then_fat_finger(1.0), offsets))
    (letter,) = dead_letters(send)
    assert letter["source_topic"] == MARKET and letter["offset"] == 0
    assert letter["reason"].startswith("alert processing failed: ValueError: Out of range float values")
    assert metrics.event_failures.labels(MARKET, "alert")._value.get() == 1
    assert any(a["evidence"]["order_ids"] == ["fat"] for a in alerts(send))
