"""Fold a key's events into its state and run every detector on each event.

Detectors run on every event of every micro-batch, so an alert leaves within milliseconds of the
event that completes a pattern rather than at window close.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterable
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
from riskstream.records import OrderEvent, OrderEventType, Print
from riskstream.records.market_data import MarketEvent

Detector = Callable[[OrderEvent, AccountState, DetectionContext], list[Candidate]]
Tracker = Callable[[OrderEvent, AccountState, DetectionContext, float], None]


def _track_aggression(event: OrderEvent, state: AccountState, ctx: DetectionContext, _alpha: float) -> None:
    track_aggression(event, state, ctx)


_NEW, _REPLACE, _CANCEL, _FILL = (
    OrderEventType.NEW,
    OrderEventType.REPLACE,
    OrderEventType.CANCEL,
    OrderEventType.FILL,
)

PRE_APPLY: tuple[tuple[Detector, frozenset[OrderEventType]], ...] = (
    (detect_fat_finger, frozenset({_NEW, _REPLACE})),
)
"""Detectors that compare the event with the state as it was before the event, each with the
kinds of order event it reads (it returns nothing and changes nothing on any other)."""
POST_APPLY: tuple[tuple[Detector, frozenset[OrderEventType]], ...] = (
    (detect_limit_breach, frozenset({_NEW, _REPLACE, _FILL})),
    (detect_spoofing, frozenset({_CANCEL, _FILL})),
    (detect_wash_trade, frozenset({_FILL})),
    (detect_momentum_ignition, frozenset({_FILL})),
    (detect_ramping, frozenset({_FILL})),
    (detect_marking_the_close, frozenset({_NEW, _FILL})),
    (detect_quote_stuffing, frozenset({_NEW, _REPLACE, _CANCEL})),
)
"""Detectors that need the event already folded into the state, in the order they run (a
pattern detector flags the orders it used, which the next ones then pass over)."""
TRACKERS: tuple[tuple[Tracker, frozenset[OrderEventType]], ...] = (
    (record_order_size, frozenset({_NEW})),
    (_track_aggression, frozenset({_NEW})),
)
"""What the account keeps of an event for later patterns, between the two kinds of detector."""


@dataclass(frozen=True, slots=True)
class _Plan:
    pre: tuple[Detector, ...]
    trackers: tuple[Tracker, ...]
    post: tuple[Detector, ...]


_PLANS = {
    kind: _Plan(
        tuple(d for d, kinds in PRE_APPLY if kind in kinds),
        tuple(t for t, kinds in TRACKERS if kind in kinds),
        tuple(d for d, kinds in POST_APPLY if kind in kinds),
    )
    for kind in OrderEventType
}
"""Per kind of event, the detectors and trackers that read it: every event used to call all
ten, most of them to return at once (a cancel is read by two)."""


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
        plan = _PLANS[event.event]
        for pre in plan.pre:
            found += pre(event, state, ctx)
        for track in plan.trackers:
            track(event, state, ctx, size_alpha)
        if not state.apply(event, ctx.window, size_alpha):
            late += 1
        for post in plan.post:
            found += post(event, state, ctx)
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
        self._triggers: dict[str, _SymbolTriggers] = {}
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
            triggers = self._triggers.get(symbol)
            if triggers is None:
                triggers = self._triggers[symbol] = _SymbolTriggers()
            if share <= 0 or mid is None or qty == 0:
                triggers.put(account, 0, 0.0)
            else:
                sign = 1 if qty > 0 else -1
                triggers.put(account, sign, mid - sign * share / abs(qty))
        self._symbols_of[account] = set(state.positions)

    def due(self, symbol: str, mid: float) -> list[str]:
        """Holders of ``symbol`` the mid has crossed the trigger of, in a stable order."""
        triggers = self._triggers.get(symbol)
        return triggers.due(mid) if triggers is not None else []

    def forget(self, accounts: Iterable[str]) -> None:
        for account in accounts:
            for symbol in self._symbols_of.pop(account, set()):
                self._triggers[symbol].drop(account)


class _SymbolTriggers:
    """One symbol's re-mark triggers, sorted, so a quote finds the holders it crossed in
    O(log n) rather than comparing its mid with every holder's trigger (a quote of a widely
    held symbol, on every market timestamp)."""

    __slots__ = ("_always", "_falling", "_of", "_rising")

    def __init__(self) -> None:
        self._of: dict[str, tuple[int, float]] = {}
        """account -> (position sign, trigger mid); sign 0: re-mark on every quote."""
        self._always: set[str] = set()
        self._falling: list[tuple[float, str]] = []
        """Long holders, (trigger, account) sorted: due once the mid is at or below a trigger."""
        self._rising: list[tuple[float, str]] = []
        """Short holders: due once the mid is at or above a trigger."""

    def put(self, account: str, sign: int, trigger: float) -> None:
        self.drop(account)
        self._of[account] = (sign, trigger)
        if sign == 0:
            self._always.add(account)
        elif not math.isnan(trigger):  # a NaN trigger is never crossed
            insort(self._falling if sign > 0 else self._rising, (trigger, account))

    def drop(self, account: str) -> None:
        old = self._of.pop(account, None)
        if old is None:
            return
        sign, trigger = old
        if sign == 0:
            self._always.discard(account)
        elif not math.isnan(trigger):
            side = self._falling if sign > 0 else self._rising
            del side[bisect_left(side, (trigger, account))]

    def due(self, mid: float) -> list[str]:
        if not self._of:
            return []
        due = list(self._always)
        if math.isnan(mid):  # crosses no trigger
            return sorted(due)
        falling = self._falling
        due += (a for _, a in falling[bisect_left(falling, mid, key=_trigger) :])
        rising = self._rising
        due += (a for _, a in rising[: bisect_right(rising, mid, key=_trigger)])
        due.sort()
        return due


def _trigger(entry: tuple[float, str]) -> float:
    return entry[0]
