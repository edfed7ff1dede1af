"""Checkpointed per-key state over a changelog-backed table.

The hot path works on live objects in a cache; dirty keys are written to the table's changelog
at a checkpoint, and offsets are committed only after that (see :mod:`riskstream.app`). Each
stored value is a versioned envelope: the source offset of the last event folded into the
state (events redelivered after a crash are recognised and skipped, so state is exactly-once
even though delivery is not), its partition, and the fold's cut when it was written (the key
of the last event folded, see :class:`riskstream.core.event_time.EventTimeMerge`): a restarted
fold knows which quotes' effects the state already holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

S = TypeVar("S")
ENVELOPE_VERSION = 1
"""``{"v": 1, "off": offset, "p": partition, "cut": [...] | null, "s": state}``. Version 0 (no
``v``): ``{"off", "s"}`` only, read as a state with no partition and no cut."""
Cut = tuple[int, ...]


class UnknownEnvelopeError(ValueError):
    """A stored state written by a newer riskstream: refusing it beats misreading it."""


class StateTable(Protocol):
    """The operations the store needs from a changelog-backed table."""

    def get_raw(self, key: str) -> dict[str, Any] | None:
        """The stored envelope, parsed."""

    def put_raw(self, key: str, value: bytes, partition: int) -> None: ...

    def put_marker(self, partition: int) -> None:
        """Append a record that carries no state (see :meth:`CheckpointedStore.seal`)."""

    def keys(self) -> Iterator[str]:
        """Every key the table holds on this worker."""


class _Entry(Generic[S]):
    __slots__ = ("cut", "offset", "partition", "state")

    def __init__(self, state: S, partition: int, offset: int, cut: Cut | None) -> None:
        self.state = state
        self.partition = partition
        self.offset = offset
        self.cut = cut


def _envelope(raw: dict[str, Any]) -> tuple[int, int, Cut | None]:
    version = int(raw.get("v", 0))
    if version > ENVELOPE_VERSION:
        raise UnknownEnvelopeError(f"state envelope version {version} is newer than {ENVELOPE_VERSION}")
    cut = raw.get("cut")
    return int(raw["off"]), int(raw.get("p", -1)), tuple(cut) if cut is not None else None


Staged = tuple[bytes, int, int, Cut | None]
"""A state serialized for its next write: (state bytes, applied offset, partition, the cut its
stored value was written with), all four read at the moment it was serialized."""


class StateSnapshot:
    """Dirty states serialized at one cut. Their stored records (the envelopes) are built and
    sent by :meth:`CheckpointedStore.write`, outside the fold lock and in slices."""

    __slots__ = ("_todo", "cut", "generation", "markers", "states", "written")

    def __init__(
        self,
        states: dict[str, Staged],
        cut: Cut | None,
        generation: int,
        markers: Iterable[tuple[str, bytes, int]] = (),
    ) -> None:
        self.states = states
        self.cut = cut
        self.generation = generation
        """The store's generation when taken: a rebalance in between ends its writing."""
        self.markers = list(markers)
        """Records beside the states: (key, value, partition)."""
        self.written = 0
        """State records sent so far."""
        self._todo: Iterator[tuple[str, Staged]] = iter(states.items())

    def with_markers(self, markers: Iterable[tuple[str, bytes, int]]) -> StateSnapshot:
        return StateSnapshot(self.states, self.cut, self.generation, [*self.markers, *markers])

    def next_state(self) -> tuple[str, Staged] | None:
        return next(self._todo, None)


