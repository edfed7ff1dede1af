"""Fold a key's events into its state and run every detector on each event.

Detectors run on every event of every micro-batch, so an alert leaves within milliseconds of the
event that completes a pattern rather than at window close.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from riskstream.core.candidates import Candidate
from riskstream.core.detectors import (
    DetectionContext,
    detect_fat_finger,
    detect_limit_breach,
    detect_market_shock,
    detect_marking_the_close,
    detect_momentum_ignition,
    detect_quote_stuffing,
    detect_ramping,
    detect_spoofing,
    detect_wash_trade,
    loss_headroom,
    record_order_size,
    track_aggression,
)
from riskstream.core.evidence import with_market_terms
from riskstream.core.state import AccountState, SymbolState
from riskstream.records import OrderEvent, Print
from riskstream.records.market_data import MarketEvent

PRE_APPLY = (detect_fat_finger,)
"""Detectors that compare the event with the state as it was before the event."""
POST_APPLY = (
    detect_limit_breach,
    detect_spoofing,
    detect_wash_trade,
    detect_momentum_ignition,
    detect_ramping,
    detect_marking_the_close,
    detect_quote_stuffing,
)
"""Detectors that need the event already folded into the state."""


@dataclass(frozen=True, slots=True)
class AccountBatchResult:
    candidates: list[Candidate]
    late_events: int


def surveil_account(
    state: AccountState,
    events: Iterable[OrderEvent],
    ctx: DetectionContext,
    size_alpha: float,
) -> AccountBatchResult:
    """Events of one account, in partition order; mutates ``state``."""
    found: list[Candidate] = []
    late = 0
    for event in events:
        for pre in PRE_APPLY:
            found.extend(pre(event, state, ctx))
        record_order_size(event, state, ctx, size_alpha)
        track_aggression(event, state, ctx)
        if not state.apply(event, ctx.window, size_alpha):
            late += 1
        for post in POST_APPLY:
            found.extend(post(event, state, ctx))
    return AccountBatchResult([with_market_terms(c, ctx) for c in found], late)


def surveil_market(state: SymbolState, event: MarketEvent, ctx: DetectionContext) -> list[Candidate]:
    """One market event into its symbol's state; returns market-wide candidates."""
    p = ctx.params
    if state.first_ns == 0:
        state.fast_s, state.slow_s = p.shock_fast_s, p.shock_baseline_s
    close_ns = ctx.calendar.next_close_ns(event.ts_ns)
    if state.close_ns != close_ns and close_ns - event.ts_ns <= p.close_window_s * 1e9:
        state.close_ns = close_ns
        state.close_variance = state.sampled_variance_rate() if state.first_ns else 0.0
    state.apply(event, continuous=not isinstance(event, Print) or _continuous(event, ctx))

    return [with_market_terms(c, ctx) for c in detect_market_shock(event, state, ctx)]


def _continuous(trade: Print, ctx: DetectionContext) -> bool:
    """A print of the lit continuous session: not reported from off book (blocks, dark pools)
    and not the closing auction's (printed at the close or within ``close_auction_s`` after)."""
    p = ctx.params
    if trade.venue in p.off_book_venues:
        return False
    auction_ns = int(p.close_auction_s * 1e9)
    return ctx.calendar.next_close_ns(trade.ts_ns - auction_ns) > trade.ts_ns


class Holders:
    """Which accounts hold which symbol, with a re-mark trigger price per position, so a quote
    re-marks only the accounts it could push past their loss limit.

    An account's loss headroom is shared equally among its positions: each symbol's trigger is
    the mid at which that position alone would have used its share. While no position crosses
    its trigger the total loss cannot pass the limit; a crossing re-marks the account exactly and
    sets fresh triggers, as does every fill of the account (orders alone change neither its
    positions nor its P&L). A breached account (or one with no limit headroom) is re-marked on
    every quote of its symbols, so the breach can clear."""

    def __init__(self) -> None:
        self._triggers: dict[str, dict[str, tuple[int, float]]] = {}
        """symbol -> account -> (position sign, trigger mid); sign 0: re-mark on every quote."""
        self._symbols_of: dict[str, set[str]] = {}

    def update(self, account: str, state: AccountState, ctx: DetectionContext) -> None:
        self.forget([account])
        if not state.positions:
            return
        headroom = loss_headroom(account, state, ctx)
        share = headroom / len(state.positions)
        for symbol, qty in state.positions.items():
            market = ctx.market.get(symbol)
            mid = market.mid if market is not None else None
            if share <= 0 or mid is None or qty == 0:
                trigger = (0, 0.0)
            else:
                sign = 1 if qty > 0 else -1
                trigger = (sign, mid - sign * share / abs(qty))
            self._triggers.setdefault(symbol, {})[account] = trigger
        self._symbols_of[account] = set(state.positions)

    def due(self, symbol: str, mid: float) -> list[str]:
        """Holders of ``symbol`` the mid has crossed the trigger of, in a stable order."""
        return sorted(
            account
            for account, (sign, trigger) in self._triggers.get(symbol, {}).items()
            if sign == 0 or (mid <= trigger if sign > 0 else mid >= trigger)
        )

    def forget(self, accounts: Iterable[str]) -> None:
        for account in accounts:
            for symbol in self._symbols_of.pop(account, set()):
                self._triggers[symbol].pop(account, None)
