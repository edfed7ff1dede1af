"""Parquet files of the two input topics, with pyarrow.

A file holds one topic's messages as columns named like the JSON fields of its schema, event
time as ``ts`` in epoch nanoseconds (int64). Rows are read in record batches, so memory stays
flat whatever the file size, and each row goes through the same strict decoder as a Kafka
message: a bad row is reported with its reason, exactly as the stream dead-letters it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from riskstream.records import (
    Category,
    DecodeError,
    OrderEvent,
    decode_market_data,
    decode_trade_log,
)
from riskstream.records.market_data import MarketEvent

Kind = Literal["market-data", "trade-logs"]

MARKET_DATA_SCHEMA = pa.schema(
    [
        ("kind", pa.string()),
        ("symbol", pa.string()),
        ("venue", pa.string()),
        ("ts", pa.int64()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("bid", pa.float64()),
        ("ask", pa.float64()),
        ("bid_size", pa.float64()),
        ("ask_size", pa.float64()),
    ]
)
TRADE_LOGS_SCHEMA = pa.schema(
    [
        ("event", pa.string()),
        ("order_id", pa.string()),
        ("account", pa.string()),
        ("trader", pa.string()),
        ("symbol", pa.string()),
        ("side", pa.string()),
        ("qty", pa.float64()),
        ("price", pa.float64()),
        ("last_qty", pa.float64()),
        ("last_px", pa.float64()),
        ("counterparty", pa.string()),
        ("text", pa.string()),
        ("ts", pa.int64()),
    ]
)
SCHEMAS: dict[Kind, pa.Schema] = {"market-data": MARKET_DATA_SCHEMA, "trade-logs": TRADE_LOGS_SCHEMA}
BATCH_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class RejectedRow:
    path: Path
    row: int
    reason: str


def kind_of(path: Path) -> Kind:
    """Which topic a file holds, from its columns."""
    names = set(pq.read_schema(path).names)
    if "event" in names and "order_id" in names:
        return "trade-logs"
    if "kind" in names:
        return "market-data"
    raise ValueError(f"{path}: columns {sorted(names)} are neither market-data nor trade-logs")


def _row(event: OrderEvent | MarketEvent) -> dict[str, Any]:
    body = event.to_json()
    body["ts"] = event.ts_ns
    return body


def write_events(path: Path, events: Iterable[OrderEvent | MarketEvent], kind: Kind) -> int:
    """Write events to ``path`` in row groups of :data:`BATCH_ROWS`; returns the row count."""
    schema = SCHEMAS[kind]
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        chunk: list[dict[str, Any]] = []
        for event in events:
            chunk.append(_row(event))
            if len(chunk) == BATCH_ROWS:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                count += len(chunk)
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
            count += len(chunk)
    return count


def read_rows(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[dict[str, Any]]:
    """Rows as JSON-shaped dicts (null columns dropped), one record batch in memory at a time."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            yield {k: v for k, v in row.items() if v is not None}


@dataclass(frozen=True, slots=True)
class FileEvent:
    ts_ns: int
    kind: Kind
    event: OrderEvent | MarketEvent
    raw: bytes
    """The row as the JSON message the stream would carry (what replay publishes)."""
    key: str


def read_events(path: Path, rejected: list[RejectedRow], batch_rows: int = BATCH_ROWS) -> Iterator[FileEvent]:
    """Decoded events of one file in file order; bad rows go to ``rejected`` with the reason."""
    kind = kind_of(path)
    for i, row in enumerate(read_rows(path, batch_rows)):
        raw = orjson.dumps(row)
        try:
            if kind == "trade-logs":
                order = decode_trade_log(raw)
                yield FileEvent(order.ts_ns, kind, order, raw, order.account)
            else:
                market = decode_market_data(raw)
                yield FileEvent(market.ts_ns, kind, market, raw, market.symbol)
        except DecodeError as exc:
            rejected.append(RejectedRow(path, i, exc.reason))


def merged_events(
    paths: Sequence[Path], rejected: list[RejectedRow], batch_rows: int = BATCH_ROWS
) -> Iterator[FileEvent]:
    """Every file's events in one event-time order (each file sorted by ``ts``, as the simulator
    and exports write them). At equal times market data comes first, as in a micro-batch.
    A file out of order is refused: merging it would silently reorder history."""

    def checked(path: Path) -> Iterator[tuple[int, int, FileEvent]]:
        last = -1
        for ev in read_events(path, rejected, batch_rows):
            if ev.ts_ns < last:
                raise ValueError(f"{path} is not sorted by ts (row with ts {ev.ts_ns} after {last})")
            last = ev.ts_ns
            yield ev.ts_ns, 0 if ev.kind == "market-data" else 1, ev

    for _, _, ev in heapq.merge(*(checked(p) for p in paths), key=lambda t: (t[0], t[1])):
        yield ev


LABELS_SCHEMA = pa.schema(
    [
        ("category", pa.string()),
        ("account", pa.string()),
        ("symbol", pa.string()),
        ("order_ids", pa.list_(pa.string())),
        ("start_ns", pa.int64()),
        ("end_ns", pa.int64()),
    ]
)


def simulate_to_parquet(
    out_dir: Path,
    seed: int,
    rate: float,
    events: int,
    start_ns: int,
    typologies: Sequence[Category] | None = None,
    inject_every_s: float = 4.0,
    first_inject_s: float = 1.0,
) -> dict[str, int]:
    """The simulator's market as files: market_data.parquet, trade_logs.parquet (both sorted by
    event time) and labels.parquet (the injected abuse: the ground truth). ``typologies`` to
    inject in turn (all when None)."""
    from itertools import islice

    from riskstream.sim.market import MarketSimulator

    out_dir.mkdir(parents=True, exist_ok=True)
    sim = MarketSimulator(seed, start_ns, rate, inject_every_s, typologies, first_inject_s)
    orders: list[OrderEvent] = []
    market: list[MarketEvent] = []
    for ev in islice(sim.events(), events):
        if isinstance(ev, OrderEvent):
            orders.append(ev)
        else:
            market.append(ev)
    counts = {
        "market-data": write_events(out_dir / "market_data.parquet", market, "market-data"),
        "trade-logs": write_events(out_dir / "trade_logs.parquet", orders, "trade-logs"),
    }
    labels = [
        {
            "category": lb.category.value,
            "account": lb.account,
            "symbol": lb.symbol,
            "order_ids": list(lb.order_ids),
            "start_ns": lb.start_ns,
            "end_ns": lb.end_ns,
        }
        for lb in sim.labels
    ]
    pq.write_table(pa.Table.from_pylist(labels, schema=LABELS_SCHEMA), out_dir / "labels.parquet")
    counts["labels"] = len(labels)
    return counts
