"""Live input must be dated near now: an event far in the future or the past is a data error.

The decoders accept any event time a 64-bit epoch can hold, which is right for history. Live
data is different: one quote dated a year ahead becomes its symbol's market (every later quote
is older than it), and one order dated a year ahead moves its account's window watermark so
that everything after it counts as late. The worker therefore refuses, before any state sees
them, events outside a window around its own wall clock. The backtest does not apply it: a
history file has no "now".
"""

from __future__ import annotations

from dataclasses import dataclass

from riskstream.core.clock import Clock
from riskstream.records.codec import NS_PER_S, format_ts


@dataclass(frozen=True, slots=True)
class EventTimeBounds:
    max_lead_s: float
    """Latest event time accepted, ahead of the clock."""
    max_age_s: float
    """Earliest event time accepted, behind the clock; 0 accepts any past."""
    clock: Clock

    def refusal(self, ts_ns: int) -> str | None:
        """Why ``ts_ns`` is not a plausible live event time, or None when it is."""
        now_ns = self.clock()
        if ts_ns > now_ns + self.max_lead_s * NS_PER_S:
            return (
                f"ts {format_ts(ts_ns)} is more than {self.max_lead_s:g} s ahead of the worker's"
                f" clock ({format_ts(now_ns)}; stream.max_event_lead_s)"
            )
        if self.max_age_s > 0 and ts_ns < now_ns - self.max_age_s * NS_PER_S:
            return (
                f"ts {format_ts(ts_ns)} is more than {self.max_age_s:g} s before the worker's"
                f" clock ({format_ts(now_ns)}; stream.max_event_age_s)"
            )
        return None
