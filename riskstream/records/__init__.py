"""Typed records of every topic, and their strict decoders.

Decoders raise :class:`DecodeError` with a reason a human can act on; the agents route such
messages to the dead-letter topic instead of stopping the stream.
"""

from riskstream.records.alerts import (
    AlertEntity,
    Category,
    Evidence,
    RiskAlert,
    Severity,
    Timings,
    WindowBounds,
)
from riskstream.records.codec import DecodeError, format_ts, parse_ts
from riskstream.records.dead_letter import DeadLetter
from riskstream.records.market_data import MarketEvent, Print, Quote, decode_market_data, decode_market_input
from riskstream.records.trade_logs import (
    OrderEvent,
    OrderEventType,
    Side,
    decode_trade_input,
    decode_trade_log,
)
from riskstream.records.watermark import SourceWatermark

__all__ = [
    "AlertEntity",
    "Category",
    "DeadLetter",
    "DecodeError",
    "Evidence",
    "MarketEvent",
    "OrderEvent",
    "OrderEventType",
    "Print",
    "Quote",
    "RiskAlert",
    "Severity",
    "Side",
    "SourceWatermark",
    "Timings",
    "WindowBounds",
    "decode_market_data",
    "decode_market_input",
    "decode_trade_input",
    "decode_trade_log",
    "format_ts",
    "parse_ts",
]
