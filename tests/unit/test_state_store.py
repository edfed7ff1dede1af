"""CheckpointedStore over an in-memory table double (a dict standing in for a Faust changelog
table: the real one is exercised by the integration tests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from riskstream.agents.state_store import CheckpointedStore, UnknownEnvelopeError
from riskstream.core.state import AccountState
from riskstream.core.windows import SlidingWindow
from tests.factories import fill, order

SPEC = SlidingWindow.of_seconds(60, 5, 100)


class DictTableDouble:
    """Hand-written double of a changelog table: records what was written to which partition."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.partitions: dict[str, int] = {}
        self.log: list[tuple[int, str]] = []

    def get_raw(self, key: str) -> dict[str, Any] | None:
        value = self.data.get(key)
        return None if value is None else dict(json.loads(value))

    def put_raw(self, key: str, value: bytes, partition: int) -> None:
        self.data[key] = value
        self.partitions[key] = partition
        self.log.append((partition, key))

    def put_marker(self, partition: int) -> None:
        self.log.append((partition, "marker"))

    def keys(self) -> Iterator[str]:
        return iter(self.data)


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
    s.get("A", 0).late_events = 7
    s.mark_applied("A", 0, 1)
    s.get("B", 1).late_events = 9
    s.mark_applied("B", 1, 1)
    s.flush()
    s.get("A", 0).late_events = 99
    s.forget({0})
    assert s.get("A", 0).late_events == 7
    assert s.get("B", 1).late_events == 9


def test_unknown_key_starts_empty_with_no_applied_offset() -> None:
    s = store(DictTableDouble())
    assert s.applied_offset("new", 0) == -1
    assert s.get("new", 0).late_events == 0


def test_seal_ends_each_written_partition_with_a_marker_once() -> None:
    table = DictTableDouble()
    s = store(table)
    for key, partition in (("A", 0), ("B", 2), ("C", 2)):
        s.get(key, partition)
        s.mark_applied(key, partition, 1)
    s.flush()
    s.seal()
    s.seal()
    assert sorted(p for p, k in table.log if k == "marker") == [0, 2]
    last_per_partition = {p: k for p, k in table.log}
    assert last_per_partition == {0: "marker", 2: "marker"}


def test_state_over_the_record_limit_is_reported_not_written_and_others_still_are() -> None:
    table = DictTableDouble()
    reported: list[tuple[str, int]] = []
    s = CheckpointedStore(
        table,
        AccountState.to_bytes,
        AccountState.from_json,
        AccountState,
        max_record_bytes=2_000,
        on_oversize=lambda key, size: reported.append((key, size)),
    )
    big = s.get("BIG", 0)
    for i in range(50):
        big.apply(order("new", f"order-{i:04d}", "buy", 100, 100.0, i), SPEC, 0.1)
    s.mark_applied("BIG", 0, 50)
    s.get("SMALL", 1).late_events = 1
    s.mark_applied("SMALL", 1, 7)
    assert s.flush() == 1
    assert list(table.data) == ["SMALL"]
    assert [key for key, _ in reported] == ["BIG"]
    assert reported[0][1] > 2_000


def test_envelope_carries_version_partition_and_a_cut_that_never_goes_back() -> None:
    table = DictTableDouble()
    s = store(table)
    s.get("A", 3)
    s.mark_applied("A", 3, 7)
    s.flush((10, 1, 3, 7))
    assert json.loads(table.data["A"])["v"] == 1
    fresh = store(table)
    assert [k for k, _ in fresh.load({3})] == ["A"]
    assert fresh.cut("A") == (10, 1, 3, 7)
    fresh.touch("A")
    fresh.flush((5, 0, 0, 1))
    assert tuple(json.loads(table.data["A"])["cut"]) == (10, 1, 3, 7)
    assert store(table).load({0}) == []


def test_a_state_from_a_newer_envelope_version_is_refused() -> None:
    table = DictTableDouble()
    table.data["A"] = b'{"v":99,"off":1,"s":{}}'
    with pytest.raises(UnknownEnvelopeError):
        store(table).get("A", 0)


