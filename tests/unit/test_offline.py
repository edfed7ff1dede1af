"""Parquet files of the input topics and the offline backtest (no broker)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskstream.offline.backtest import run_backtest
from riskstream.offline.evaluation import Found, catches
from riskstream.offline.parquet import (
    TRADE_LOGS_SCHEMA,
    RejectedRow,
    merged_events,
    read_events,
    simulate_to_parquet,
    write_events,
)
from riskstream.records import Category, OrderEvent, OrderEventType, Quote, Side
from riskstream.settings import REPO_ROOT, Settings
from riskstream.sim.market import Label

T0 = 1_764_000_000_000_000_000


def order(oid: str, t: int, **kw: object) -> OrderEvent:
    return OrderEvent(OrderEventType.NEW, oid, "ACC-1", "T1", "AAPL", Side.BUY, 100, 10.0, t, **kw)  # type: ignore[arg-type]


def test_events_round_trip_through_parquet(tmp_path: Path) -> None:
    orders = [order(f"o{i}", T0 + i, text="free text" if i == 2 else None) for i in range(5)]
    quotes = [Quote("AAPL", "XNAS", T0 + i, 9.99, 10.01, 500, 700) for i in range(3)]
    write_events(tmp_path / "t.parquet", orders, "trade-logs")
    write_events(tmp_path / "m.parquet", quotes, "market-data")
    rejected: list[RejectedRow] = []
    assert [e.event for e in read_events(tmp_path / "t.parquet", rejected, batch_rows=2)] == orders
    assert [e.event for e in read_events(tmp_path / "m.parquet", rejected)] == quotes
    assert rejected == []


def test_merge_is_event_time_ordered_market_first(tmp_path: Path) -> None:
    write_events(tmp_path / "t.parquet", [order("a", T0 + 5), order("b", T0 + 10)], "trade-logs")
    write_events(
        tmp_path / "m.parquet",
        [Quote("AAPL", "X", T0 + t, 9.9, 10.1, 1, 1) for t in (0, 5, 20)],
        "market-data",
    )
    merged = list(merged_events([tmp_path / "t.parquet", tmp_path / "m.parquet"], []))
    assert [(e.ts_ns - T0, e.kind) for e in merged] == [
        (0, "market-data"),
        (5, "market-data"),
        (5, "trade-logs"),
        (10, "trade-logs"),
        (20, "market-data"),
    ]
    assert merged[2].key == "ACC-1"


def test_bad_rows_are_reported_not_dropped_silently(tmp_path: Path) -> None:
    good = order("ok", T0).to_json() | {"ts": T0}
    fill_without_qty = good | {"event": "fill", "order_id": "bad", "ts": T0 + 1}
    rows = [good, fill_without_qty, good | {"order_id": "ok2", "ts": T0 + 2}]
    pq.write_table(pa.Table.from_pylist(rows, schema=TRADE_LOGS_SCHEMA), tmp_path / "t.parquet")
    rejected: list[RejectedRow] = []
    ids = [e.event.order_id for e in read_events(tmp_path / "t.parquet", rejected)]  # type: ignore[union-attr]
    assert ids == ["ok", "ok2"]
    assert [(r.row, "last_qty" in r.reason) for r in rejected] == [(1, True)]


def test_a_file_out_of_event_time_order_is_refused(tmp_path: Path) -> None:
    write_events(tmp_path / "t.parquet", [order("a", T0 + 10), order("b", T0)], "trade-logs")
    with pytest.raises(ValueError, match="not sorted by ts"):
        list(merged_events([tmp_path / "t.parquet"], []))


BASELINE_TYPOLOGIES = {Category.MARKET_SHOCK, Category.RAMPING}
"""Typologies measured against a symbol's own volatility and volume: cases injected before the
market has warmed up (settings.detectors.shock_warmup_s) are not expected to be caught. Cases
injected in a symbol shocked shortly before meet a raised volatility baseline and may be missed:
every typology must be caught, and nine cases in ten (bench/detection.py measures recall)."""


def test_backtest_finds_the_injected_cases_and_is_reproducible(tmp_path: Path) -> None:
    simulate_to_parquet(tmp_path, seed=3, rate=100, events=30_000, start_ns=T0)
    files = [tmp_path / "market_data.parquet", tmp_path / "trade_logs.parquet"]
    settings = Settings(limits_file=REPO_ROOT / "deploy" / "limits.demo.toml")
    stats = run_backtest(files, tmp_path / "a.parquet", settings, batch_rows=1000)
    again = run_backtest(files, tmp_path / "b.parquet", settings, batch_rows=50_000)
    a, b = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "b.parquet")
    assert a.equals(b)
    assert a.num_rows == stats.alerts == again.alerts
    last_ns = max(pq.read_table(files[0], columns=["ts"]).column("ts").to_pylist())
    warm_ns = T0 + int(settings.detectors.shock_warmup_s * 1e9)
    labels = [
        Label(
            Category(lb["category"]),
            lb["account"],
            lb["symbol"],
            tuple(lb["order_ids"]),
            lb["start_ns"],
            lb["end_ns"],
        )
        for lb in pq.read_table(tmp_path / "labels.parquet").to_pylist()
    ]
    expected = [
        lb
        for lb in labels
        if lb.end_ns < last_ns - 10 * 10**9
        and not (lb.category in BASELINE_TYPOLOGIES and lb.start_ns < warm_ns)
    ]
    assert {lb.category for lb in expected} >= set(Category) - {Category.MARKING_THE_CLOSE}
    found = [
        Found(
            Category(al["category"]),
            al["account"],
            al["symbol"],
            al["event_ns"],
            frozenset(al["order_ids"]),
            al["score"],
        )
        for al in a.to_pylist()
    ]
    missed = [lb for lb in expected if not any(catches(f, lb, True) for f in found)]
    caught = {lb.category for lb in expected if lb not in missed}
    assert caught == {lb.category for lb in expected}, missed
    assert len(missed) <= len(expected) // 10, missed
    assert stats.rejected == []
