"""The account-state table's records on local disk (:mod:`riskstream.agents.table_file`): real
files and Faust's real store registry. The changelog events handed to recovery are hand-written
doubles (``ChangelogEventDouble``: key, value and the message's partition, as Faust's recovery
builds them from a consumer), and so is the clock of the compaction's slices
(``StepClockDouble``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust
import faust.stores
import pytest

from riskstream.agents.state_table import FaustStateTable
from riskstream.agents.table_file import (
    UNKNOWN_PARTITION,
    FileStore,
    RecordFile,
    register_store,
    sweep_files_of_dead_workers,
)
from tests.factories import StepClockDouble


@dataclass
class MessageDouble:
    partition: int
    value: bytes | None


@dataclass
class ChangelogEventDouble:
    key: str
    value: bytes | None
    message: MessageDouble


def changelog(key: str, value: bytes | None, partition: int) -> Any:
    return ChangelogEventDouble(key, value, MessageDouble(partition, value))


def file_store(directory: Path) -> FileStore:
    return FileStore(register_store(), None, None, table_name="account-state", options={"dir": directory})


def test_records_read_back_what_was_written_and_a_new_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "r.records"
    records = RecordFile(path)
    records.put("A", b'{"s":1}', 0)
    records.put("B", b'{"s":2}', 1)
    records.put("A", b'{"s":3}', 0)
    records["C"] = b"{}"
    assert records["A"] == b'{"s":3}' and records.get("Z") is None
    assert sorted(records) == ["A", "B", "C"] and len(records) == 3 and "B" in records
    del records["B"]
    assert "B" not in records and len(records) == 2
    with pytest.raises(KeyError):
        del records["B"]
    files = records.files
    assert files and all(f.exists() for f in files)
    records.close()
    assert not any(f.exists() for f in files)
    records = RecordFile(path)
    assert len(records) == 0


def test_a_record_file_left_behind_is_not_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "r.records"
    first = RecordFile(path)
    first.put("A", b"{}", 0)
    # Killed, not stopped: the file stays.
    assert first.files[0].stat().st_size == 2
    second = RecordFile(path)
    assert list(second) == [] and second.file_bytes == 0


def test_a_file_of_mostly_overwritten_records_is_compacted_in_slices_keeping_every_record(
    tmp_path: Path,
) -> None:
    records = RecordFile(
        tmp_path / "r.records", compact_min_bytes=10_000, compact_slice_s=0.5, clock=StepClockDouble()
    )
    values = {f"ACC-{k:03d}": bytes([k]) * 100 for k in range(50)}
    for _ in range(4):
        for key, value in values.items():
            records.put(key, value, 3)
    records.commit()
    # 20 000 bytes written for 5 000 live ones: the segment is retired and a record moved per
    # slice (this clock spends each slice at once) while the other segment takes the writes.
    assert len(records.files) == 2
    commits = 0
    while len(records.files) == 2:
        records.commit()
        commits += 1
    assert commits == 50, "49 records left to move, one per commit, then the one finding none"
    assert len(records.files) == 1 and records.file_bytes == 5_000
    assert {key: records[key] for key in records} == values
    records.keep_partitions({3})
    assert len(records) == 50


def test_a_record_overwritten_while_its_segment_drains_keeps_its_latest_value(tmp_path: Path) -> None:
    records = RecordFile(
        tmp_path / "r.records", compact_min_bytes=0, compact_slice_s=0.5, clock=StepClockDouble()
    )
    for k in range(10):
        for _ in range(3):
            records.put(f"K{k}", b"old", 0)
    records.put("GONE", b"x", 1)
    records.commit()
    assert len(records.files) == 2
    records.put("K5", b"new", 0)
    del records["GONE"]
    while len(records.files) == 2:
        records.commit()
    assert records["K5"] == b"new" and "GONE" not in records
    assert sorted(records) == [f"K{k}" for k in range(10)]


def test_a_partition_out_of_range_is_refused(tmp_path: Path) -> None:
    records = RecordFile(tmp_path / "r.records")
    with pytest.raises(ValueError, match="out of range"):
        records.put("A", b"x", 1 << 17)


def test_keeping_partitions_drops_the_others_and_keeps_records_of_no_known_partition(
    tmp_path: Path,
) -> None:
    records = RecordFile(tmp_path / "r.records")
    records.put_many([("A", 0, b"a"), ("B", 1, b"b"), ("C", 2, b"c"), ("U", UNKNOWN_PARTITION, b"u")])
    records.keep_partitions({0, 2})
    assert sorted(records) == ["A", "C", "U"]
    records.keep_partitions(set())
    assert sorted(records) == ["U"]


def test_a_faust_table_given_the_store_url_keeps_its_records_in_the_file(tmp_path: Path) -> None:
    assert faust.stores.by_url(register_store()) is FileStore
    app = faust.App("table-file-test", autodiscover=False, web_enabled=False)
    table = app.Table("account-state", store=register_store(), options={"dir": tmp_path})
    assert isinstance(table.data, FileStore)
    assert table.data.records.path.parent == tmp_path


def test_recovery_keeps_the_last_value_of_each_key_and_deletes_emptied_ones(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.apply_changelog_batch(
        [
            changelog("A", b"1", 0),
            changelog("B", b"1", 1),
            changelog("A", b"2", 0),
            changelog("B", None, 1),
            changelog("C", None, 0),
            changelog("C", b"3", 0),
        ],
        to_key=lambda key: key,
        to_value=lambda value: value,
    )
    assert dict(store.records.items()) == {"A": b"2", "C": b"3"}
    store.apply_changelog_batch([changelog("A", None, 0)], lambda k: k, lambda v: v)
    assert dict(store.records.items()) == {"C": b"3"}


def test_after_recovery_the_records_of_partitions_not_assigned_are_dropped(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.apply_changelog_batch(
        [changelog("A", b"1", 0), changelog("B", b"1", 1), changelog("C", b"1", 2)], lambda k: k, lambda v: v
    )
    table = FaustStateTable(type("TableDouble", (), {"data": store})(), lambda: None)  # type: ignore[arg-type,return-value]
    table.put_raw("D", b'{"s":{}}', 1)
    asyncio.run(store.on_recovery_completed({("account-state-changelog", 0)}, set()))  # type: ignore[arg-type]
    assert sorted(store.records) == ["A"]


def test_the_file_is_named_by_process_and_removed_at_stop(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    path = tmp_path / f"riskstream-account-state-{os.getpid()}.records"
    assert store.records.path == path and all(f.exists() for f in store.records.files)
    files = store.records.files
    asyncio.run(store.on_stop())
    assert files and not any(f.exists() for f in files)


def test_the_files_of_killed_workers_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    left = tmp_path / f"riskstream-account-state-{dead_pid}.records.1"
    live = tmp_path / f"riskstream-account-state-{os.getppid()}.records.0"
    other_table = tmp_path / f"riskstream-other-{dead_pid}.records.0"
    for path in (left, live, other_table):
        path.write_bytes(b"")
    assert sweep_files_of_dead_workers(tmp_path, "account-state") == [left]
    assert not left.exists() and live.exists() and other_table.exists()
    file_store(tmp_path)
    assert live.exists()


def test_stored_records_are_not_held_in_the_python_heap(tmp_path: Path) -> None:
    records = RecordFile(tmp_path / "r.records")
    value = b"x" * 1000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for k in range(5000):
            records.put(f"ACC-{k:05d}", value, k % 4)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(records) == 5000 and records["ACC-04321"] == value
    # 5 MB written; a dict of them would hold all of it. The index: its key and place, ≈ 115 B.
    assert held < 5000 * 200
