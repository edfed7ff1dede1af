"""Event-time sliding windows: a config (:class:`SlidingWindow`), a state (:class:`WindowState`)
and the logic between them (``aggregate`` to add, ``items`` to read the current window).

Time is the events' own: the watermark is the largest event time seen, never the wall clock, so
a replay of yesterday's log gives the same windows as the live stream did.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from riskstream.records.codec import NS_PER_S as NS_PER_S

T = TypeVar("T")
Entry = tuple[int, T, bytes]

SMALL_WINDOW_ITEMS = 32
"""Up to this many items a window is a list, beyond it a deque (see ``WindowState._items``)."""


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

    __slots__ = ("_by_key", "_encode", "_items", "_key_of", "watermark_ns")

    def __init__(
        self,
        encode: Callable[[int, T], bytes],
        items: Iterable[tuple[int, T]] = (),
        watermark_ns: int = 0,
    ) -> None:
        self._encode = encode
        self._items: list[Entry[T]] | deque[Entry[T]] = [(ts, it, encode(ts, it)) for ts, it in items]
        """``(event time, item, the item's JSON)``: the JSON is made once when the item enters,
        so a checkpoint joins bytes instead of re-encoding every item of every window every
        time. A list while the window is small, a deque past :data:`SMALL_WINDOW_ITEMS`: a
        deque's first block is about 700 bytes, most of a quiet account's resident state, and
        dropping the oldest of a few items from a list's front costs nothing."""
        self._grow()
        self.watermark_ns = watermark_ns
        self._key_of: Callable[[T], Hashable] | None = None
        self._by_key: dict[Hashable, deque[tuple[int, T, bytes]]] | None = None
        """The window's entries of each key a reader asked for (:meth:`recent_of`), in the
        window's order: built on the first read of a key, then kept in step with every add and
        eviction. Memory only, never encoded: an account that never asks costs a pointer."""

    def aggregate(self, spec: SlidingWindow, ts_ns: int, item: T) -> bool:
        """Add one item; False (and nothing kept) when it is later than the grace allows."""
        if ts_ns < self.watermark_ns - spec.size_ns - spec.grace_ns:
            return False
        items = self._items
        entry = (ts_ns, item, self._encode(ts_ns, item))
        _insert_sorted(items, entry)
        if len(items) > SMALL_WINDOW_ITEMS and isinstance(items, list):
            self._grow()
        if self._by_key is not None:
            assert self._key_of is not None
            indexed = self._by_key.get(self._key_of(item))
            if indexed is not None:
                _insert_sorted(indexed, entry)
        if ts_ns > self.watermark_ns:
            self.watermark_ns = ts_ns
        self._evict(spec)
        return True

    def _grow(self) -> None:
        if len(self._items) > SMALL_WINDOW_ITEMS and isinstance(self._items, list):
            self._items = deque(self._items)

    def _evict(self, spec: SlidingWindow) -> None:
        cutoff = self.watermark_ns - spec.size_ns - spec.grace_ns
        items = self._items
        by_key = self._by_key
        while items and (items[0][0] < cutoff or len(items) > spec.max_items):
            entry = items.popleft() if isinstance(items, deque) else items.pop(0)
            if by_key is not None:
                assert self._key_of is not None
                key = self._key_of(entry[1])
                indexed = by_key.get(key)
                if indexed is not None:
                    # The oldest of its key too: both deques hold the window's order.
                    if indexed and indexed[0] is entry:
                        indexed.popleft()
                    else:
                        del by_key[key]
                    if not indexed:
                        by_key.pop(key, None)

    def recent_of(
        self, spec: SlidingWindow, span_ns: int, end_ns: int, key_of: Callable[[T], Hashable], key: Hashable
    ) -> list[tuple[int, T]]:
        """:meth:`recent` of the items whose ``key_of`` is ``key``, without scanning the others:
        a market maker's window holds thousands of items over dozens of symbols, and a detector
        reading one symbol's last seconds on every cancel would walk all of them. ``key_of``
        must be the same function on every call."""
        out = list(self.newest_of(spec, span_ns, end_ns, key_of, key))
        out.reverse()
        return out

    def newest_of(
        self, spec: SlidingWindow, span_ns: int, end_ns: int, key_of: Callable[[T], Hashable], key: Hashable
    ) -> Iterator[tuple[int, T]]:
        """The items of :meth:`recent_of`, newest first, one at a time: a reader that has seen
        enough stops early."""
        if self._key_of is None:
            self._key_of = key_of
            self._by_key = {}
        assert self._by_key is not None and self._key_of is key_of
        indexed = self._by_key.get(key)
        if indexed is None:
            indexed = deque(entry for entry in self._items if key_of(entry[1]) == key)
            if not indexed:
                return
            self._by_key[key] = indexed
        start = end_ns - min(span_ns, spec.size_ns)
        for ts_ns, item, _ in reversed(indexed):
            if ts_ns <= start:
                return
            if ts_ns <= end_ns:
                yield ts_ns, item

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
        return _recent(self._items, spec, span_ns, end_ns)

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


def _insert_sorted(items: list[Entry[T]] | deque[Entry[T]], entry: Entry[T]) -> None:
    """Append, or for an event out of order (within grace, rare) insert it after every item of
    the same or an earlier time, so items stay sorted by event time and reads can stop at the
    first item older than what they need."""
    ts_ns = entry[0]
    if not items or items[-1][0] <= ts_ns:
        items.append(entry)
        return
    pos = len(items) - 1
    while pos > 0 and items[pos - 1][0] > ts_ns:
        pos -= 1
    items.insert(pos, entry)


def _recent(
    items: list[Entry[T]] | deque[Entry[T]], spec: SlidingWindow, span_ns: int, end_ns: int
) -> list[tuple[int, T]]:
    start = end_ns - min(span_ns, spec.size_ns)
    out: list[tuple[int, T]] = []
    for ts_ns, item, _ in reversed(items):
        if ts_ns <= start:
            break
        if start < ts_ns <= end_ns:
            out.append((ts_ns, item))
    out.reverse()
    return out
