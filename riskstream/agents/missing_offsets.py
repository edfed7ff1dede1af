"""When a jump in a partition's offsets means the records are gone, not missed.

The merge takes each partition's offsets in sequence; a record past the next expected offset
sends the reader back to it (:meth:`Pipeline.take_ahead`), since a fetch that crossed a seek
delivers such records once. A broker that no longer has the expected offset answers past it
every time: a topic's retention deleted it (the embedded demo keeps 30 s of market data, a
Kafka cluster its ``retention.ms``), and every restart of the fold reads market data again from
offset 0. Sought back for ever, the worker stood still: a worker started 12 s after the first
quotes on a broker keeping 2 s sought back 77 988 times in a minute and folded nothing.

A jump seen again in ``after`` different deliveries with no progress between is suspected:
the worker asks the broker where the partition's log starts (ListOffsets earliest), and only a
log that starts past the offset expected makes the reader go on from its first record
(:meth:`riskstream.agents.pipeline.Pipeline.take_suspected`). Deliveries alone cannot tell: after
a restart on a backlog, records fetched before the seek back keep coming for as many deliveries
as they fill (CI lost 447 records of a partition so, skipped as deleted). Pure: deliveries are
numbered by the caller.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)

SEEN_IN_DELIVERIES = 3
"""Deliveries that must answer past the same expected offset before the broker is asked where
the log starts."""


@dataclass(slots=True)
class _Jump:
    expected: int
    delivery: int
    seen: int


class MissingOffsets(Generic[P]):
    def __init__(self, after: int = SEEN_IN_DELIVERIES) -> None:
        self.after = after
        self._jumps: dict[P, _Jump] = {}

    def gone(self, partition: P, expected: int, delivery: int) -> bool:
        """A record of ``partition`` past ``expected`` came in delivery number ``delivery``:
        True when the records from ``expected`` up to it may be gone (ask the broker)."""
        jump = self._jumps.get(partition)
        if jump is None or jump.expected != expected:
            jump = self._jumps[partition] = _Jump(expected, delivery, 1)
        elif jump.delivery != delivery:
            jump.delivery = delivery
            jump.seen += 1
        if jump.seen >= self.after:
            del self._jumps[partition]
            return True
        return False

    def clear(self) -> None:
        self._jumps.clear()
