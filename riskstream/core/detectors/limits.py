"""Position, exposure, loss and order-size limit breaches against the per-account limits file.

A breach alerts once, when it starts; the account must come back inside the limit before the
same limit can alert again. Exposure and loss mark positions to the market's mid (the last own
fill when no quote is known). Loss is also checked when the market moves
(:func:`detect_loss_on_mark`), so an idle account whose position sinks is caught too.
"""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState
from riskstream.records import (
    AlertEntity,
    Category,
    Evidence,
    OrderEvent,
    OrderEventType,
    WindowBounds,
)


def _mark(symbol: str, state: AccountState, ctx: DetectionContext) -> float:
    market = ctx.market.get(symbol)
    mid = market.mid if market is not None else None
    return mid if mid is not None else state.last_fill_px.get(symbol, 0.0)


def _unrealized(state: AccountState, ctx: DetectionContext) -> float:
    return state.unrealized_pnl(lambda sym: _mark(sym, state, ctx))


def detect_limit_breach(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    kind = event.event
    if kind is OrderEventType.FILL:
        return _fill_breaches(event, state, ctx)
    if kind is not OrderEventType.NEW and kind is not OrderEventType.REPLACE:
        return []
    limit = ctx.limits.for_account(event.account).max_order_qty
    if event.qty <= limit:
        return []
    return [
        Candidate(
            category=Category.LIMIT_BREACH,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(event.ts_ns, event.ts_ns),
            evidence=Evidence(
                {"qty": event.qty, "limit": limit, "utilisation": event.qty / limit},
                (event.order_id,),
                f"order {event.order_id} for {event.qty:g} exceeds the order-size limit {limit:g}",
            ),
            strength=event.qty / limit,
            discriminator=f"order_qty:{kind.value}",
        )
    ]


def _fill_breaches(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    """Position, loss and gross exposure after a fill, in that order."""
    limits = ctx.limits.for_account(event.account)
    out: list[Candidate] = []
    position = state.positions.get(event.symbol, 0.0)
    _crossing(
        out,
        event,
        state,
        f"position:{event.symbol}",
        position,
        limits.max_position_qty,
        f"net position {position:g} in {event.symbol} exceeds the limit {limits.max_position_qty:g}",
        {"position": position},
    )
    out.extend(_loss_breach(event.account, event.symbol, state, ctx, event.ts_ns, (event.order_id,)))
    gross = sum(abs(qty) * _mark(sym, state, ctx) for sym, qty in state.positions.items())
    _crossing(
        out,
        event,
        state,
        "gross_notional",
        gross,
        limits.max_gross_notional,
        f"gross exposure {gross:,.0f} exceeds the limit {limits.max_gross_notional:,.0f}",
        {"gross_notional": round(gross, 2)},
    )
    return out


def _crossing(
    out: list[Candidate],
    event: OrderEvent,
    state: AccountState,
    key: str,
    value: float,
    limit: float,
    summary: str,
    features: dict[str, float],
) -> None:
    """A limit alerts when it is first crossed; back inside it, it may alert again."""
    if abs(value) <= limit:
        state.open_breaches.discard(key)
        return
    if key in state.open_breaches:
        return
    state.open_breaches.add(key)
    out.append(
        Candidate(
            category=Category.LIMIT_BREACH,
            entity=AlertEntity(event.account, event.symbol),
            window=WindowBounds(event.ts_ns, event.ts_ns),
            evidence=Evidence(
                {**features, "limit": limit, "utilisation": abs(value) / limit},
                (event.order_id,),
                summary,
            ),
            strength=abs(value) / limit,
            discriminator=key,
        )
    )


def _loss_breach(
    account: str,
    symbol: str,
    state: AccountState,
    ctx: DetectionContext,
    ts_ns: int,
    order_ids: tuple[str, ...],
) -> list[Candidate]:
    limit = ctx.limits.for_account(account).max_loss
    unrealized = _unrealized(state, ctx)
    pnl = state.realized_pnl + unrealized
    key = "loss"
    if -pnl <= limit:
        state.open_breaches.discard(key)
        return []
    if key in state.open_breaches:
        return []
    state.open_breaches.add(key)
    return [
        Candidate(
            category=Category.LIMIT_BREACH,
            entity=AlertEntity(account, symbol),
            window=WindowBounds(ts_ns, ts_ns),
            evidence=Evidence(
                {
                    "realized_pnl": round(state.realized_pnl, 2),
                    "unrealized_pnl": round(unrealized, 2),
                    "limit": limit,
                    "utilisation": -pnl / limit,
                },
                order_ids,
                f"loss {-pnl:,.0f} (realised {state.realized_pnl:,.0f}, marked to market "
                f"{unrealized:,.0f}) exceeds the loss limit {limit:,.0f}",
            ),
            strength=-pnl / limit,
            discriminator=f"loss:{ts_ns}",
        )
    ]


def detect_loss_on_mark(
    account: str, state: AccountState, symbol: str, ts_ns: int, ctx: DetectionContext
) -> list[Candidate]:
    """The loss limit after a market move in ``symbol``, for an account holding it."""
    if symbol not in state.positions:
        return []
    return _loss_breach(account, symbol, state, ctx, ts_ns, ())


def loss_headroom(account: str, state: AccountState, ctx: DetectionContext) -> float:
    """How much more the account may lose at current marks before its loss limit (<= 0: in
    breach, or no finite limit to measure against gives +inf)."""
    limit = ctx.limits.for_account(account).max_loss
    if limit == float("inf"):
        return limit
    if "loss" in state.open_breaches:
        return 0.0
    return limit + state.realized_pnl + _unrealized(state, ctx)
