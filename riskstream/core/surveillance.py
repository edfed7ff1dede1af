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
    detect_loss_on_mark,
    detect_market_shock,
    detect_marking_the_close,
    detect_momentum_ignition,
    detect_quote_stuffing,
    detect_ramping,
    detect_spoofing,
    detect_wash_trade,
    track_aggression,
)
from riskstream.core.state import AccountState, SymbolState
from riskstream.records import OrderEvent
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
        track_aggression(event, state, ctx)
        if not state.apply(event, ctx.window, size_alpha):
            late += 1
        for post in POST_APPLY:
            found.extend(post(event, state, ctx))
    return AccountBatchResult(found, late)


def surveil_market(state: SymbolState, event: MarketEvent, ctx: DetectionContext) -> list[Candidate]:
    """One market event into its symbol's state; returns market-wide candidates."""
    p = ctx.params
    if state.first_ns == 0:
        state.fast_s, state.slow_s = p.shock_fast_s, p.shock_baseline_s
    close_ns = ctx.calendar.next_close_ns(event.ts_ns)
    if state.close_ns != close_ns and close_ns - event.ts_ns <= p.close_window_s * 1e9:
        state.close_ns = close_ns
        state.close_variance = state.sampled_variance_rate() if state.first_ns else 0.0
    state.apply(event)

    return detect_market_shock(event, state, ctx)


def surveil_marks(
    symbol: str, ts_ns: int, holders: Iterable[tuple[str, AccountState]], ctx: DetectionContext
) -> list[Candidate]:
    """Loss limits of the accounts holding ``symbol``, after its market moved."""
    found: list[Candidate] = []
    for account, state in holders:
        found.extend(detect_loss_on_mark(account, state, symbol, ts_ns, ctx))
    return found


class Holders:
    """Which accounts hold a position in which symbol, so a market move re-marks only them."""

    def __init__(self) -> None:
        self._by_symbol: dict[str, set[str]] = {}
        self._symbols_of: dict[str, set[str]] = {}

    def update(self, account: str, state: AccountState) -> None:
        now = set(state.positions)
        before = self._symbols_of.get(account, set())
        if now == before:
            return
        for symbol in before - now:
            self._by_symbol[symbol].discard(account)
        for symbol in now - before:
            self._by_symbol.setdefault(symbol, set()).add(account)
        if now:
            self._symbols_of[account] = now
        else:
            self._symbols_of.pop(account, None)

    def of(self, symbol: str) -> list[str]:
        """Holders of ``symbol`` in a stable order (alerts come out the same on every run)."""
        return sorted(self._by_symbol.get(symbol, ()))

    def forget(self, accounts: Iterable[str]) -> None:
        for account in accounts:
            for symbol in self._symbols_of.pop(account, set()):
                self._by_symbol[symbol].discard(account)
