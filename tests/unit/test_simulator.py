"""The simulator is deterministic, injects every typology with labels, and the pure detectors
find every labelled case in its traffic (no broker: the same functions the agents call)."""

from __future__ import annotations

import itertools

from riskstream.core.detectors import DetectionContext
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.surveillance import surveil_account
from riskstream.core.windows import SlidingWindow
from riskstream.detection import load_limits
from riskstream.records import Category, OrderEvent
from riskstream.settings import REPO_ROOT, Settings
from riskstream.sim.market import MarketSimulator

T0 = 1_764_064_800_000_000_000


def test_same_seed_same_traffic() -> None:
    a = list(itertools.islice(MarketSimulator(3, T0, 500).events(), 3000))
    b = list(itertools.islice(MarketSimulator(3, T0, 500).events(), 3000))
    c = list(itertools.islice(MarketSimulator(4, T0, 500).events(), 3000))
    assert a == b
    assert a != c


def test_detectors_catch_every_injected_case() -> None:
    settings = Settings(limits_file=REPO_ROOT / "deploy" / "limits.demo.toml")
    sim = MarketSimulator(7, T0, 500, inject_every_s=1.0)
    market: dict[str, SymbolState] = {}
    ctx = DetectionContext(
        settings.detectors, SlidingWindow.of_seconds(60, 5, 5000), load_limits(settings), market
    )
    accounts: dict[str, AccountState] = {}
    found = []
    for event in itertools.islice(sim.events(), 30 * 500):
        if isinstance(event, OrderEvent):
            state = accounts.setdefault(event.account, AccountState())
            found += surveil_account(state, [event], ctx, 0.05).candidates
        else:
            market.setdefault(event.symbol, SymbolState()).apply(event)
    labelled = [lb for lb in sim.labels if lb.end_ns < T0 + 28 * 10**9]
    assert {lb.category for lb in labelled} == set(Category)
    for label in labelled:
        hits = [
            c
            for c in found
            if c.category is label.category
            and c.entity.account == label.account
            and set(label.order_ids) <= set(c.evidence.order_ids)
        ]
        assert hits, f"missed {label}"
    injected_accounts = {lb.account for lb in sim.labels}
    false_alarms = [c for c in found if c.entity.account not in injected_accounts]
    assert len(false_alarms) <= len(labelled) // 4, false_alarms
