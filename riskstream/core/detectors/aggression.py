"""Which orders take liquidity, remembered with the market they met.

Momentum ignition and marking the close are both about marketable orders pushing the price, so
the account keeps a short record of its own marketable orders, each with the mid, spread and
displayed size just before it. Recording happens before the order is folded into the state and
before market data shows its impact.
"""

from __future__ import annotations

from collections import deque

from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, AggressiveOrder, side_key
from riskstream.core.windows import NS_PER_S
from riskstream.records import OrderEvent, OrderEventType, Side

MAX_AGGRESSIVE_ORDERS = 2000
"""Bound on an account's record, all symbols and sides together, whatever the look-backs: its
state stays small. Beyond it the oldest orders go first."""


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
    key = side_key(event.symbol, event.side)
    record = state.aggressive.get(key)
    if record is None:
        record = state.aggressive[key] = deque()
    entry = AggressiveOrder(
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
    if not record or record[-1].ts_ns <= event.ts_ns:
        record.append(entry)
    else:
        # Late but kept: inserted in place, so readers can stop at the first order too old.
        pos = len(record) - 1
        while pos > 0 and record[pos - 1].ts_ns > event.ts_ns:
            pos -= 1
        record.insert(pos, entry)
    _prune(state.aggressive, event.ts_ns - lookback_ns(ctx))


def _prune(records: dict[str, deque[AggressiveOrder]], cutoff_ns: int) -> None:
    """Drop orders older than the look-back, then the oldest beyond the account's bound."""
    for key in list(records):
        record = records[key]
        while record and record[0].ts_ns < cutoff_ns:
            record.popleft()
        if not record:
            del records[key]
    excess = sum(len(record) for record in records.values()) - MAX_AGGRESSIVE_ORDERS
    for _ in range(excess):
        key = min(records, key=lambda k: records[k][0].ts_ns)
        records[key].popleft()
        if not records[key]:
            del records[key]
