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
        """Event time of the first session close at or after ``ts_ns``."""
        day = ts_ns // (86_400 * NS_PER_S)
        cached = self._cache.get(day)
        if cached is not None and cached >= ts_ns:
            return cached
        zone = ZoneInfo(self.timezone)
        local = datetime.fromtimestamp(ts_ns / NS_PER_S, tz=UTC).astimezone(zone)
        date = local.date()
        while True:
            if date.weekday() < SATURDAY:
                close = datetime.combine(date, self.close_local, tzinfo=zone)
                close_ns = int(close.timestamp()) * NS_PER_S
                if close_ns >= ts_ns:
                    if len(self._cache) > 64:
                        self._cache.clear()
                    self._cache[day] = close_ns
                    return close_ns
            date += timedelta(days=1)

    def seconds_to_close(self, ts_ns: int) -> float:
        return (self.next_close_ns(ts_ns) - ts_ns) / NS_PER_S
