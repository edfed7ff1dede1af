"""CheckpointedStore over an in-memory table double (a dict standing in for a Faust changelog
table: the real one is exercised by the integration tests)."""

from __future__ import annotations

import json
from typing import Any

from riskstream.agents.state_store import CheckpointedStore, StoreView
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.windows import SlidingWindow
from tests.factories import fill, order

SPEC = SlidingWindow.of_seconds(60, 5, 100)


class DictTableDouble:
    """Hand-written double of a changelog table: records what was written to which partition."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.partitions: dict[str, int] = {}

    def get_raw(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return None if value is None else dict(json.loads(value))

    def put_raw(self, key: str, value: bytes, partition: int) -> None:
        self.data[key] = value
        self.partitions[key] = partition


def store(table: DictTableDouble) -> CheckpointedStore[AccountState]:
    return CheckpointedStore(table, AccountState.to_bytes, AccountState.from_json, AccountState)


def test_flush_writes_dirty_keys_to_their_partition_and_reload_restores() -> None:
    table = DictTableDouble()
    s = store(table)
    state = s.get("ACC-1", 3)
    state.apply(order("new", "o1", "buy", 100, 100.0, 0), SPEC, 0.1)
    state.apply(fill("o1", "buy", 100, 100.0, 5), SPEC, 0.1)
    s.mark_applied("ACC-1", 3, 41)
    assert table.data == {}
    assert s.flush() == 1
    assert table.partitions == {"ACC-1": 3}
    assert s.flush() == 0

    reloaded = store(table)
    assert reloaded.applied_offset("ACC-1", 3) == 41
    assert reloaded.get("ACC-1", 3).positions == {"AAPL": 100}
    assert reloaded.get("ACC-1", 3).to_json() == state.to_json()


def test_forget_drops_cache_of_revoked_partitions_only() -> None:
    table = DictTableDouble()
    s = store(table)
    s.get("A", 0).orders_seen = 7
    s.mark_applied("A", 0, 1)
    s.get("B", 1).orders_seen = 9
    s.mark_applied("B", 1, 1)
    s.flush()
    s.get("A", 0).orders_seen = 99
    s.forget({0})
    assert s.get("A", 0).orders_seen == 7
    assert s.get("B", 1).orders_seen == 9


def test_unknown_key_starts_empty_with_no_applied_offset() -> None:
    s = store(DictTableDouble())
    assert s.applied_offset("new", 0) == -1
    assert s.get("new", 0).orders_seen == 0


def test_store_view_reads_without_creating() -> None:
    table = DictTableDouble()
    symbols: CheckpointedStore[SymbolState] = CheckpointedStore(
        table, SymbolState.to_bytes, SymbolState.from_json, SymbolState
    )
    view = StoreView(symbols)
    assert view.get("AAPL") is None
    symbols.get("AAPL", 0).bid = 10.0
    assert view["AAPL"].bid == 10.0
    assert "MSFT" not in view
