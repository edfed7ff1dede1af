"""The one fold of events into state and candidates, for the worker, the backtest and the tests.

Events must come in event-time order, market data before orders at the same time (the order
:mod:`riskstream.core.event_time` releases them in, and the order the backtest merges files in).
The fold is then a function of that sequence alone:

- an order is checked against the market as of its own event time: every quote at or before
  it, none after;
- re-marking of open positions (the loss limit on market moves) runs once per market
  timestamp, after every quote of that timestamp, in symbol order: which of two quotes with the
  same event time is folded first changes nothing;
- candidates that a previous run already raised before its checkpoint (a restart replaying
  from that checkpoint) are kept out by ``Replayed`` predicates the caller supplies, so the
  state is rebuilt exactly while nothing is raised twice with different evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import orjson

from riskstream.core.candidates import Candidate
from riskstream.core.detectors import DetectionContext, detect_loss_on_mark
from riskstream.core.detectors.linked_wash import LinkedFillBook, linked_fill, linked_wash_candidate
from riskstream.core.evidence import with_market_terms
from riskstream.core.expiry import IdleExpiry
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.surveillance import Holders, surveil_account, surveil_market
from riskstream.records import OrderEvent, OrderEventType
from riskstream.records.linked_fills import LinkedFill
from riskstream.records.market_data import MarketEvent

MarkGate = Callable[[str, Hashable], bool]
"""(account, source of the quote) -> whether this quote's re-mark of the account is new; False
when the account's state already holds its effect (it was checkpointed after that quote)."""


def always(_account: str, _source: Hashable) -> bool:
    return True


@dataclass(slots=True)
class OrderOutcome:
    candidates: list[Candidate]
    late: bool


@dataclass(slots=True)
class SurveillanceFold:
    """Market state of every symbol, the holders index, and the detectors run on each event.

    Account states are the caller's (the worker keeps them in a checkpointed store, the
    backtest in a dict), handed in per event and looked up for re-marks through ``account``.
    """

    ctx: DetectionContext
    size_alpha: float
    account: Callable[[str], AccountState | None]
    """The live state of an account this fold owns, or None (not owned here)."""
    mark_gate: MarkGate = always
    changed: Callable[[str], None] = lambda account: None
    """Called for an account whose state a re-mark or a linked pair changed (it must be written
    again)."""
    linked_inline: bool = True
    """Lit-book fills of linked accounts go straight into :attr:`linked` (one process owns every
    account: the backtest). The worker instead publishes them to ``linked-fills`` and feeds
    every worker's back through :meth:`on_linked_fill`."""
    linked_account: Callable[[LinkedFill], AccountState | None] | None = None
    """The state of a linked leg's account if this fold raises its alerts (default: ``account``)."""
    market: dict[str, SymbolState] = field(init=False)
    linked: LinkedFillBook = field(init=False)
    holders: Holders = field(default_factory=Holders)
    late_events: int = 0
    _marks_ts_ns: int = -1
    _marks_due: dict[str, Hashable] = field(default_factory=dict)
    """Symbols quoted at ``_marks_ts_ns`` whose holders are not yet re-marked, with the source of
    their first quote at that time."""

    def __post_init__(self) -> None:
        market = self.ctx.market
        if not isinstance(market, dict):
            raise TypeError("the fold's context must carry the dict of symbol states it fills")
        self.market = market
        params = self.ctx.params
        self.linked = LinkedFillBook(params.wash_match_window_s, params.wash_price_tolerance)

    def on_market(self, event: MarketEvent, source: Hashable, *, shocks: bool = True) -> list[Candidate]:
        """A quote or print. ``shocks``: whether this fold raises the symbol's market-wide
        candidates (one worker owns each symbol's; every worker keeps every symbol's state)."""
        found = self.flush_marks() if event.ts_ns != self._marks_ts_ns else []
        state = self.market.get(event.symbol)
        if state is None:
            state = self.market[event.symbol] = SymbolState()
        shock = surveil_market(state, event, self.ctx)
        if shocks:
            found += shock
        self._marks_ts_ns = event.ts_ns
        self._marks_due.setdefault(event.symbol, source)
        return found

    def on_order(self, state: AccountState, event: OrderEvent) -> OrderOutcome:
        """One order life-cycle event of an account this fold owns; mutates ``state``."""
        found = self.flush_marks()
        result = surveil_account(state, (event,), self.ctx, self.size_alpha)
        if event.event is OrderEventType.FILL:
            self.holders.update(event.account, state, self.ctx)
        self.late_events += result.late_events
        found += result.candidates
        if self.linked_inline:
            fill = linked_fill(event, self.ctx, 0)
            if fill is not None:
                found += self.on_linked_fill(fill)
        return OrderOutcome(found, result.late_events > 0)

    def on_linked_fill(self, fill: LinkedFill) -> list[Candidate]:
        """A lit-book fill of a linked account (any worker's): the alerts of the pair it
        completes, for the legs whose accounts this fold owns and has not flagged yet."""
        other = self.linked.add(fill)
        if other is None:
            return []
        state_of = self.linked_account or (lambda leg: self.account(leg.account))
        found: list[Candidate] = []
        for leg, against in ((fill, other), (other, fill)):
            state = state_of(leg)
            if state is None or leg.order_id in state.flagged:
                continue
            state.flagged.add(leg.order_id)
            self.changed(leg.account)
            found.append(with_market_terms(linked_wash_candidate(leg, against, self.ctx), self.ctx))
        return found

    def flush_marks(self) -> list[Candidate]:
        """Re-mark the holders of the symbols quoted at the last market timestamp. Run before
        the next event, and by the caller whenever it has released all it can (a quote's loss
        alerts must not wait for the next event)."""
        if not self._marks_due:
            return []
        due, self._marks_due = self._marks_due, {}
        found: list[Candidate] = []
        for symbol in sorted(due):
            market = self.market.get(symbol)
            mid = market.mid if market is not None else None
            if mid is None:
                continue
            for account in self.holders.due(symbol, mid):
                state = self.account(account)
                if state is None:
                    self.holders.forget([account])
                    continue
                if self.mark_gate(account, due[symbol]):
                    breaches = frozenset(state.open_breaches)
                    found.extend(detect_loss_on_mark(account, state, symbol, self._marks_ts_ns, self.ctx))
                    if frozenset(state.open_breaches) != breaches:
                        self.changed(account)
                # Fresh triggers from the state as it is and the market now: valid until either
                # changes, whether or not this quote's re-mark was new.
                self.holders.update(account, state, self.ctx)
        return found

    def hold(self, account: str, state: AccountState) -> None:
        """Index an account restored from a checkpoint: its positions are re-marked from the
        next quote of their symbols on, as if it had just traded."""
        self.holders.update(account, state, self.ctx)


