"""Quote stuffing and excessive order-to-trade ratio: an account sends order messages in one
symbol at many times the rate the market itself updates its quotes, and almost none trade.

The per-symbol message count over a short span is O(1) per message; the order-to-trade ratio
is read from the activity window only once the rate gate passes. One alert per episode: the
rate must fall below half the threshold before the account can alert again in that symbol.
A market maker cancels most of its quotes too, but at the market's own pace, and in a volatile
minute re-quotes at a small multiple of its own pace: the burst must also be far beyond the
account's own message rate in that symbol before the span (``stuffing_own_rate_multiple``).
"""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, Activity, MessageRate
from riskstream.core.windows import NS_PER_S
from riskstream.records import AlertEntity, Category, Evidence, OrderEvent, OrderEventType, WindowBounds

MAX_MESSAGES_KEPT = 10_000
MAX_EVIDENCE_ORDERS = 100


def detect_quote_stuffing(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    if event.event not in (OrderEventType.NEW, OrderEventType.REPLACE, OrderEventType.CANCEL):
        return []
    p = ctx.params
    span_ns = int(p.stuffing_window_s * NS_PER_S)
    times = state.messages.get(event.symbol)
    if times is None:
        times = state.messages[event.symbol] = []
    times.append(event.ts_ns)
    pace = state.message_rates.get(event.symbol)
    if pace is None:
        pace = state.message_rates[event.symbol] = MessageRate()
    tau_s = p.shock_baseline_s
    # A list, not a deque (a deque's first block is ~700 bytes per account and symbol): the
    # messages leaving the span are counted first and cut off the front in one step.
    leaving = 0
    while leaving < len(times) and (
        times[leaving] <= event.ts_ns - span_ns or len(times) - leaving > MAX_MESSAGES_KEPT
    ):
        pace.add(times[leaving], tau_s)
        leaving += 1
    if leaving:
        del times[:leaving]
    for sym in [s for s, t in state.messages.items() if not t or t[-1] <= event.ts_ns - span_ns]:
        stale = state.message_rates.get(sym)
        if stale is not None:
            for ts in state.messages[sym]:
                stale.add(ts, tau_s)
            if stale.per_s(event.ts_ns, tau_s) < 1.0 / tau_s:
                del state.message_rates[sym]
        del state.messages[sym]
    key = f"stuffing:{event.symbol}"
    count = len(times)
    if count < p.stuffing_min_messages:
        if count < p.stuffing_min_messages / 2:
            state.open_patterns.discard(key)
        return []
    if key in state.open_patterns:
        return []
    market = ctx.market.get(event.symbol)
    quote_rate = market.quote_rate() if market is not None and market.quotes_slow > 0 else 0.0
    rate = count / p.stuffing_window_s
    rate_multiple = rate / quote_rate if quote_rate > 0 else float("inf")
    if rate_multiple < p.stuffing_rate_multiple:
        return []
    own_rate = pace.per_s(event.ts_ns, tau_s)
    own_multiple = rate / own_rate if own_rate > 0 else float("inf")
    if own_multiple < p.stuffing_own_rate_multiple:
        return []
    news: list[str] = []
    fills = 0
    for _, item in state.activity.items(ctx.window):
        if item.symbol != event.symbol:
            continue
        if item.kind is Activity.NEW:
            news.append(item.order_id)
        elif item.kind is Activity.FILL:
            fills += 1
    order_to_trade = len(news) / max(fills, 1)
    if order_to_trade < p.stuffing_min_order_to_trade:
        return []
    state.open_patterns.add(key)
    return [
        Candidate(
            category=Category.QUOTE_STUFFING,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(times[0], event.ts_ns),
            evidence=Evidence(
                features={
                    "messages_in_span": float(count),
                    "messages_per_s": round(rate, 3),
                    "market_quotes_per_s": round(quote_rate, 3),
                    "rate_multiple": round(min(rate_multiple, 1e6), 3),
                    "own_rate_multiple": round(min(own_multiple, 1e6), 3),
                    "orders_in_window": float(len(news)),
                    "fills_in_window": float(fills),
                    "order_to_trade": round(order_to_trade, 3),
                },
                order_ids=tuple(news[-MAX_EVIDENCE_ORDERS:]),
                summary=(
                    f"{count} order messages in {p.stuffing_window_s:g}s "
                    f"({min(rate_multiple, 1e6):.0f}x the market's quote rate, "
                    f"{min(own_multiple, 1e6):.0f}x the account's own pace), "
                    f"{len(news)} orders for {fills} fills"
                ),
            ),
            strength=max(
                1.0,
                min(
                    rate_multiple / p.stuffing_rate_multiple,
                    order_to_trade / p.stuffing_min_order_to_trade,
                ),
            ),
            discriminator=str(times[0]),
        )
    ]
