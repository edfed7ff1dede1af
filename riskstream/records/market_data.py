"""``market-data``: quotes and prints per symbol (key = symbol)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from riskstream.records.codec import (
    DISPLAYED_SIZE,
    PRICE,
    QUANTITY,
    DecodeError,
    format_ts,
    load_object,
    parse_ts,
    req_number,
    req_str,
)
from riskstream.records.immutable import immutable
from riskstream.records.watermark import SourceWatermark, watermark_from


@immutable
class Quote:
    """Top of book on one venue."""

    symbol: str
    """Instrument identifier, the message key."""
    venue: str
    """Market identifier code of the quoting venue."""
    ts_ns: int
    """Event time, epoch nanoseconds UTC."""
    bid: float
    """Best bid price."""
    ask: float
    """Best ask price; never below the bid."""
    bid_size: float
    """Displayed quantity at the best bid."""
    ask_size: float
    """Displayed quantity at the best ask."""

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "quote",
            "symbol": self.symbol,
            "venue": self.venue,
            "ts": format_ts(self.ts_ns),
            "bid": self.bid,
            "ask": self.ask,
            "bid_size": self.bid_size,
            "ask_size": self.ask_size,
        }


@immutable
class Print:
    """A trade printed on the tape (anyone's, not only the firm's)."""

    symbol: str
    """Instrument identifier, the message key."""
    venue: str
    """Market identifier code where it printed."""
    ts_ns: int
    """Event time, epoch nanoseconds UTC."""
    price: float
    """Execution price."""
    size: float
    """Executed quantity."""

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "trade",
            "symbol": self.symbol,
            "venue": self.venue,
            "ts": format_ts(self.ts_ns),
            "price": self.price,
            "size": self.size,
        }


MarketEvent = Quote | Print


def decode_market_data(raw: bytes) -> MarketEvent:
    """Decode and validate one ``market-data`` message or raise :class:`DecodeError`."""
    return market_event_from(load_object(raw))


def decode_market_input(raw: bytes) -> MarketEvent | SourceWatermark:
    """A ``market-data`` record as the worker reads it: a quote, a print or its producer's
    watermark."""
    obj = load_object(raw)
    return watermark_from(obj) or market_event_from(obj)


def market_event_from(obj: Mapping[str, Any]) -> MarketEvent:
    kind = obj.get("kind")
    symbol = req_str(obj, "symbol")
    venue = req_str(obj, "venue")
    ts_ns = parse_ts(obj.get("ts"))
    if kind == "quote":
        bid = req_number(obj, "bid", PRICE)
        ask = req_number(obj, "ask", PRICE)
        if bid > ask:
            raise DecodeError(f"crossed quote: bid {bid} above ask {ask}")
        return Quote(
            symbol=symbol,
            venue=venue,
            ts_ns=ts_ns,
            bid=bid,
            ask=ask,
            bid_size=req_number(obj, "bid_size", DISPLAYED_SIZE),
            ask_size=req_number(obj, "ask_size", DISPLAYED_SIZE),
        )
    if kind == "trade":
        return Print(
            symbol=symbol,
            venue=venue,
            ts_ns=ts_ns,
            price=req_number(obj, "price", PRICE),
            size=req_number(obj, "size", QUANTITY),
        )
    raise DecodeError(f"kind must be 'quote' or 'trade', got {kind!r}")
