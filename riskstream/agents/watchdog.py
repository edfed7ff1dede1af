"""Is the worker consuming? What readiness and the exit-on-stall decision are made of.

A surveillance worker that stops consuming while it reports ready is worse than one that
crashes: nothing restarts it. The watchdog compares, on every lag poll, each assigned input
partition's end offset (asked of the broker, not the consumer's cache) with the offsets the
pipeline has processed:

- the broker does not answer: it is down (readiness false, retried);
- an end offset moved backwards: the broker lost its log (a memory-backed broker restarted).
  Offsets, checkpointed state and the committed positions no longer describe the same log, so
  the worker exits non-zero and its supervisor starts it afresh on the new log;
- records wait beyond what was processed and nothing was processed from the partition for
  ``stall_after_s``: the partition is stalled (readiness false); past ``exit_after_s`` the
  worker exits non-zero, since a restart is what clears a consumer stuck inside the client.

Partitions paused on purpose (event-time alignment) are not stalled by themselves; but the
fold is, whatever its partitions say, when it holds events and has released none of them for
``stall_after_s`` (a merge waiting on a partition whose reader does not deliver: measured on a
backlog, a worker stood ready for minutes with every owned partition paused and 48 000 events
held). That counts as a stall too, with the same readiness and exit. The clock is injected.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Health(Generic[P]):
    broker_up: bool
    lag: dict[P, int]
    """Records past the last one processed (or committed, before any was), per partition."""
    stalled: list[P]
    rewound: list[P]
    exit_reason: str | None
    """Set when the worker should exit so that its supervisor restarts it."""
    fold_stalled_s: float | None = None
    """How long the fold has held events without releasing any (None: it is moving)."""


@dataclass(slots=True)
class _Partition:
    processed: int | None = None
    progress_s: float = 0.0


@dataclass
class StreamWatchdog(Generic[P]):
    stall_after_s: float
    exit_after_s: float
    clock: Callable[[], float]
    _partitions: dict[P, _Partition] = field(default_factory=dict)
    _max_end: dict[P, int] = field(default_factory=dict)
    """Greatest end offset seen per partition, kept across rebalances: an end offset is the
    log's, not the assignment's, and a broker restart comes with a rebalance."""
    _broker_down_since_s: float | None = None
    _fold_mark: Hashable = None
    _fold_progress_s: float | None = None

    def observe(
        self,
        ends: Mapping[P, int] | None,
        processed: Mapping[P, int],
        committed: Mapping[P, int | None],
        paused: Iterable[P] = (),
        fold: tuple[int, Hashable] = (0, None),
    ) -> Health[P]:
        """``ends``: end offset per assigned partition, None when the broker did not answer;
        ``processed``: last offset processed; ``committed``: next offset to read as committed;
        ``fold``: the events the fold holds and the key of the last one it released."""
        now = self.clock()
        held_events, mark = fold
        if held_events == 0 or mark != self._fold_mark or self._fold_progress_s is None:
            self._fold_mark, self._fold_progress_s = mark, now
        if ends is None:
            if self._broker_down_since_s is None:
                self._broker_down_since_s = now
            for waiting in self._partitions.values():
                waiting.progress_s = now
            self._fold_progress_s = now
            return Health(False, {}, [], [], None)
        self._broker_down_since_s = None
        for gone in set(self._partitions) - set(ends):
            del self._partitions[gone]
        held = set(paused)
        lag: dict[P, int] = {}
        stalled: list[P] = []
        rewound = self.note_ends(ends)
        for tp, end in ends.items():
            state = self._partitions.get(tp)
            if state is None:
                state = self._partitions[tp] = _Partition(progress_s=now)
            last = processed.get(tp)
            if last != state.processed:
                state.processed, state.progress_s = last, now
            next_offset = last + 1 if last is not None else committed.get(tp) or 0
            lag[tp] = max(0, end - next_offset)
            if lag[tp] == 0 or tp in held:
                state.progress_s = now
            elif now - state.progress_s >= self.stall_after_s:
                stalled.append(tp)
        fold_still_s = now - self._fold_progress_s
        fold_stalled_s = fold_still_s if fold_still_s >= self.stall_after_s else None
        exit_reason = None
        if rewound:
            exit_reason = (
                f"end offsets moved backwards on {sorted(map(str, rewound))}: the broker lost its log"
            )
        elif stalled:
            longest = max(now - self._partitions[tp].progress_s for tp in stalled)
            if longest >= self.exit_after_s:
                exit_reason = (
                    f"{len(stalled)} partitions with records waiting made no progress for {longest:.0f} s"
                )
        if exit_reason is None and fold_stalled_s is not None and fold_stalled_s >= self.exit_after_s:
            exit_reason = f"the fold held {held_events} events and released none for {fold_stalled_s:.0f} s"
        return Health(True, lag, stalled, rewound, exit_reason, fold_stalled_s)

    def note_ends(self, ends: Mapping[P, int]) -> list[P]:
        """Record end offsets; returns the partitions whose end moved backwards (rewound). The
        checkpoint calls it too, so that a worker never writes state or commits offsets of the
        old log into a broker that restarted empty."""
        rewound = [tp for tp, end in ends.items() if end < self._max_end.get(tp, 0)]
        for tp, end in ends.items():
            self._max_end[tp] = max(self._max_end.get(tp, 0), end)
        return rewound

    def forget(self, partitions: Iterable[P]) -> None:
        """Progress of revoked partitions starts afresh; their greatest end offsets stay."""
        for tp in partitions:
            self._partitions.pop(tp, None)
        self._fold_progress_s = None
