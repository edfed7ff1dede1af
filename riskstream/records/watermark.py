"""Source watermarks: a producer's statement, in the log, that a partition is quiet.

An event can be folded only once no input partition can still bring an earlier one. A dense
partition says so by its next event; a quiet one says nothing, and the worker would wait for
its next event, or for the allowed lateness by the clock (which depends on when fetches happen,
so on load). A producer that knows its own clock can say it instead, as Flink's and Beam's
sources emit watermarks: a record ``{"watermark": ts}`` on a partition of ``trade-logs`` or
``market-data`` promises that this partition will carry no event earlier than ``ts`` after it.
Being a record, it is read in the partition's order and again on every replay: the fold's
order and its alerts stay what the events alone give, only sooner.

The promise is the producer's: a partition written by several producers needs each of them
to send watermarks no later than its own next event, or none to send any. An event that
breaks it is folded when it comes and counted as out of order, like any late event.
Watermark records carry no key (they are sent to a partition, not hashed to one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskstream.records.codec import DecodeError, format_ts, parse_ts
from riskstream.records.immutable import immutable

WATERMARK_FIELD = "watermark"


@immutable
class SourceWatermark:
    ts_ns: int
    """No later record of the partition has an earlier event time (epoch ns UTC)."""

    def to_json(self) -> dict[str, Any]:
        return {WATERMARK_FIELD: format_ts(self.ts_ns)}


def watermark_from(obj: Mapping[str, Any]) -> SourceWatermark | None:
    """The watermark ``obj`` is, or None for any other message (an event to decode as such)."""
    if WATERMARK_FIELD not in obj:
        return None
    if len(obj) != 1:
        extra = sorted(k for k in obj if k != WATERMARK_FIELD)
        raise DecodeError(f"a watermark record has no other field, got {extra}")
    return SourceWatermark(parse_ts(obj[WATERMARK_FIELD]))