def _held(s: CheckpointedStore[AccountState], account: str, qty: float, offset: int) -> None:
    state = s.get(account, 0)
    state.apply(order("new", f"{account}-{offset}", "buy", qty, 100.0, offset), SPEC, 0.1)
    state.apply(fill(f"{account}-{offset}", "buy", qty, 100.0, offset), SPEC, 0.1)
    s.mark_applied(account, 0, offset)


def test_a_key_changed_after_its_precopy_is_written_as_it_is_at_the_cut() -> None:
    table = DictTableDouble()
    s = store(table)
    for k in range(40):
        _held(s, f"ACC-{k}", 100, k)
    assert s.precopy(budget_s=1.0) == 0
    assert s.dirty_count == 0
    _held(s, "ACC-7", 50, 100)  # changed again after it was serialized
    assert s.dirty_count == 1
    snapshot = s.snapshot(cut=(9,))
    assert len(snapshot.states) == 40
    assert s.write(snapshot)
    reloaded = store(table)
    assert reloaded.get("ACC-7", 0).positions == {"AAPL": 150}
    assert reloaded.applied_offset("ACC-7", 0) == 100
    assert all(json.loads(table.data[f"ACC-{k}"])["cut"] == [9] for k in range(40))
    assert s.snapshot(cut=(10,)).states == {}


def test_precopy_stops_at_the_first_key_past_its_budget_and_leaves_the_rest_dirty() -> None:
    s = store(DictTableDouble())
    for k in range(100):
        _held(s, f"ACC-{k}", 100, k)
    ticks = iter(range(1000))
    left = s.precopy(budget_s=2.5, clock=lambda: float(next(ticks)))
    assert left == 97
    assert len(s.snapshot().states) == 100


def test_a_revoked_partition_precopied_state_is_not_written() -> None:
    table = DictTableDouble()
    s = store(table)
    _held(s, "ACC-1", 100, 1)
    s.precopy(budget_s=1.0)
    s.forget({0})
    assert s.snapshot().states == {}


def test_an_unwritten_snapshot_with_precopied_keys_is_written_by_the_next() -> None:
    table = DictTableDouble()
    s = store(table)
    _held(s, "ACC-1", 100, 1)
    s.precopy(budget_s=1.0)
    s.unwritten(s.snapshot())
    assert s.flush() == 1
    assert store(table).get("ACC-1", 0).positions == {"AAPL": 100}


def test_a_snapshot_is_written_in_slices_as_it_was_at_its_cut() -> None:
    table = DictTableDouble()
    s = store(table)
    for k in range(10):
        _held(s, f"ACC-{k}", 100, k)
    snapshot = s.snapshot(cut=(5,))
    _held(s, "ACC-3", 50, 100)  # the fold goes on between slices
    ticks = iter(range(1000))
    slices = 1
    while not s.write(snapshot, budget_s=2.5, clock=lambda: float(next(ticks))):
        slices += 1
    assert slices == 4  # three keys a slice
    assert snapshot.written == 10
    assert store(table).get("ACC-3", 0).positions == {"AAPL": 100}
    assert store(table).applied_offset("ACC-3", 0) == 3
    assert all(json.loads(table.data[f"ACC-{k}"])["cut"] == [5] for k in range(10))
    assert s.dirty_count == 1  # ACC-3's later change goes with the next checkpoint
    assert s.flush((6,)) == 1
    assert store(table).get("ACC-3", 0).positions == {"AAPL": 150}


def test_a_rebalance_between_slices_ends_the_snapshots_writing() -> None:
    table = DictTableDouble()
    s = store(table)
    for k in range(10):
        _held(s, f"ACC-{k}", 100, k)
    snapshot = s.snapshot(cut=(5,)).with_markers([("\x00marker", b"{}", 0)])
    ticks = iter(range(1000))
    assert not s.write(snapshot, budget_s=2.5, clock=lambda: float(next(ticks)))
    s.forget({0})
    assert s.write(snapshot)
    # The three keys of the first slice went out; nothing more, not even the marker.
    assert snapshot.written == 3
    assert len(table.data) == 3 and "\x00marker" not in table.data
