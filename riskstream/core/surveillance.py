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
    detect_spoofing,
    detect_wash_trade,
)
from riskstream.core.state import AccountState
from riskstream.records import OrderEvent

PRE_APPLY = (detect_fat_finger,)
"""Detectors that compare the event with the state as it was before the event."""
POST_APPLY = (detect_limit_breach, detect_spoofing, detect_wash_trade)
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
        if not state.apply(event, ctx.window, size_alpha):
            late += 1
        for post in POST_APPLY:
            found.extend(post(event, state, ctx))
    return AccountBatchResult(found, late)
