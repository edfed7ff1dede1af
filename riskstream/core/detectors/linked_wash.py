"""Wash trades between linked accounts on a lit book, where the venue does not name the
other side of a fill.

Two accounts of one beneficial owner that buy and sell the same quantity at the same price in
the same instant traded with each other: the owner's position did not change, the tape shows a
trade that no one's interest made (the indicators of wash and prearranged trades in Annex II of
Delegated Regulation (EU) 2016/522 and FINRA's findings on wash and prearranged trades). The
two legs of one lit-book match are executed in one matching-engine event, so they carry the
same event time, to within ``wash_match_window_s``.

The honest look-alikes it is designed not to flag: the two accounts of one owner trading the
same name on the same day at different moments, in different sizes or at different prices
(a fund manager's two funds rebalancing); unlinked accounts crossing each other (every trade
has a buyer and a seller); one account's own partial fills.

The book is order-insensitive: a pair is found whichever leg arrives first, so the worker
(which sees the legs in the order the owning workers published them) and the backtest (event
time) raise the same pairs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from riskstream.core.candidates import Candidate
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.windows import NS_PER_S
from riskstream.records import AlertEntity, Category, Evidence, OrderEvent, OrderEventType, Side, WindowBounds
from riskstream.records.linked_fills import LinkedFill

HORIZON_S = 900.0
"""How long (event time, behind the owner's newest fill) a leg waits for its other leg: the
lag one worker may run behind another before a pair across them is lost."""
MAX_FILLS_PER_OWNER = 20_000
"""Bound on the legs kept per owner, whatever the owner's trading rate."""


LegKey = tuple[str, Side, float]
"""(symbol, side, quantity): the only legs a fill can pair with are the other side's of its own."""


@dataclass(slots=True)
class _OwnerBook:
    fills: deque[LinkedFill] = field(default_factory=deque)
    """Newest last (arrival order); evicted by event time and count."""
    by_leg: dict[LegKey, deque[LinkedFill]] = field(default_factory=dict)
    """The same fills by (symbol, side, quantity), each in arrival order."""
    ids: set[str] = field(default_factory=set)
    paired: set[str] = field(default_factory=set)
    newest_ns: int = 0


@dataclass(slots=True)
class LinkedFillBook:
    """Recent lit-book fills of linked accounts, per owner, matched into wash pairs."""

    match_window_s: float
    price_tolerance: float
    """Greatest price difference of the two legs, as a fraction of the price."""
    _owners: dict[str, _OwnerBook] = field(default_factory=dict)

    def add(self, fill: LinkedFill) -> LinkedFill | None:
        """Take one leg; return the other leg of its pair when this fill completes one (None:
        no pair yet, or a fill already seen)."""
        book = self._owners.setdefault(fill.owner, _OwnerBook())
        if fill.fill_id in book.ids:
            return None
        match_ns = int(self.match_window_s * NS_PER_S)
        best: tuple[int, int, str, str] | None = None
        other: LinkedFill | None = None
        for leg in book.by_leg.get((fill.symbol, fill.side.opposite, fill.qty), ()):
            if (
                leg.fill_id in book.paired
                or leg.account == fill.account
                or abs(leg.ts_ns - fill.ts_ns) > match_ns
                or abs(leg.price - fill.price) > self.price_tolerance * fill.price
            ):
                continue
            rank = (abs(leg.ts_ns - fill.ts_ns), leg.ts_ns, leg.account, leg.order_id)
            if best is None or rank < best:
                best, other = rank, leg
        book.fills.append(fill)
        book.by_leg.setdefault((fill.symbol, fill.side, fill.qty), deque()).append(fill)
        book.ids.add(fill.fill_id)
        if other is not None:
            book.paired.update((fill.fill_id, other.fill_id))
        book.newest_ns = max(book.newest_ns, fill.ts_ns)
        self._evict(book)
        return other

    def _evict(self, book: _OwnerBook) -> None:
        oldest_ns = book.newest_ns - int(HORIZON_S * NS_PER_S)
        fills = book.fills
        while fills and (fills[0].ts_ns < oldest_ns or len(fills) > MAX_FILLS_PER_OWNER):
            gone = fills.popleft()
            # Both are in arrival order: the oldest of the book is the oldest of its leg key.
            key = (gone.symbol, gone.side, gone.qty)
            same = book.by_leg[key]
            same.popleft()
            if not same:
                del book.by_leg[key]
            book.ids.discard(gone.fill_id)
            book.paired.discard(gone.fill_id)

    def held(self) -> int:
        return sum(len(b.fills) for b in self._owners.values())


def linked_fill(event: OrderEvent, ctx: DetectionContext, partition: int) -> LinkedFill | None:
    """The linked-fills record of ``event``: a fill that names no counterparty (the lit book) of
    an account the limits file links to a beneficial owner; None for any other event."""
    if event.event is not OrderEventType.FILL or event.counterparty is not None:
        return None
    owner = ctx.limits.owner_of.get(event.account)
    if owner is None:
        return None
    assert event.last_qty is not None and event.last_px is not None
    return LinkedFill(
        owner=owner,
        account=event.account,
        partition=partition,
        order_id=event.order_id,
        symbol=event.symbol,
        side=event.side,
        qty=event.last_qty,
        price=event.last_px,
        ts_ns=event.ts_ns,
    )


def linked_wash_candidate(leg: LinkedFill, other: LinkedFill, ctx: DetectionContext) -> Candidate:
    """The alert of ``leg``'s account for the pair: both legs' orders, the other account named."""
    gap_s = abs(leg.ts_ns - other.ts_ns) / NS_PER_S
    did = "bought" if leg.side is Side.BUY else "sold"
    it_did = "sold" if leg.side is Side.BUY else "bought"
    return Candidate(
        category=Category.WASH_TRADE,
        entity=AlertEntity(leg.account, leg.symbol),
        window=WindowBounds(min(leg.ts_ns, other.ts_ns), max(leg.ts_ns, other.ts_ns)),
        evidence=Evidence(
            features={
                "qty": leg.qty,
                "price": leg.price,
                "price_gap": abs(leg.price - other.price),
                "seconds_apart": round(gap_s, 6),
                "self_match": 0.0,
            },
            order_ids=(leg.order_id, other.order_id),
            summary=(
                f"{did} {leg.qty:g} @ {leg.price:g} on the lit book as linked account {other.account} "
                f"(owner {leg.owner}) {it_did} {other.qty:g} @ {other.price:g}, {gap_s:.3f}s apart: "
                "no change in the owner's position"
            ),
        ),
        strength=1.0 + max(0.0, 1.0 - gap_s / ctx.params.wash_match_window_s) * 0.25,
        discriminator=f"linked:{other.account}",
    )
