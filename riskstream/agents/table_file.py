"""The account-state table's stored records in a local file instead of the worker's heap.

A Faust table's in-memory store keeps every key's latest changelog value in a dict. The worker
also keeps each account it folds decoded (:class:`~riskstream.agents.state_store.CheckpointedStore`),
so an active account was in memory twice (its decoded state and its last checkpoint's bytes)
and an idle one as its bytes. Here the bytes go to a file on local disk (:class:`RecordFile`):
the heap holds one copy of each active account (the decoded one) and of an idle one only its
place in the file; the operating system's page cache, not the worker, holds what is read often.

The file is a cache of the changelog, never a source: it is created empty at each start and
filled by Faust's changelog recovery as the memory store would be, and removed at stop (a
killed worker's file by the next worker to start in that directory). So a restart, a crash or
a rebalance behaves exactly as with the memory store, and nothing in the file needs to survive
(no fsync).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any, BinaryIO

from faust.stores import STORES, memory
from faust.types import TP, EventT
from yarl import URL

STORE_URL = "riskstream-file://local"
"""The table ``store`` that selects :class:`FileStore` (see :func:`register_store`)."""
UNKNOWN_PARTITION = -1
"""A record written through the mapping interface, which names no partition."""
MAX_PARTITIONS = (1 << 17) - 1


class RecordFile(MutableMapping[str, bytes]):
    """Key → stored bytes in an append-only file, with an index in memory of where each key's
    latest record lies (about 100 bytes a key, against the record's hundreds).

    A write appends (sequential, one system call); a read is one positioned read, served by
    the operating system's page cache when the record is hot. A B-tree file (SQLite was tried)
    rewrites a random page per record: 15 µs per write at 100 000 accounts against about 2 here.
    Overwritten records are garbage: when the file holds more than twice the live bytes (and
    ``compact_min_bytes``), it becomes the old segment, new writes go to a fresh one, and each
    :meth:`commit` moves live records out of the old one for about ``compact_slice_s`` until it
    is empty and removed. Files: ``<path>.0`` and ``<path>.1``.
    """

    def __init__(
        self,
        path: Path,
        compact_min_bytes: int = 64 * 1024 * 1024,
        compact_slice_s: float = 0.005,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.path = path
        self._compact_min_bytes = compact_min_bytes
        self._compact_slice_s = compact_slice_s
        self._clock = clock
        self._index: dict[str, int] = {}
        """key → ((offset << 32 | length) << 17 | partition + 1) << 1 | segment."""
        self._live_bytes = 0
        self._segments: list[BinaryIO | None] = [None, None]
        self._sizes = [0, 0]
        for segment in (0, 1):
            self._segment_path(segment).unlink(missing_ok=True)
        self._current = 0
        self._open(0)
        self._draining: list[str] = []
        """Keys that had a record in the old segment when it was retired, not yet moved."""

    def _segment_path(self, segment: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{segment}")

    def _open(self, segment: int) -> None:
        self._segments[segment] = open(self._segment_path(segment), "w+b", buffering=0)  # noqa: SIM115
        self._sizes[segment] = 0

    @property
    def files(self) -> list[Path]:
        """The segment files on disk now."""
        return [self._segment_path(s) for s in (0, 1) if self._segments[s] is not None]

    @property
    def file_bytes(self) -> int:
        return sum(self._sizes)

    def put(self, key: str, value: bytes, partition: int) -> None:
        if not UNKNOWN_PARTITION <= partition < MAX_PARTITIONS:
            raise ValueError(f"partition {partition} out of range")
        segment = self._current
        handle = self._segments[segment]
        assert handle is not None
        offset = self._sizes[segment]
        handle.write(value)
        self._sizes[segment] = offset + len(value)
        self._drop(self._index.get(key))
        self._index[key] = (((offset << 32 | len(value)) << 17 | partition + 1) << 1) | segment
        self._live_bytes += len(value)

    def _drop(self, packed: int | None) -> None:
        if packed is not None:
            self._live_bytes -= (packed >> 18) & 0xFFFFFFFF

    def _read(self, packed: int) -> bytes:
        handle = self._segments[packed & 1]
        assert handle is not None
        length = (packed >> 18) & 0xFFFFFFFF
        return os.pread(handle.fileno(), length, packed >> 50)

    def commit(self) -> None:
        """End of a checkpoint's writes: the time to retire a segment holding mostly garbage,
        and to move the next slice of live records out of a retired one."""
        if not self._draining and self._segments[1 - self._current] is None:
            size = self._sizes[self._current]
            if size > self._compact_min_bytes and size > 2 * self._live_bytes:
                old = self._current
                self._draining = [key for key, packed in self._index.items() if packed & 1 == old]
                self._current = 1 - old
                self._open(self._current)
        if self._segments[1 - self._current] is not None:
            self._move_live_records()

    def _move_live_records(self) -> None:
        old = 1 - self._current
        deadline = self._clock() + self._compact_slice_s
        draining = self._draining
        while draining:
            key = draining.pop()
            packed = self._index.get(key)
            if packed is not None and packed & 1 == old:
                self.put(key, self._read(packed), ((packed >> 1) & 0x1FFFF) - 1)
                if self._clock() >= deadline:
                    return
        handle = self._segments[old]
        assert handle is not None
        handle.close()
        self._segments[old] = None
        self._sizes[old] = 0
        self._segment_path(old).unlink(missing_ok=True)

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        packed = self._index.get(key)
        return default if packed is None else self._read(packed)

    def put_many(self, records: Iterable[tuple[str, int, bytes]]) -> None:
        """Write ``(key, partition, value)`` records."""
        for key, partition, value in records:
            self.put(key, value, partition)

    def delete_many(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._drop(self._index.pop(key, None))

    def keep_partitions(self, partitions: set[int]) -> None:
        """Drop the records of every other partition (records of no known partition stay)."""
        kept = {p + 1 for p in partitions} | {UNKNOWN_PARTITION + 1}
        gone = [key for key, packed in self._index.items() if (packed >> 1) & 0x1FFFF not in kept]
        self.delete_many(gone)

    def __getitem__(self, key: str) -> bytes:
        return self._read(self._index[key])

    def __setitem__(self, key: str, value: bytes) -> None:
        self.put(key, value, UNKNOWN_PARTITION)

    def __delitem__(self, key: str) -> None:
        self._drop(self._index.pop(key))

    def __contains__(self, key: object) -> bool:
        return key in self._index

    def __iter__(self) -> Iterator[str]:
        # A copy: the caller may write while it iterates.
        return iter(list(self._index))

    def __len__(self) -> int:
        return len(self._index)

    def clear(self) -> None:
        self._index.clear()
        self._live_bytes = 0

    def close(self) -> None:
        for segment, handle in enumerate(self._segments):
            if handle is not None:
                handle.close()
                self._segments[segment] = None
            self._segment_path(segment).unlink(missing_ok=True)


class FileStore(memory.Store[str, bytes]):
    """Faust table store over a :class:`RecordFile`: the memory store's behaviour (recovery,
    deletes by empty value, keys of partitions no longer assigned dropped after recovery) with
    the records on disk, in ``options["dir"]`` (None: the system's temporary directory)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Faust's store sets its options and table name after the service's __post_init__.
        super().__init__(*args, **kwargs)
        wanted = (self.options or {}).get("dir")
        directory = Path(tempfile.gettempdir() if wanted is None else wanted)
        directory.mkdir(parents=True, exist_ok=True)
        sweep_files_of_dead_workers(directory, self.table_name)
        self.data: RecordFile = RecordFile(directory / f"riskstream-{self.table_name}-{os.getpid()}.records")

    @property
    def records(self) -> RecordFile:
        return self.data

    def apply_changelog_batch(
        self,
        batch: Iterable[EventT[Any]],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
    ) -> None:
        written: dict[str, tuple[int, bytes]] = {}
        deleted: set[str] = set()
        for event in batch:
            key = to_key(event.key)
            if event.message.value is None:
                deleted.add(key)
                written.pop(key, None)
            else:
                deleted.discard(key)
                written[key] = (event.message.partition, _as_bytes(to_value(event.value)))
        self.data.delete_many(deleted)
        self.data.put_many((key, partition, value) for key, (partition, value) in written.items())

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        self.data.keep_partitions({partition for _, partition in active_tps})

    def _clear(self) -> None:
        self.data.clear()

    async def on_stop(self) -> None:
        self.data.close()


def sweep_files_of_dead_workers(directory: Path, table_name: str) -> list[Path]:
    """Remove the record files that workers killed before their stop left in ``directory``
    (named by process id; a process id in use now, by anything, keeps its file)."""
    removed = []
    for path in directory.glob(f"riskstream-{table_name}-*.records.*"):
        pid = path.name.removeprefix(f"riskstream-{table_name}-").split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _as_bytes(value: Any) -> bytes:
    """A recovered value as stored bytes (the table's raw value serializer hands back bytes)."""
    if isinstance(value, bytes):
        return value
    return value.encode() if isinstance(value, str) else json.dumps(value).encode()


def register_store() -> str:
    """Make :data:`STORE_URL` name :class:`FileStore` in Faust's store registry (its plugin
    mechanism: the scheme of a table's ``store`` URL picks the class); returns the URL."""
    STORES.aliases[URL(STORE_URL).scheme] = f"{__name__}:{FileStore.__name__}"
    return STORE_URL
