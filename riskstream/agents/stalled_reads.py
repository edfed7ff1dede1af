"""Which partitions to read again because their records stopped reaching the fold.

A record leaves the Kafka client (its position moves past it) long before the fold has it: it
crosses Faust's fetcher thread, the drain, the stream buffer and the agent's batch, or the
market feed's delivery. A rebalance, a seek that crosses a fetch in flight, or a fold that
starts over can drop it on the way. When a later record of the partition arrives, the merge
sees the gap and the reader is sought back (:meth:`Pipeline.take_ahead`); when none does, the
fold waits for the dropped records for good. That happened in CI at the end of the crash test's
input: after the fourth restart trade-logs[1] had 177 records the fold never received, its
reader was at the end, and the worker held 1 912 events behind it until the test gave up.

The rule is the reader's own evidence: its latest fetch saw the partition's end past the offset
the fold expects next, the merge is not holding the partition, and that offset has not moved
for ``after_s``. Then the partition is read again from that offset. A record that was only
slow (a loaded machine, a long fold) arrives twice and the second copy is passed over as
already read; a lost one arrives at last. Pure: the clock is passed in.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(slots=True)
class _Waiting:
    expected: int
    since_s: float


class StalledReads(Generic[P]):
    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._waiting: dict[P, _Waiting] = {}
        self.rereads = 0
        """Partitions read again so far."""

    def due(self, partitions: Iterable[tuple[P, int | None, int | None]], now_s: float) -> dict[P, int]:
        """``(partition, next offset the fold expects, end offset its reader's latest fetch
        saw)`` for every partition the merge is not holding; returns the partitions to read
        again, each with the offset to read it from. A partition is read again at most once
        every ``after_s`` while it stays stalled."""
        due: dict[P, int] = {}
        behind: set[P] = set()
        for partition, expected, end in partitions:
            if expected is None or end is None or expected >= end:
                continue
            behind.add(partition)
            waiting = self._waiting.get(partition)
            if waiting is None or waiting.expected != expected:
                self._waiting[partition] = _Waiting(expected, now_s)
            elif now_s - waiting.since_s >= self.after_s:
                due[partition] = expected
                waiting.since_s = now_s
        for caught_up in set(self._waiting) - behind:
            del self._waiting[caught_up]
        self.rereads += len(due)
        return due

    def clear(self) -> None:
        """Forget every partition (a fold that starts over)."""
        self._waiting.clear()
