"""The trading calendar: when each session closes, in event time.

Sessions close at one local wall-clock time on weekdays (the exchange's time zone, so daylight
saving is handled by ``zoneinfo``). Holidays are not modelled: a close that did not happen only
makes marking-the-close look at minutes nobody trades in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from riskstream.records.codec import NS_PER_S

SATURDAY = 5
DAY_NS = 86_400 * NS_PER_S


@dataclass(frozen=True, slots=True)
class SessionCalendar:
    close_local: time
    """Local wall-clock time of the session close."""
    timezone: str
    """IANA zone of the exchange, e.g. America/New_York."""
    _cache: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, close_local: str, timezone: str) -> SessionCalendar:
        """``close_local`` as ``HH:MM``."""
        return cls(time.fromisoformat(close_local), timezone)

    def next_close_ns(self, ts_ns: int) -> int:
        """Event time of the first session close at or after ``ts_ns``.

        Cached per UTC day: the day's first close at or after its start, and the close after
        that one, so that a query for an earlier moment of a day never gets a later close."""
        day = ts_ns // DAY_NS
        first = self._cache.get(day)
        if first is None:
            first = self._cached(day, self._first_close_at_or_after(day * DAY_NS))
        if first >= ts_ns:
            return first
        after = self._cache.get(-day - 1)
        if after is None:
            after = self._cached(-day - 1, self._first_close_at_or_after(first + 1))
        return after if after >= ts_ns else self._first_close_at_or_after(ts_ns)

    def _cached(self, key: int, close_ns: int) -> int:
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = close_ns
        return close_ns

    def _first_close_at_or_after(self, ts_ns: int) -> int:
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(ts_ns / NS_PER_S, tz=UTC).astimezone(zone)
        date = local.date()
        while True:
            if date.weekday() < SATURDAY:
                close = datetime.combine(date, self.close_local, tzinfo=zone)
                close_ns = int(close.timestamp()) * NS_PER_S
                if close_ns >= ts_ns:
                    return close_ns
            date += timedelta(days=1)

    def seconds_to_close(self, ts_ns: int) -> float:
        return (self.next_close_ns(ts_ns) - ts_ns) / NS_PER_S
