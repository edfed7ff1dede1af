"""The simulator is deterministic, injects every typology with labels, and the pure detectors
find every labelled case in its traffic (no broker: the same functions the agents call).
The many-scenario version with precision and recall is bench/detection.py."""

from __future__ import annotations

import itertools

import pytest

from riskstream.offline.evaluation import ScenarioSpec, catches, run_scenario
from riskstream.records import Category
from riskstream.settings import REPO_ROOT, Settings
from riskstream.sim.market import MarketSimulator

T0 = 1_764_064_800_000_000_000


def test_same_seed_same_traffic() -> None:
    a = list(itertools.islice(MarketSimulator(3, T0, 500).events(), 3000))
    b = list(itertools.islice(MarketSimulator(3, T0, 500).events(), 3000))
    c = list(itertools.islice(MarketSimulator(4, T0, 500).events(), 3000))
    assert a == b
    assert a != c


@pytest.mark.parametrize("typology", [*Category, None], ids=lambda c: c.value if c else "clean")
def test_detectors_catch_every_injected_case_of_each_typology(typology: Category | None) -> None:
    """One seeded scenario per typology through the backtest's detector: every labelled case is
    caught, and no more than one alert of the scenario is false (the honest look-alikes run in
    every scenario)."""
    settings = Settings(limits_file=REPO_ROOT / "deploy" / "limits.demo.toml")
    result = run_scenario(ScenarioSpec(typology, 0, 11, 100.0), settings)
    assert (len(result.labels) > 0) is (typology is not None)
    for label in result.labels:
        assert label.category is typology
        assert any(catches(a, label, True) for a in result.ours), f"missed {label}"
    false = [a for a in result.ours if not any(catches(a, lb, True) for lb in result.labels)]
    assert len(false) <= 1, false
