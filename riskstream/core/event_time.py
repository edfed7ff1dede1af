"""Event time across input partitions: which events may be folded now, and in which order.

The worker reads many partitions (its share of trade-logs, every partition of market-data) and
must fold their events in one event-time order, the one the backtest merges files in: by event
time, market data before orders at the same time, each partition in its own (offset) order.
As in Flink and Beam, the watermark comes from the data: a partition's watermark is the largest
event time it has delivered, and the smallest event waiting anywhere is released once no
partition can still bring an earlier one:

- a partition with events waiting can't (its next event is one of them, and no earlier than
  the smallest);
- a partition with nothing waiting can't once its watermark is past the event (partitions are
  in event-time order; an event older than its partition's watermark is late and is folded
  when it comes);
- nor can one that has had nothing left to read for ``allowed_lateness_s``: its reader was at
  the broker's end in fetches that many seconds apart (the times are the fetch responses', so
  a reader that has not fetched for a while, a loaded machine, does not make a partition idle),
  the latest of them asked after the event had reached the worker. A fetch answered before
  the event came may have been read off the broker before a record written ahead of the event
  (a quote, then the order that meets it): only the fetch after the next answer is surely
  later, a consumer having one fetch in flight per broker. That answer is waited for
  ``allowed_lateness_s`` at most (:meth:`EventTimeMerge.release`; counted in ``unconfirmed``
  when it does not come). Live traffic on a quiet partition waits about that long, no longer.
  Only a record that reaches the broker more than that after later records of other
  partitions can then be folded out of order; it is counted (``late``).

A partition that has delivered nothing yet and is not at its end holds everything back: a
backlog is folded in event-time order however the fetches interleave, whatever the load.

Pure logic; the caller feeds records, says which partitions are at their end and when a
fetch saw it, carries out the pauses it is given (a partition running far ahead of the release
point is paused so that what waits in memory stays bounded), and commits :meth:`position`.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from riskstream.records.immutable import immutable

P = TypeVar("P", bound=Hashable)
T = TypeVar("T")

MARKET_RANK = 0
ORDER_RANK = 1
"""At the same event time market data is folded before orders (an order meets the quote of its
own instant)."""


@immutable
class Released(Generic[P, T]):
    partition: P
    offset: int
    item: T


@dataclass(slots=True)
class _Source(Generic[T]):
    order: int
    """Tie-break between partitions at the same (event time, rank): fixed per partition."""
    queue: deque[tuple[int, int, int, T, float]] = field(default_factory=deque)
    """(event time, rank, offset, item, arrival time) in offset order."""
    watermark_ns: int = -1
    next_offset: int | None = None
    """Offset after the last one offered."""
    released_to: int | None = None
    """Offset after the last one released (what a checkpoint may commit)."""
    drained_since_s: float | None = None
    """Time of the first fetch of a run of fetches that found the partition at its end."""
    drained_seen_s: float = 0.0
    """Time of the latest fetch of that run."""
    drained_asked_s: float = 0.0
    """No earlier than when the latest fetch of that run was asked: the answer before it."""
    answered_s: float = 0.0
    """Time of the latest fetch answer seen."""


@dataclass(frozen=True, slots=True)
class Pauses(Generic[P]):
    pause: frozenset[P]
    resume: frozenset[P]


class EventTimeMerge(Generic[P, T]):
    def __init__(self, allowed_lateness_s: float, max_skew_ns: int) -> None:
        self.allowed_lateness_s = allowed_lateness_s
        self.max_skew_ns = max_skew_ns
        """How far (event time) a partition may run ahead of the release point before it is
        paused."""
        self._sources: dict[P, _Source[T]] = {}
        self.paused: set[P] = set()
        self.late = 0
        """Events older than their partition's watermark, or folded after an idle wait."""
        self.unconfirmed = 0
        """Events let go past an idle partition whose reader had not answered since they came
        (:meth:`release`'s bound): in order unless that partition's next record precedes them."""
        self.last_key: tuple[int, int, int, int] | None = None
        """(event time, rank, order, offset) of the last event released: every event with a
        smaller key has been released before it."""

    # Inputs ------------------------------------------------------------------------------

    def track(self, partition: P, order: int, start_offset: int | None = None) -> None:
        """Wait for ``partition`` from now on. ``order`` breaks ties between partitions at the
        same event time and rank (the partition number: the same on every worker);
        ``start_offset``: the first offset expected (None: whatever comes first)."""
        if partition in self._sources:
            return
        self._sources[partition] = _Source(order, next_offset=start_offset, released_to=start_offset)

    def clear(self) -> None:
        """Forget every partition and what was released (a fold that starts over)."""
        self._sources.clear()
        self.paused.clear()
        self.last_key = None

    def untrack(self, partitions: Iterable[P]) -> None:
        for partition in partitions:
            self._sources.pop(partition, None)
            self.paused.discard(partition)

    def tracked(self) -> list[P]:
        return list(self._sources)

    def offer(
        self, partition: P, offset: int, ts_ns: int, rank: int, item: T, arrived_s: float = 0.0
    ) -> bool:
        """A record read from ``partition``; False (ignored) for one already offered.
        ``arrived_s``: when it reached the caller, no earlier than the answer of the fetch that
        brought it, on the clock of :meth:`at_end` (0: before every fetch, as in a replay)."""
        source = self._sources[partition]
        if source.next_offset is not None and offset < source.next_offset:
            return False
        if ts_ns < source.watermark_ns:
            self.late += 1
        else:
            source.watermark_ns = ts_ns
            if self.last_key is not None and (ts_ns, rank, source.order, offset) < self.last_key:
                # In order on its partition, but events after it elsewhere went already: its
                # partition was waited for no longer than the allowed lateness.
                self.late += 1
        source.queue.append((ts_ns, rank, offset, item, arrived_s))
        source.next_offset = offset + 1
        if source.released_to is None:
            source.released_to = offset
        source.drained_since_s = None
        return True

    def passed(self, partition: P, offset: int) -> None:
        """A record of ``partition`` that is not an event (undecodable, refused): nothing to
        fold, but the partition's position moves past it once everything before is released."""
        source = self._sources[partition]
        if source.next_offset is not None and offset < source.next_offset:
            return
        source.queue.append((-1, -1, offset, None, 0.0))  # type: ignore[arg-type]
        source.next_offset = offset + 1
        if source.released_to is None:
            source.released_to = offset
        source.drained_since_s = None

    def advance(self, partition: P, offset: int, ts_ns: int) -> None:
        """A source watermark read from ``partition``: its producer sends nothing earlier than
        ``ts_ns`` there any more. The partition stops holding back earlier events of other
        partitions as its next event would, and its position moves past the record."""
        source = self._sources[partition]
        if source.next_offset is not None and offset < source.next_offset:
            return
        self.passed(partition, offset)
        source.watermark_ns = max(source.watermark_ns, ts_ns)

    def at_end(self, partition: P, drained: bool, fetched_s: float) -> None:
        """Whether the reader of ``partition`` has read everything the broker held at its
        latest fetch, answered at ``fetched_s`` (seconds, any clock the caller keeps to)."""
        source = self._sources.get(partition)
        if source is None:
            return
        asked_s: float | None = None
        if fetched_s > source.answered_s:
            asked_s, source.answered_s = source.answered_s, fetched_s
        if not drained:
            source.drained_since_s = None
            return
        if source.drained_since_s is None or fetched_s < source.drained_since_s:
            source.drained_since_s = fetched_s
        source.drained_seen_s = max(source.drained_seen_s, fetched_s)
        if asked_s is not None:
            source.drained_asked_s = asked_s

    def next_offset(self, partition: P) -> int | None:
        source = self._sources.get(partition)
        return None if source is None else source.next_offset

    # Output ------------------------------------------------------------------------------

    def release(self, now_s: float | None = None) -> list[Released[P, T]]:
        """Every event that may be folded now, in the fold's order. ``now_s`` (the clock of
        :meth:`at_end`): an idle partition whose reader has not answered since an event arrived
        holds it back for ``allowed_lateness_s`` at most, as the wait for a fresh answer is
        bounded like any other wait on a quiet partition (a reader that does not fetch it, a
        consumer skipping a node while records of other partitions sit unread); None: until
        the answer comes (a replay, the tests)."""
        out: list[Released[P, T]] = []
        heads: list[tuple[int, int, int, P]] = []
        for partition, source in self._sources.items():
            self._skip_passed(source)
            if source.queue:
                ts, rank, _, _, _ = source.queue[0]
                heads.append((ts, rank, source.order, partition))
        heapq.heapify(heads)
        bound, idle = self._empty_bound()
        while heads:
            ts, rank, _, partition = heads[0]
            if bound is not None and ts >= bound:
                break
            source = self._sources[partition]
            arrived_s = source.queue[0][4]
            if idle and _held_by_idle(ts, arrived_s, idle):
                if now_s is None or now_s - arrived_s < self.allowed_lateness_s:
                    break
                self.unconfirmed += 1
            heapq.heappop(heads)
            _, _, offset, item, _ = source.queue.popleft()
            source.released_to = offset + 1
            out.append(Released(partition, offset, item))
            self.last_key = (ts, rank, source.order, offset)
            self._skip_passed(source)
            if source.queue:
                nts, nrank, _, _, _ = source.queue[0]
                heapq.heappush(heads, (nts, nrank, source.order, partition))
            else:
                bound, idle = self._empty_bound()
        return out

    def _skip_passed(self, source: _Source[T]) -> None:
        while source.queue and source.queue[0][1] < 0:
            source.released_to = source.queue.popleft()[2] + 1

    def _idle(self, source: _Source[T]) -> bool:
        since = source.drained_since_s
        return since is not None and source.drained_seen_s - since >= self.allowed_lateness_s

    def _empty_bound(self) -> tuple[int | None, list[tuple[float, int]]]:
        """Events at or after the first (event time) must wait: a partition with nothing
        waiting could still bring one that goes before them (None: none can). The second: the
        idle partitions, each as (no earlier than when its latest fetch was asked, watermark):
        they hold back events that arrived after that (see :func:`_held_by_idle`)."""
        bound: int | None = None
        idle: list[tuple[float, int]] = []
        for source in self._sources.values():
            if source.queue:
                continue
            if self._idle(source):
                idle.append((source.drained_asked_s, source.watermark_ns))
                continue
            # Its next event is at or after its watermark, and one at the watermark itself may
            # still precede events of that time elsewhere: only earlier ones may go.
            if bound is None or source.watermark_ns < bound:
                bound = source.watermark_ns
        return bound, idle

    def waiting_on(self) -> list[P]:
        """Partitions that hold the earliest waiting event back now (for diagnostics)."""
        heads = [s.queue[0] for s in self._sources.values() if s.queue and s.queue[0][1] >= 0]
        if not heads:
            return []
        ts, _, _, _, arrived_s = min(heads, key=lambda h: (h[0], h[1]))
        return [
            p
            for p, s in self._sources.items()
            if not s.queue and ts >= s.watermark_ns and (not self._idle(s) or s.drained_asked_s < arrived_s)
        ]

    def describe(self) -> dict[str, str]:
        """Each partition as the merge sees it (for diagnostics): events waiting, the first's
        event time, watermark, next offset, and whether it is paused or idle."""
        out: dict[str, str] = {}
        for partition, s in self._sources.items():
            head = s.queue[0][0] if s.queue else None
            flags = "".join((" paused" if partition in self.paused else "", " idle" if self._idle(s) else ""))
            out[str(partition)] = (
                f"{len(s.queue)} waiting, head {head}, watermark {s.watermark_ns},"
                f" next {s.next_offset}{flags}"
            )
        return out

    def position(self, partition: P) -> int | None:
        """Offset a checkpoint may commit for ``partition``: the first record not yet released
        (None: nothing read yet)."""
        source = self._sources.get(partition)
        if source is None:
            return None
        self._skip_passed(source)
        return source.released_to

    def held(self) -> int:
        return sum(len(s.queue) for s in self._sources.values())

    def held_by(self, partition: P) -> int:
        source = self._sources.get(partition)
        return 0 if source is None else len(source.queue)

    def pauses(self) -> Pauses[P]:
        """Partitions to pause (far ahead of the release point) and to resume; the caller must
        carry out both."""
        heads = [s.queue[0][0] for s in self._sources.values() if s.queue and s.queue[0][1] >= 0]
        if not heads:
            resume = frozenset(self.paused)
            self.paused.clear()
            return Pauses(frozenset(), resume)
        ahead_of = min(heads) + self.max_skew_ns
        pause = frozenset(
            p
            for p, s in self._sources.items()
            if p not in self.paused and s.queue and s.watermark_ns > ahead_of
        )
        resume = frozenset(
            p for p in self.paused if p in self._sources and self._sources[p].watermark_ns <= ahead_of
        )
        self.paused |= pause
        self.paused -= resume
        return Pauses(pause, resume)


def _held_by_idle(ts_ns: int, arrived_s: float, idle: list[tuple[float, int]]) -> bool:
    """Whether an idle partition holds back an event of ``ts_ns`` that arrived at
    ``arrived_s``: its latest fetch may have been asked before the event reached the broker,
    and a record written ahead of the event, not yet fetched, may go before it."""
    return any(asked_s < arrived_s and ts_ns >= watermark_ns for asked_s, watermark_ns in idle)
