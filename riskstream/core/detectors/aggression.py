"""Which orders take liquidity, remembered with the market they met.

Momentum ignition and marking the close are both about marketable orders pushing the price, so
the account keeps a short record of its own marketable orders, each with the mid, spread and
displayed size just before it. Recording happens before the order is folded into the state and
before market data shows its impact.
"""

from __future__ import annotations

from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, AggressiveOrder
from riskstream.core.windows import NS_PER_S
from riskstream.records import OrderEvent, OrderEventType, Side

MAX_AGGRESSIVE_ORDERS = 2000
"""Bound on the record, whatever the look-backs: an account's state stays small."""


def lookback_ns(ctx: DetectionContext) -> int:
    p = ctx.params
    return int(max(p.ignition_burst_s + p.ignition_reversal_s, p.close_window_s) * NS_PER_S)


def track_aggression(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> None:
    if event.event is not OrderEventType.NEW:
        return
    market = ctx.market.get(event.symbol)
    if market is None or market.bid is None or market.ask is None or market.ask <= market.bid:
        return
    buy = event.side is Side.BUY
    marketable = event.price is None or (event.price >= market.ask if buy else event.price <= market.bid)
    if not marketable:
        return
    mid = (market.bid + market.ask) / 2.0
    touch = market.typical_touch() or (market.ask_size if buy else market.bid_size)
    record = state.aggressive
    record.append(
        AggressiveOrder(
            event.ts_ns,
            event.order_id,
            event.symbol,
            event.side,
            event.qty,
            mid,
            market.ask - market.bid,
            touch,
            market.cum_volume,
        )
    )
    cutoff = event.ts_ns - lookback_ns(ctx)
    while record and (record[0].ts_ns < cutoff or len(record) > MAX_AGGRESSIVE_ORDERS):
        record.popleft()
