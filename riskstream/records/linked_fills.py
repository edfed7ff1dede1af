"""``linked-fills``: lit-book fills of accounts the limits file links to one beneficial owner.

A venue's fill does not name the other side of a lit-book trade, so two linked accounts
trading with each other look, each on its own, like any buyer and any seller. Each worker
publishes the fills of the linked accounts it owns here, keyed by the owner, and every worker
reads the whole topic (it is as small as the set of linked accounts' fills): the opposite legs
meet in one place whichever workers own the two accounts.
"""

from __future__ import annotations

from typing import Any

from riskstream.records.codec import (
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
from riskstream.records.trade_logs import Side


@immutable
class LinkedFill:
    owner: str
    """Beneficial owner of the account (the limits file's ``[owners]``): the message key."""
    account: str
    partition: int
    """The account's trade-logs partition: the worker that owns it raises the account's alert."""
    order_id: str
    symbol: str
    side: Side
    qty: float
    """This execution's quantity (the fill's ``last_qty``)."""
    price: float
    """This execution's price (``last_px``)."""
    ts_ns: int
    """Event time of the fill."""

    @property
    def fill_id(self) -> str:
        """The same fill published twice (a worker replaying after a crash) has one id."""
        return f"{self.account}/{self.order_id}/{self.ts_ns}/{self.qty:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "account": self.account,
            "partition": self.partition,
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "qty": self.qty,
            "price": self.price,
            "ts": format_ts(self.ts_ns),
        }


def decode_linked_fill(raw: bytes) -> LinkedFill:
    """Decode and validate one ``linked-fills`` message or raise :class:`DecodeError`."""
    obj = load_object(raw)
    try:
        side = Side(str(obj.get("side")))
    except ValueError:
        raise DecodeError(f"side must be 'buy' or 'sell', got {obj.get('side')!r}") from None
    partition = obj.get("partition")
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        raise DecodeError(f"partition must be a non-negative integer, got {partition!r}")
    return LinkedFill(
        owner=req_str(obj, "owner"),
        account=req_str(obj, "account"),
        partition=partition,
        order_id=req_str(obj, "order_id"),
        symbol=req_str(obj, "symbol"),
        side=side,
        qty=req_number(obj, "qty", QUANTITY),
        price=req_number(obj, "price", PRICE),
        ts_ns=parse_ts(obj.get("ts")),
    )
