"""Shared field decoding: event time, numbers and identifiers, with human-readable reasons."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_TS_NS = 2**63 - 1
"""Event times are epoch ns in a signed 64-bit integer (Kafka, Parquet and Postgres all hold
them so): up to 2262-04-11. Earlier than 1970 is not an event of an electronic market."""


@dataclass(frozen=True, slots=True)
class Magnitude:
    """What a number of the domain can be: a price or a quantity of a real instrument. Values
    outside it are data errors (a unit slip, an uninitialised field, a fuzzer), and letting them
    in produces infinities in notional, P&L and ratios downstream."""

    smallest: float
    """Least non-zero value; below it is not a price or a quantity of any instrument."""
    largest: float
    """Greatest value."""
    zero_allowed: bool
    """Zero is a value (a displayed size may be), not a missing one."""


PRICE = Magnitude(1e-8, 1e9, zero_allowed=False)
"""Per-unit prices: from a sub-satoshi crypto quote to a billion (Berkshire A is ~1e6)."""
QUANTITY = Magnitude(1e-8, 1e12, zero_allowed=False)
"""Order and trade quantities: fractional crypto lots up to 1e12 units, above the share count
of any listed company (the largest are ~2e10) and the notional of any FX ticket."""
DISPLAYED_SIZE = Magnitude(QUANTITY.smallest, QUANTITY.largest, zero_allowed=True)
"""Displayed size at the touch: an empty side of the book is 0."""

NS_PER_S = 1_000_000_000
_ISO_FRACTION = re.compile(r"^(?P<head>[^.]+)(?:\.(?P<frac>[0-9]{1,9}))?(?P<tz>Z|[+-]\d{2}:\d{2})$")
MAX_ID_LEN = 64
_UTC_NS_LEN = len("2026-01-02T09:30:00.123456789Z")
_UTC_SECONDS_KEPT = 4096
_utc_seconds: dict[str, int] = {}
"""Epoch seconds of the ``YYYY-MM-DDTHH:MM:SS`` heads of UTC timestamps parsed lately: events
of the same second share a head, so the canonical form (what riskstream writes) skips the
regex and datetime parse. Only heads that passed the full parse get in."""


class DecodeError(ValueError):
    """A message that cannot become a record; ``reason`` goes to the dead-letter topic."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def load_object(raw: bytes) -> Mapping[str, Any]:
    """Parse one JSON object, rejecting anything else (arrays, scalars, bad UTF-8)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise DecodeError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_ts(value: object) -> int:
    """Event time as integer epoch nanoseconds from ISO-8601 (with an offset) or epoch ns."""
    if isinstance(value, bool):
        raise DecodeError("ts must be an ISO-8601 string or integer epoch nanoseconds")
    if isinstance(value, int):
        return _in_epoch_range(value, value)
    if not isinstance(value, str):
        raise DecodeError("ts must be an ISO-8601 string or integer epoch nanoseconds")
    if len(value) == _UTC_NS_LEN and value[19] == "." and value[-1] == "Z":
        seconds = _utc_seconds.get(value[:19])
        fraction = value[20:29]
        if seconds is not None and fraction.isascii() and fraction.isdigit():
            return seconds * NS_PER_S + int(fraction)
    match = _ISO_FRACTION.match(value)
    if match is None:
        raise DecodeError(f"ts {value!r} is not ISO-8601 with a UTC offset (e.g. ...Z)")
    tz = match["tz"]
    try:
        base = datetime.fromisoformat(match["head"] + ("+00:00" if tz == "Z" else tz))
    except ValueError:
        raise DecodeError(f"ts {value!r} is not a valid ISO-8601 date-time") from None
    frac = (match["frac"] or "").ljust(9, "0")
    seconds = int(base.timestamp())
    ts_ns = _in_epoch_range(seconds * NS_PER_S + int(frac or "0"), value)
    if tz == "Z":
        if len(_utc_seconds) >= _UTC_SECONDS_KEPT:
            _utc_seconds.clear()
        _utc_seconds[match["head"]] = seconds
    return ts_ns


def _in_epoch_range(ts_ns: int, shown: object) -> int:
    if ts_ns < 0:
        raise DecodeError(f"ts {shown!r} is before 1970-01-01T00:00:00Z")
    if ts_ns > MAX_TS_NS:
        raise DecodeError(f"ts {shown!r} is after 2262-04-11 (beyond 64-bit epoch nanoseconds)")
    return ts_ns


def format_ts(ts_ns: int) -> str:
    """ISO-8601 UTC with nanoseconds, the inverse of :func:`parse_ts`."""
    seconds, frac = divmod(ts_ns, NS_PER_S)
    head = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{head}.{frac:09d}Z"


def req_str(obj: Mapping[str, Any], name: str, max_len: int = MAX_ID_LEN) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise DecodeError(f"{name} must be a non-empty string")
    if len(value) > max_len:
        raise DecodeError(f"{name} is longer than {max_len} characters")
    return value


def opt_str(obj: Mapping[str, Any], name: str, max_len: int = MAX_ID_LEN) -> str | None:
    if obj.get(name) is None:
        return None
    return req_str(obj, name, max_len)


def req_number(obj: Mapping[str, Any], name: str, magnitude: Magnitude) -> float:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"{name} must be a number")
    try:
        number = float(value)
    except OverflowError:
        raise DecodeError(f"{name} {value} is out of range") from None
    if not math.isfinite(number):
        raise DecodeError(f"{name} must be finite")
    if number == 0 and magnitude.zero_allowed:
        return number
    if number <= 0:
        raise DecodeError(f"{name} must be {'at least' if magnitude.zero_allowed else 'greater than'} 0")
    if number < magnitude.smallest:
        raise DecodeError(f"{name} {number!r} is below {magnitude.smallest:g}")
    if number > magnitude.largest:
        raise DecodeError(f"{name} {number!r} is above {magnitude.largest:g}")
    return number


def opt_number(obj: Mapping[str, Any], name: str, magnitude: Magnitude) -> float | None:
    if obj.get(name) is None:
        return None
    return req_number(obj, name, magnitude)


def dumps(obj: object) -> bytes:
    """Compact JSON bytes: what every producer of riskstream writes."""
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