class CheckpointedStore(Generic[S]):
    def __init__(
        self,
        table: StateTable,
        to_bytes: Callable[[S], bytes],
        from_json: Callable[[Any], S],
        new: Callable[[], S],
        max_record_bytes: int | None = None,
        on_oversize: Callable[[str, int], None] | None = None,
    ) -> None:
        """``max_record_bytes``: the largest record the changelog takes; a larger state is not
        written (its last checkpoint stands) and is reported to ``on_oversize`` with its size,
        instead of failing the producer and with it the worker."""
        self._max_record_bytes = max_record_bytes
        self._on_oversize = on_oversize
        self._table = table
        self._to_bytes = to_bytes
        self._from_json = from_json
        self._new = new
        self._cache: dict[str, _Entry[S]] = {}
        self._dirty: set[str] = set()
        self._staged: dict[str, Staged] = {}
        """Keys serialized ahead of the cut (:meth:`precopy`) and not changed since: the cut's
        snapshot takes their bytes as they are."""
        self._unsealed: set[int] = set()
        self._generation = 0
        """Bumped by :meth:`forget`: a snapshot of an earlier assignment is not written on."""

    def _entry(self, key: str, partition: int) -> _Entry[S]:
        entry = self._cache.get(key)
        if entry is None:
            raw = self._table.get_raw(key)
            if raw is None:
                entry = _Entry(self._new(), partition, -1, None)
            else:
                offset, _, cut = _envelope(raw)
                entry = _Entry(self._from_json(raw["s"]), partition, offset, cut)
            self._cache[key] = entry
        return entry

    def get(self, key: str, partition: int) -> S:
        return self._entry(key, partition).state

    def applied_offset(self, key: str, partition: int) -> int:
        """Source offset of the last event already in this key's state (-1: none)."""
        return self._entry(key, partition).offset

    def cut(self, key: str) -> Cut | None:
        """The fold's cut when this key's state was last written (None: never, or unknown)."""
        entry = self._cache.get(key)
        return None if entry is None else entry.cut

    def mark_applied(self, key: str, partition: int, offset: int) -> None:
        entry = self._entry(key, partition)
        entry.offset = offset
        entry.partition = partition
        self._dirty.add(key)

    def touch(self, key: str) -> None:
        """The cached state changed without an event of its own (a re-mark on a quote)."""
        if key in self._cache:
            self._dirty.add(key)

    def cached(self, key: str) -> S | None:
        """State if this worker has it live in memory."""
        entry = self._cache.get(key)
        return None if entry is None else entry.state

    def raw(self, key: str) -> dict[str, Any] | None:
        """A record of the table that is not a state (a marker), parsed."""
        return self._table.get_raw(key)

    def load(self, partitions: Iterable[int]) -> list[tuple[str, S]]:
        """Every stored state of ``partitions`` into the cache (after a rebalance): the fold
        needs each open position from the first quote on, not only at its account's next
        order. States written before envelopes named their partition are loaded too."""
        wanted = set(partitions)
        out: list[tuple[str, S]] = []
        for key in list(self._table.keys()):
            if key.startswith("\x00") or key in self._cache:
                continue
            raw = self._table.get_raw(key)
            if raw is None:
                continue
            offset, partition, cut = _envelope(raw)
            if partition >= 0 and partition not in wanted:
                continue
            state = self._from_json(raw["s"])
            self._cache[key] = _Entry(state, partition, offset, cut)
            out.append((key, state))
        return out

    def revive(self, key: str, partitions: set[int]) -> S | None:
        """The live state of a key of one of ``partitions``: cached, or read again from the
        table after :meth:`evict` (None: no such key here)."""
        entry = self._cache.get(key)
        if entry is not None:
            return entry.state
        raw = self._table.get_raw(key)
        if raw is None:
            return None
        offset, partition, cut = _envelope(raw)
        if partition not in partitions:
            return None
        entry = self._cache[key] = _Entry(self._from_json(raw["s"]), partition, offset, cut)
        return entry.state

    def evict(self, key: str) -> bool:
        """Drop a key's live state, keeping its stored one (read again at its next use); False
        when its latest changes are not stored yet. Only between checkpoints, or right after a
        snapshot was written: a key serialized into a snapshot not yet written is clean here
        while the table still holds its previous state."""
        if key in self._dirty or key in self._staged or key not in self._cache:
            return False
        del self._cache[key]
        return True

    @property
    def resident(self) -> int:
        """Keys held live on this worker."""
        return len(self._cache)

    def keys(self) -> list[str]:
        """Keys cached on this worker now."""
        return list(self._cache)

    def flush(self, cut: Cut | None = None) -> int:
        """Write every dirty key to the table, with the fold's ``cut``; returns how many were
        written."""
        snapshot = self.snapshot(cut)
        self.write(snapshot)
        return snapshot.written

    @property
    def dirty_count(self) -> int:
        """Keys changed since they were last serialized (what the cut still has to encode)."""
        return len(self._dirty)

    def precopy(self, budget_s: float, clock: Callable[[], float] = time.perf_counter) -> int:
        """Serialize dirty keys for about ``budget_s`` (under the fold lock, between two
        batches) ahead of the cut; returns how many are still dirty.

        Live migration's pre-copy: a key serialized here and changed again before the cut is
        dirty again and serialized anew by :meth:`snapshot`, so the snapshot still holds every
        state as of the cut, while the fold waits only for the few keys changed since the last
        slice instead of every key changed since the last checkpoint.
        """
        deadline = clock() + budget_s
        while self._dirty:
            key = self._dirty.pop()
            self._staged[key] = self._stage(key)
            # After every key: one market maker's state takes milliseconds to encode, so a
            # check every few keys let a slice run to several times its budget.
            if clock() >= deadline:
                break
        return len(self._dirty)

    def _stage(self, key: str) -> Staged:
        entry = self._cache[key]
        return (self._to_bytes(entry.state), entry.offset, entry.partition, entry.cut)

    def snapshot(self, cut: Cut | None = None) -> StateSnapshot:
        """Every changed key's state as of now, with the fold's ``cut`` (under the fold lock:
        what the fold did so far), written later by :meth:`write` once what must be durable
        before it is: the keys still dirty serialized now, the rest as :meth:`precopy`
        serialized them. Nothing else is done per key here, so the fold's pause is the few keys
        changed since the last pre-copy slice."""
        staged, self._staged = self._staged, {}
        for key in self._dirty:
            staged[key] = self._stage(key)
        self._dirty.clear()
        return StateSnapshot(staged, cut, self._generation)

    def write(
        self,
        snapshot: StateSnapshot,
        budget_s: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> bool:
        """Build the snapshot's records and send them to the table, for about ``budget_s``
        (None: all); True once every record is sent, False when called again is needed. Keys
        whose record is too large are reported and left out (their last checkpoint stands).
        A snapshot taken before a rebalance (:meth:`forget`) is not written on: True, with
        what was sent so far."""
        deadline = None if budget_s is None else clock() + budget_s
        # One encoding per distinct cut (nearly always one), not one per key.
        cut_jsons: dict[Cut | None, bytes] = {None: b"null"}
        while snapshot.generation == self._generation:
            item = snapshot.next_state()
            if item is None:
                for key, value, partition in snapshot.markers:
                    self.put_marker(key, value, partition)
                snapshot.markers = []
                return True
            self._write_state(snapshot, *item, cut_jsons)
            if deadline is not None and clock() >= deadline:
                return False
        return True

    def _write_state(
        self, snapshot: StateSnapshot, key: str, staged: Staged, cut_jsons: dict[Cut | None, bytes]
    ) -> None:
        state_bytes, offset, partition, stored_cut = staged
        cut = snapshot.cut
        # A state restored ahead of a fold still replaying up to it holds what its later cut
        # says: the cut never goes back.
        ahead = cut is not None and stored_cut is not None and stored_cut > cut
        entry_cut = stored_cut if ahead else cut
        cut_json = cut_jsons.get(entry_cut)
        if cut_json is None:
            assert entry_cut is not None
            cut_json = cut_jsons[entry_cut] = json.dumps(list(entry_cut)).encode()
        value = b'{"v":%d,"off":%d,"p":%d,"cut":%s,"s":%s}' % (
            ENVELOPE_VERSION,
            offset,
            partition,
            cut_json,
            state_bytes,
        )
        if self._max_record_bytes is not None and len(value) > self._max_record_bytes:
            if self._on_oversize is not None:
                self._on_oversize(key, len(value))
            return
        entry = self._cache.get(key)
        if entry is not None:
            entry.cut = entry_cut
        self._table.put_raw(key, value, partition)
        self._unsealed.add(partition)
        snapshot.written += 1

    def unwritten(self, snapshot: StateSnapshot) -> None:
        """A snapshot that will not be written: its keys are dirty again, so the next
        checkpoint writes them (with what they hold by then)."""
        self._dirty.update(key for key in snapshot.states if key in self._cache)

    def put_marker(self, key: str, value: bytes, partition: int) -> None:
        """A record beside the states (the market-wide alerts' position of a partition)."""
        self._table.put_raw(key, value, partition)
        self._unsealed.add(partition)

    def seal(self) -> None:
        """Close the flushed writes with a marker record per partition written, sent after the
        state records were delivered (a batch of its own).

        Brokers that report the end offset as the base of the last batch (Tansu) make Faust's
        recovery stop before that batch; measured here, a rebalance lost the state of one
        account of four. With a marker as the last batch, only the marker is missed.
        """
        for partition in self._unsealed:
            self._table.put_marker(partition)
        self._unsealed.clear()

    def forget(self, partitions: set[int] | None = None) -> None:
        """Drop cached keys (of some partitions) after a rebalance; the table stays the truth."""
        self._generation += 1
        if partitions is None:
            self._cache.clear()
            self._dirty.clear()
            self._staged.clear()
            return
        for key in [k for k, e in self._cache.items() if e.partition in partitions]:
            del self._cache[key]
            self._dirty.discard(key)
            self._staged.pop(key, None)
