"""The account-state table's stored records in a local file instead of the worker's heap.

A Faust table's in-memory store keeps every key's latest changelog value in a dict. The worker
also keeps each account it folds decoded (:class:`~riskstream.agents.state_store.CheckpointedStore`),
so an active account was in memory twice (its decoded state and its last checkpoint's bytes)
and an idle one as its bytes. Here the bytes go to a SQLite file on local disk: the heap holds
one copy of each active account (the decoded one) and none of an idle one; the operating
system's page cache, not the worker, holds what is read often.

The file is a cache of the changelog, never a source: it is created empty at each start and
filled by Faust's changelog recovery as the memory store would be, and removed at stop (a
killed worker's file by the next worker to start in that directory). So a
restart, a crash or a rebalance behaves exactly as with the memory store, and nothing in the
file needs to survive (no journal, no fsync).
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

from faust.stores import STORES, memory
from faust.types import TP, EventT
from yarl import URL

_SCHEMA = (
    "CREATE TABLE records (key TEXT PRIMARY KEY, partition INTEGER NOT NULL, value BLOB NOT NULL)"
    " WITHOUT ROWID"
)
STORE_URL = "riskstream-file://local"
"""The table ``store`` that selects :class:`FileStore` (see :func:`register_store`)."""
UNKNOWN_PARTITION = -1
"""A record written through the mapping interface, which names no partition."""


class RecordFile(MutableMapping[str, bytes]):
    """Key → stored bytes in one SQLite file, with the partition each record belongs to."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        # One connection used from the event loop; Faust's recovery runs there too.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # A cache of the changelog: losing the file loses nothing, so no journal and no fsync.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
        self._db.execute(_SCHEMA)

    def put(self, key: str, value: bytes, partition: int) -> None:
        """Written in the transaction :meth:`commit` ends (reads see it at once): one
        transaction per checkpoint instead of one per record."""
        if not self._db.in_transaction:
            self._db.execute("BEGIN")
        self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", (key, partition, value))

    def commit(self) -> None:
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        row = self._db.execute("SELECT value FROM records WHERE key = ?", (key,)).fetchone()
        return default if row is None else bytes(row[0])

    def put_many(self, records: Iterable[tuple[str, int, bytes]]) -> None:
        """Write ``(key, partition, value)`` records in one transaction."""
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", records)

    def delete_many(self, keys: Iterable[str]) -> None:
        with self._transaction():
            self._db.executemany("DELETE FROM records WHERE key = ?", ((k,) for k in keys))

    def keep_partitions(self, partitions: set[int]) -> None:
        """Drop the records of every other partition (records of no known partition stay)."""
        marks = ",".join("?" * len(partitions))
        self._db.execute(
            f"DELETE FROM records WHERE partition != ? AND partition NOT IN ({marks})",
            (UNKNOWN_PARTITION, *sorted(partitions)),
        )

    def _transaction(self) -> _Transaction:
        self.commit()
        return _Transaction(self._db)

    def __getitem__(self, key: str) -> bytes:
        row = self._db.execute("SELECT value FROM records WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return bytes(row[0])

    def __setitem__(self, key: str, value: bytes) -> None:
        self.put(key, value, UNKNOWN_PARTITION)

    def __delitem__(self, key: str) -> None:
        if self._db.execute("DELETE FROM records WHERE key = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._db.execute("SELECT 1 FROM records WHERE key = ?", (key,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        # Fetched whole: the caller may write while it iterates.
        return iter([row[0] for row in self._db.execute("SELECT key FROM records")])

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM records").fetchone()[0])

    def clear(self) -> None:
        self._db.execute("DELETE FROM records")

    def close(self) -> None:
        self.commit()
        self._db.close()
        self.path.unlink(missing_ok=True)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


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
        self.data: RecordFile = RecordFile(directory / f"riskstream-{self.table_name}-{os.getpid()}.sqlite3")

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
    for path in directory.glob(f"riskstream-{table_name}-*.sqlite3"):
        pid = path.name.removeprefix(f"riskstream-{table_name}-").removesuffix(".sqlite3")
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
