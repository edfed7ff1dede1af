"""Event time across input partitions: which events are safe to process, and which partitions
to hold back.

A consumer catching up on a backlog reads every partition as fast as the broker hands it over,
whatever the event time: fetches return about the same bytes per partition, so trade-logs can
run minutes of event time ahead of market-data, and each order would be checked against a
market minutes old. As in Kafka Streams and Flink, an event is processed only once every
partition still delivering has reached its event time (:meth:`EventTimeAligner.release_limit_ns`),
and a partition that runs more than ``max_skew_ns`` ahead is paused at the consumer, which bounds
what waits in memory.

A partition that the consumer has read to its end (``caught_up``) is not waited for, so live
traffic, where every partition is read to its end within moments, is never held. Nor is a
partition that has delivered nothing for ``idle_after_s`` of wall time: a safety net for a
partition whose end the consumer cannot see.

Pure logic: the caller observes event times and carries out pauses and resumes on its
consumer; the clock is injected so that idleness is testable.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Decision(Generic[P]):
    pause: frozenset[P]
    resume: frozenset[P]


@dataclass(slots=True)
class EventTimeAligner(Generic[P]):
    max_skew_ns: int
    """How far (event time) a partition may run ahead of the release limit before it is paused."""
    idle_after_s: float
    """Wall-clock seconds without a record after which a partition is not waited for."""
    clock: Callable[[], float]
    """Monotonic wall clock, seconds."""
    caught_up: Callable[[P], bool] = lambda partition: False
    """Whether the consumer has seen everything the partition holds now."""
    progress_ns: dict[P, int] = field(default_factory=dict)
    """Largest event time delivered per partition."""
    last_seen_s: dict[P, float] = field(default_factory=dict)
    paused: set[P] = field(default_factory=set)
    """Partitions this aligner holds now."""

    def observe(self, progress: Mapping[P, int]) -> None:
        """Event time reached by the partitions that delivered records just now."""
        now = self.clock()
        for partition, ts_ns in progress.items():
            if ts_ns > self.progress_ns.get(partition, -1):
                self.progress_ns[partition] = ts_ns
            self.last_seen_s[partition] = now

    def release_limit_ns(self) -> int | None:
        """Events at or before this event time can be processed: no partition still delivering
        will bring an earlier one (in its own order). None: nothing to wait for."""
        now = self.clock()
        waiting_on = [
            ts
            for partition, ts in self.progress_ns.items()
            if partition in self.paused
            or (now - self.last_seen_s[partition] <= self.idle_after_s and not self.caught_up(partition))
        ]
        return min(waiting_on) if waiting_on else None

    def decide(self) -> Decision[P]:
        """Partitions to pause and to resume now; the caller must carry out both."""
        limit = self.release_limit_ns()
        if limit is None:
            resume = frozenset(self.paused)
            self.paused.clear()
            self._restart_idle_clock(resume)
            return Decision(frozenset(), resume)
        ahead_of = limit + self.max_skew_ns
        pause = frozenset(p for p, ts in self.progress_ns.items() if ts > ahead_of and p not in self.paused)
        resume = frozenset(p for p in self.paused if self.progress_ns[p] <= ahead_of)
        self.paused |= pause
        self.paused -= resume
        self._restart_idle_clock(resume)
        return Decision(pause, resume)

    def _restart_idle_clock(self, resumed: Iterable[P]) -> None:
        """A resumed partition has been silent because it was held, not because it is caught
        up: it gets a full idle period to deliver again."""
        now = self.clock()
        for partition in resumed:
            self.last_seen_s[partition] = now

    def forget(self, partitions: Iterable[P]) -> None:
        """Partitions this consumer no longer owns (or owns afresh after a rebalance): their
        progress starts over, and the consumer has already dropped any pause on them."""
        for partition in partitions:
            self.progress_ns.pop(partition, None)
            self.last_seen_s.pop(partition, None)
            self.paused.discard(partition)
