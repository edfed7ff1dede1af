"""``trade-logs``: the firm's order life cycle, FIX-like (key = account)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from riskstream.records.codec import (
    PRICE,
    QUANTITY,
    DecodeError,
    format_ts,
    load_object,
    opt_number,
    opt_str,
    parse_ts,
    req_number,
    req_str,
)
from riskstream.records.immutable import immutable
from riskstream.records.watermark import SourceWatermark, watermark_from

MAX_TEXT_LEN = 256


class OrderEventType(StrEnum):
    NEW = "new"
    REPLACE = "replace"
    CANCEL = "cancel"
    FILL = "fill"
    REJECT = "reject"


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


@immutable
class OrderEvent:
    """One step in an order's life: new, replace, cancel, fill or reject."""

    event: OrderEventType
    """What happened to the order."""
    order_id: str
    """Firm-unique order id (ClOrdID); a replace keeps the id and changes qty/price."""
    account: str
    """Trading account, the message key."""
    trader: str
    """Trader or algo id that sent the order."""
    symbol: str
    """Instrument identifier."""
    side: Side
    """Buy or sell."""
    qty: float
    """Order quantity after this event."""
    price: float | None
    """Limit price; None for a market order."""
    ts_ns: int
    """Event time, epoch nanoseconds UTC."""
    last_qty: float | None = None
    """Quantity of this fill (fills only)."""
    last_px: float | None = None
    """Price of this fill (fills only)."""
    counterparty: str | None = None
    """Counterparty account where the venue reports it."""
    text: str | None = None
    """Free text from the order entry system (untrusted)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "event": self.event.value,
            "order_id": self.order_id,
            "account": self.account,
            "trader": self.trader,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": self.qty,
            "price": self.price,
            "ts": format_ts(self.ts_ns),
        }
        if self.last_qty is not None:
            out["last_qty"] = self.last_qty
        if self.last_px is not None:
            out["last_px"] = self.last_px
        if self.counterparty is not None:
            out["counterparty"] = self.counterparty
        if self.text is not None:
            out["text"] = self.text
        return out


def decode_trade_log(raw: bytes) -> OrderEvent:
    """Decode and validate one ``trade-logs`` message or raise :class:`DecodeError`."""
    return order_event_from(load_object(raw))


def decode_trade_input(raw: bytes) -> OrderEvent | SourceWatermark:
    """A ``trade-logs`` record as the worker reads it: an order event or its producer's
    watermark."""
    obj = load_object(raw)
    return watermark_from(obj) or order_event_from(obj)


_EVENT_TYPES: dict[str, OrderEventType] = {e.value: e for e in OrderEventType}
_SIDES: dict[str, Side] = {s.value: s for s in Side}
"""Members by value: a dict lookup is a tenth of the enum's constructor, on every message."""


def order_event_from(obj: Mapping[str, Any]) -> OrderEvent:
    raw_event = obj.get("event")
    event = _EVENT_TYPES.get(raw_event) if isinstance(raw_event, str) else None
    if event is None:
        choices = ", ".join(_EVENT_TYPES)
        raise DecodeError(f"event must be one of {choices}, got {raw_event!r}")
    raw_side = obj.get("side")
    side = _SIDES.get(raw_side) if isinstance(raw_side, str) else None
    if side is None:
        raise DecodeError(f"side must be 'buy' or 'sell', got {raw_side!r}")
    last_qty = opt_number(obj, "last_qty", QUANTITY)
    last_px = opt_number(obj, "last_px", PRICE)
    if event is OrderEventType.FILL and (last_qty is None or last_px is None):
        raise DecodeError("a fill needs last_qty and last_px")
    return OrderEvent(
        event=event,
        order_id=req_str(obj, "order_id"),
        account=req_str(obj, "account"),
        trader=req_str(obj, "trader"),
        symbol=req_str(obj, "symbol"),
        side=side,
        qty=req_number(obj, "qty", QUANTITY),
        price=opt_number(obj, "price", PRICE),
        ts_ns=parse_ts(obj.get("ts")),
        last_qty=last_qty,
        last_px=last_px,
        counterparty=opt_str(obj, "counterparty"),
        text=opt_str(obj, "text", MAX_TEXT_LEN),
    )
