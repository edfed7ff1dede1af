"""Event-time sliding windows: a config (:class:`SlidingWindow`), a state (:class:`WindowState`)
and the logic between them (``aggregate`` to add, ``items`` to read the current window).

Time is the events' own: the watermark is the largest event time seen, never the wall clock, so
a replay of yesterday's log gives the same windows as the live stream did.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from riskstream.records.codec import NS_PER_S as NS_PER_S

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    """How far back a window looks, how late an event may be, and how many items it keeps."""

    size_ns: int
    grace_ns: int
    max_items: int

    @classmethod
    def of_seconds(cls, size_s: float, grace_s: float, max_items: int) -> SlidingWindow:
        return cls(int(size_s * NS_PER_S), int(grace_s * NS_PER_S), max_items)


class WindowState(Generic[T]):
    """Items of one key sorted by event time, with the key's watermark."""

    __slots__ = ("_encode", "_items", "watermark_ns")

    def __init__(
        self,
        encode: Callable[[int, T], bytes],
        items: Iterable[tuple[int, T]] = (),
        watermark_ns: int = 0,
    ) -> None:
        self._encode = encode
        self._items: deque[tuple[int, T, bytes]] = deque((ts, it, encode(ts, it)) for ts, it in items)
        """``(event time, item, the item's JSON)``: the JSON is made once when the item enters,
        so a checkpoint joins bytes instead of re-encoding every item of every window every
        time. One deque for both (an empty deque block is about 600 bytes, per account)."""
        self.watermark_ns = watermark_ns

    def aggregate(self, spec: SlidingWindow, ts_ns: int, item: T) -> bool:
        """Add one item; False (and nothing kept) when it is later than the grace allows."""
        if ts_ns < self.watermark_ns - spec.size_ns - spec.grace_ns:
            return False
        items = self._items
        entry = (ts_ns, item, self._encode(ts_ns, item))
        if not items or items[-1][0] <= ts_ns:
            items.append(entry)
        else:
            # Out of order but within grace (rare): insert in place, so items stay sorted by
            # event time and reads can stop at the first item older than what they need.
            pos = len(items) - 1
            while pos > 0 and items[pos - 1][0] > ts_ns:
                pos -= 1
            items.insert(pos, entry)
        if ts_ns > self.watermark_ns:
            self.watermark_ns = ts_ns
        self._evict(spec)
        return True

    def _evict(self, spec: SlidingWindow) -> None:
        cutoff = self.watermark_ns - spec.size_ns - spec.grace_ns
        items = self._items
        while items and (items[0][0] < cutoff or len(items) > spec.max_items):
            items.popleft()

    def items(self, spec: SlidingWindow, end_ns: int | None = None) -> Iterator[tuple[int, T]]:
        """Items with event time in ``(end - size, end]``, end defaulting to the watermark."""
        end = self.watermark_ns if end_ns is None else end_ns
        start = end - spec.size_ns
        for ts_ns, item, _ in self._items:
            if start < ts_ns <= end:
                yield ts_ns, item

    def recent(self, spec: SlidingWindow, span_ns: int, end_ns: int) -> list[tuple[int, T]]:
        """Items in ``(end - span, end]`` (span at most the window), oldest first.

        Scans from the newest item back and stops at the span's start, so a detector that
        needs the last few seconds pays for those seconds, not the whole window.
        """
        start = end_ns - min(span_ns, spec.size_ns)
        out: list[tuple[int, T]] = []
        for ts_ns, item, _ in reversed(self._items):
            if ts_ns <= start:
                break
            if start < ts_ns <= end_ns:
                out.append((ts_ns, item))
        out.reverse()
        return out

    def newest(self) -> tuple[int, T] | None:
        if not self._items:
            return None
        ts_ns, item, _ = self._items[-1]
        return ts_ns, item

    def __len__(self) -> int:
        return len(self._items)

    def to_bytes(self) -> bytes:
        """JSON ``{"w": watermark, "i": [encoded items]}`` from the cached item encodings."""
        return b'{"w":%d,"i":[%s]}' % (self.watermark_ns, b",".join([e[2] for e in self._items]))

    @classmethod
    def from_json(
        cls,
        obj: dict[str, Any],
        encode: Callable[[int, T], bytes],
        item_from_json: Callable[[Any], T],
    ) -> WindowState[T]:
        """Inverse of :meth:`to_bytes` after ``json.loads``; items are ``[ts, item]`` rows."""
        items = ((int(row[0]), item_from_json(row[1])) for row in obj["i"])
        return cls(encode, items, int(obj["w"]))
