"""Wash trades: the account trades with itself or with an account of the same beneficial owner,
or buys and sells the same quantity at the same price within moments, both orders entered
together (no change in beneficial position). A market maker's buy and sell can meet at one price
too, but its orders were entered at different times, against the market."""

from __future__ import annotations

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.state import AccountState, Activity, side_key
from riskstream.core.windows import NS_PER_S
from riskstream.records import (
    AlertEntity,
    Category,
    Evidence,
    OrderEvent,
    OrderEventType,
    WindowBounds,
)


def detect_wash_trade(event: OrderEvent, state: AccountState, ctx: DetectionContext) -> list[Candidate]:
    if event.event is not OrderEventType.FILL or event.order_id in state.flagged:
        return []
    assert event.last_qty is not None and event.last_px is not None
    entity = AlertEntity(event.account, event.symbol)
    cp = event.counterparty
    if cp is not None and ctx.limits.same_owner(event.account, cp):
        relation = "itself" if cp == event.account else f"linked account {cp}"
        state.flagged.add(event.order_id)
        return [
            Candidate(
                category=Category.WASH_TRADE,
                entity=entity,
                window=WindowBounds(event.ts_ns, event.ts_ns),
                evidence=Evidence(
                    features={
                        "qty": event.last_qty,
                        "price": event.last_px,
                        "self_match": 1.0 if cp == event.account else 0.0,
                    },
                    order_ids=(event.order_id,),
                    summary=f"fill of {event.last_qty:g} @ {event.last_px:g} against {relation}",
                ),
                strength=1.5 if cp == event.account else 1.25,
                discriminator=cp,
            )
        ]
    p = ctx.params
    match_ns = int(p.wash_match_window_s * NS_PER_S)
    other_leg = state.last_fill_ns.get(side_key(event.symbol, event.side.opposite), -1)
    if other_leg < event.ts_ns - match_ns:
        return []
    newest = state.activity.newest()
    placed_ns = (
        newest[1].placed_ns if newest is not None and newest[1].order_id == event.order_id else event.ts_ns
    )
    for ts, it in state.activity.recent(ctx.window, match_ns, event.ts_ns):
        if (
            it.kind is Activity.FILL
            and it.symbol == event.symbol
            and it.side is event.side.opposite
            and it.order_id not in state.flagged
            and event.ts_ns - ts <= match_ns
            and abs(it.placed_ns - placed_ns) <= match_ns
            and it.qty == event.last_qty
            and it.price is not None
            and abs(it.price - event.last_px) <= p.wash_price_tolerance * event.last_px
        ):
            gap_s = (event.ts_ns - ts) / NS_PER_S
            state.flagged.update((it.order_id, event.order_id))
            return [
                Candidate(
                    category=Category.WASH_TRADE,
                    entity=entity,
                    window=WindowBounds(ts, event.ts_ns),
                    evidence=Evidence(
                        features={
                            "qty": event.last_qty,
                            "price": event.last_px,
                            "price_gap": abs(it.price - event.last_px),
                            "seconds_apart": round(gap_s, 6),
                        },
                        order_ids=(it.order_id, event.order_id),
                        summary=(
                            f"bought and sold {event.last_qty:g} @ {event.last_px:g} "
                            f"{gap_s:.2f}s apart: no change in position"
                        ),
                    ),
                    strength=1.0 + max(0.0, 1.0 - gap_s / p.wash_match_window_s),
                    discriminator="round_trip",
                )
            ]
    return []