class EventTimeDetector:
    """The fold over a whole history in one process (the backtest, the evaluation, the tests):
    it owns every account's state.

    ``idle_ttl_s``: accounts with no event for that long in event time are kept as their
    stored bytes only (:mod:`riskstream.core.expiry`) and decoded again at their
    next event, so a long history's memory follows the accounts active at once, not all of them.
    """

    def __init__(
        self,
        ctx: DetectionContext,
        size_alpha: float,
        accounts: dict[str, AccountState] | None = None,
        idle_ttl_s: float | None = None,
    ) -> None:
        self.accounts: dict[str, AccountState] = {} if accounts is None else accounts
        self.stored: dict[str, bytes] = {}
        """Expired accounts' states, encoded."""
        self.expired = 0
        """Times an account's live state was dropped for its stored form."""
        self._expiry = IdleExpiry(idle_ttl_s) if idle_ttl_s is not None else None
        self.fold = SurveillanceFold(ctx, size_alpha, self.account)
        self.ctx = ctx
        self.market = self.fold.market

    @property
    def holders(self) -> Holders:
        return self.fold.holders

    @property
    def late_events(self) -> int:
        return self.fold.late_events

    def account(self, account: str) -> AccountState | None:
        """An account's state, decoded again if it had expired (its next order, or a quote
        crossing one of its positions' re-mark triggers)."""
        state = self.accounts.get(account)
        if state is None:
            stored = self.stored.pop(account, None)
            if stored is not None:
                state = self.accounts[account] = AccountState.from_json(orjson.loads(stored))
                if self._expiry is not None:
                    self._expiry.seen(account, self._expiry.now_ns)
        return state

    def feed(self, event: OrderEvent | MarketEvent) -> list[Candidate]:
        if isinstance(event, OrderEvent):
            state = self.account(event.account)
            if state is None:
                state = self.accounts[event.account] = AccountState()
            found = self.fold.on_order(state, event).candidates
            if self._expiry is not None:
                self._expiry.seen(event.account, event.ts_ns)
                self._expire()
            return found
        return self.fold.on_market(event, None)

    def _expire(self) -> None:
        assert self._expiry is not None
        for account in self._expiry.due():
            state = self.accounts.get(account)
            if state is not None:
                self.stored[account] = state.to_bytes()
                del self.accounts[account]
                self.expired += 1

    def finish(self) -> list[Candidate]:
        """What the last market timestamp still owes (its re-marks)."""
        return self.fold.flush_marks()
