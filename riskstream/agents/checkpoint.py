"""The commit protocol: audit rows, then state, then offsets, as one consistent cut.

Under the fold lock, and nothing else there (the fold is between two releases, so state, held
events and the merge's positions describe the same prefix of the event-time order):
1. every dirty account state is serialized with the cut (the key of the last event folded),
   beside each owned partition's market-wide-alert position: a snapshot, kept in memory. Most
   of that serializing is done before, in short slices of the fold lock with the fold going on
   between them (:meth:`~riskstream.agents.state_store.CheckpointedStore.precopy`): at the cut
   only the keys changed since the last slice are left, so the fold's pause does not grow with
   the number of accounts that changed since the last checkpoint;
2. the offsets to commit are the merge's positions: past every folded record, never past a
   held one.
Then, outside the lock while the fold goes on: the scoring of every batch folded by then is
waited for (its alerts published and submitted) and every submitted audit row is written; only
then does the snapshot go to the changelog (a state must never say an event was applied while
that event's alert could still be lost), the producer is flushed, the writes are sealed with a
marker batch, and the offsets are committed. A step that fails commits nothing and leaves the
snapshot's keys dirty for the next checkpoint. A restart therefore replays from a cut whose
state it has, and folds the same events into the same decisions.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from riskstream.agents.pipeline import SHOCKS_MARKER, Pipeline, Source
from riskstream.agents.state_store import CheckpointedStore, StateSnapshot
from riskstream.core.state import AccountState
from riskstream.metrics import Metrics
from riskstream.sinks import AuditWriter

log = logging.getLogger(__name__)

PRECOPY_MAX_SLICES = 400
"""Bounds the pre-copy (400 slices of 5 ms: 2 s) when the fold dirties keys faster than a slice
serializes them; the cut then serializes what is left, in one longer pause."""


@dataclass(frozen=True, slots=True)
class CheckpointIO:
    """What a checkpoint does outside riskstream: flush the producer, commit offsets, and make
    sure the broker still holds the log the worker read (False: skip)."""

    flush_producer: Callable[[], Awaitable[None]]
    commit: Callable[[Mapping[Source, int]], Awaitable[object]]
    same_log: Callable[[], Awaitable[bool]]
    timeout_s: float = 30.0
    """Longest a checkpoint waits on the broker (the scoring tasks' publishes, the producer's
    flush, the offset commit): a broker that goes away mid-checkpoint must not leave every later
    checkpoint waiting behind this one. A checkpoint past it commits nothing and the next one
    tries again."""


class Checkpoint:
    def __init__(
        self,
        pipeline: Pipeline,
        accounts: CheckpointedStore[AccountState],
        audit: AuditWriter,
        io: CheckpointIO,
        fold_lock: asyncio.Lock,
        metrics: Metrics,
        precopy_slice_s: float = 0.005,
    ) -> None:
        """``precopy_slice_s``: the longest the fold waits for one slice of serializing ahead
        of the cut."""
        self._pipeline = pipeline
        self._accounts = accounts
        self._audit = audit
        self._io = io
        self._fold_lock = fold_lock
        self._m = metrics
        self._precopy_slice_s = precopy_slice_s
        self._lock = asyncio.Lock()
        self.started_s: float | None = None
        """Monotonic start of the checkpoint running now (liveness watches it)."""

    async def run(self) -> bool:
        """One checkpoint; True when offsets were committed."""
        self.started_s = time.monotonic()
        try:
            async with self._lock:
                return await self._run()
        finally:
            self.started_s = None

    def write_state(self) -> None:
        """Snapshot and write at once, under the fold lock: the graceful shutdown's last write,
        once the alerts are drained and audited."""
        self._accounts.write(self.snapshot_state())

    def snapshot_state(self) -> StateSnapshot:
        """Step 1, under the fold lock."""
        snapshot = self._accounts.snapshot(self._pipeline.frontier())
        markers = [
            (f"{SHOCKS_MARKER}{partition}", marker, partition)
            for partition, marker in self._pipeline.shock_markers().items()
        ]
        self._m.state_writes.labels("account-state").inc(len(snapshot.states))
        return snapshot.with_markers(markers)

    async def _write(self, snapshot: StateSnapshot) -> None:
        """The snapshot's records built and sent in slices of ``precopy_slice_s``, the fold
        going on between them (each slice stops it as a fold-lock hold would, and is measured
        as one); then, in such slices too, the idle accounts' expiry, which needs the snapshot
        written."""
        written = False
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            if not written:
                written = self._accounts.write(snapshot, self._precopy_slice_s)
                swept = False
            else:
                swept = self._pipeline.expire_idle(self._precopy_slice_s).finished
            self._observe_pause(t0, c0)
            if swept:
                return
            await asyncio.sleep(0)

    async def _bounded(self, step: str, aw: Awaitable[object]) -> bool:
        """Waits at most the timeout; the step itself is not cancelled (a producer flush or an
        offset commit cut off half way would leave the client in a state of its own): it goes
        on, and a late commit is still this checkpoint's, sealed before it."""
        try:
            await asyncio.wait_for(asyncio.shield(aw), self._io.timeout_s)
        except TimeoutError:
            self._m.commit_failures.inc()
            log.warning(
                "checkpoint gave up after %.0f s waiting for %s; nothing committed, the next one retries",
                self._io.timeout_s,
                step,
            )
            return False
        return True

    def _observe_pause(self, t0: float, c0: float) -> None:
        """A hold of the fold lock: its wall time, and the CPU time spent in it (a hold whose
        CPU time is far below its wall time waited for a core, or for the collector)."""
        self._m.stage.labels("checkpoint_pause").observe(time.perf_counter() - t0)
        self._m.stage.labels("checkpoint_pause_cpu").observe(time.thread_time() - c0)

    async def _precopy(self) -> None:
        """Serialize dirty states in slices of the fold lock until one slice empties them (the
        fold then changes only one batch's keys before the cut), or for at most
        ``PRECOPY_MAX_SLICES`` slices when the fold dirties keys faster than a slice encodes."""
        for _ in range(PRECOPY_MAX_SLICES):
            if not self._accounts.dirty_count:
                return
            async with self._fold_lock:
                t0, c0 = time.perf_counter(), time.thread_time()
                left = self._accounts.precopy(self._precopy_slice_s)
                self._observe_pause(t0, c0)
            if not left:
                return
            # The fold, waiting on the lock, folds its next batch before the next slice.
            await asyncio.sleep(0)

    async def _run(self) -> bool:
        # The alerts of everything folded so far, published and audited before the lock is
        # taken: the second wait, after the cut, then has little left to do.
        if not await self._bounded("the alerts being published", self._pipeline.drain()):
            return False
        if not await self._audit.flush():
            # Offsets stay where they are until the audit table holds every alert.
            return False
        if not await self._io.same_log():
            return False
        await self._precopy()
        async with self._fold_lock:
            t0, c0 = time.perf_counter(), time.thread_time()
            snapshot = self.snapshot_state()
            offsets = self._pipeline.commit_offsets()
            self._observe_pause(t0, c0)
        t1 = time.perf_counter()
        # Every batch folded before the cut has its alerts published and audited before the
        # state that says it was folded is written.
        if not await self._bounded("the alerts being published", self._pipeline.drain()) or not (
            await self._audit.flush()
        ):
            self._accounts.unwritten(snapshot)
            return False
        try:
            await self._write(snapshot)
            if not await self._bounded("the producer's flush", self._io.flush_producer()):
                return False
            self._accounts.seal()
            if not await self._bounded("the producer's flush", self._io.flush_producer()):
                return False
            if not await self._bounded("the offset commit", self._io.commit(offsets)):
                return False
        except Exception:
            # Uncommitted offsets are replayed and skipped by state: safe to try next time.
            self._accounts.unwritten(snapshot)
            self._m.commit_failures.inc()
            log.warning("checkpoint commit failed; the next checkpoint retries", exc_info=True)
            return False
        self._m.stage.labels("checkpoint_commit").observe(time.perf_counter() - t1)
        self._m.checkpoints.labels("all").inc()
        return True
