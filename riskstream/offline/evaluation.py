"""Detection quality on labelled simulated scenarios: run the backtest's detector over a seeded
market with one typology injected (or none), and match its alerts with the ground truth.

Used by ``bench/detection.py`` (many scenarios, the table in bench/README.md) and by the tests
(one scenario per typology). A label counts as caught when an alert of its category names its
account (its symbol for market shocks) and shares an order with it or falls inside
[start - 1 s, end + 10 s] of event time; an alert is true when it catches a label of its category.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from riskstream.core.fold import EventTimeDetector
from riskstream.detection import detection_context
from riskstream.records import Category, OrderEvent
from riskstream.records.codec import NS_PER_S
from riskstream.records.market_data import MarketEvent
from riskstream.settings import Settings
from riskstream.sim.market import CLOSE, Label, MarketSimulator
from riskstream.sim.venue import VenueSimulator

NS = NS_PER_S
TRADING_DAY_S = 23_400
"""6.5 hours: alert volumes are per trading day."""
MATCH_BEFORE_NS = 1 * NS
MATCH_AFTER_NS = 10 * NS
START = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
"""A Tuesday, 09:30 New York: scenarios run in the session."""
WARMUP_S = 70.0
"""Market data before the first injection: the shock baselines need a minute."""
PLAN: dict[Category | None, tuple[float, int]] = {
    Category.RAMPING: (160.0, 2),
    Category.MARKET_SHOCK: (60.0, 3),
    Category.MARKING_THE_CLOSE: (0.0, 1),
    None: (0.0, 0),
}
"""Per typology (None: clean day): seconds between injections, injections per scenario."""
DEFAULT_PLAN = (20.0, 4)


@dataclass(frozen=True, slots=True)
class Found:
    """One alert (ours or the baseline's), reduced to what matching needs."""

    category: Category | None
    account: str | None
    symbol: str | None
    event_ns: int
    order_ids: frozenset[str]
    score: float


@dataclass
class ScenarioResult:
    typology: Category | None
    labels: list[Label]
    ours: list[Found]
    accounts: int
    duration_s: float
    events: int


def _scenario_start(typology: Category | None, index: int) -> int:
    day = START.timestamp() + index * 86_400 * 7
    if typology is Category.MARKING_THE_CLOSE:
        close_ns = CLOSE.next_close_ns(int(day * NS))
        return close_ns - int((WARMUP_S + 330) * NS)
    return int((day + (index % 5) * 3_600) * NS)


@dataclass(frozen=True, slots=True)
class ScenarioSpec:
    typology: Category | None
    """The typology injected; None for a clean day."""
    index: int
    """Which scenario of its typology: sets the simulated date and hour."""
    seed: int
    rate: float
    """Background actions per second of event time (the ``sim`` generator's)."""
    generator: str = "sim"
    """``sim`` (:mod:`riskstream.sim.market`) or ``venue`` (:mod:`riskstream.sim.venue`)."""


VENUE_PLAN: dict[Category | None, tuple[float, int]] = {
    Category.RAMPING: (480.0, 2),
    Category.MARKET_SHOCK: (90.0, 3),
    Category.MARKING_THE_CLOSE: (0.0, 1),
    Category.LAYERING: (120.0, 3),
    None: (0.0, 0),
}
"""The venue generator's cases: per typology, seconds between cases and cases per scenario."""
VENUE_DEFAULT_PLAN = (30.0, 4)
VENUE_WARMUP_S = 120.0
"""Before the first case: the market's and accounts' baselines settle."""


def run_scenario(
    spec: ScenarioSpec, settings: Settings, observe: Callable[[OrderEvent | MarketEvent], None] | None = None
) -> ScenarioResult:
    """One scenario through the detectors; ``observe`` sees every event too (a baseline)."""
    if spec.generator == "venue":
        return _run_venue(spec, settings, observe)
    typology, index, seed, rate = spec.typology, spec.index, spec.seed, spec.rate
    every_s, cases = PLAN.get(typology, DEFAULT_PLAN)
    start_ns = _scenario_start(typology, index)
    first_s = WARMUP_S + (150.0 if typology is Category.MARKING_THE_CLOSE else 0.0)
    sim = MarketSimulator(
        seed,
        start_ns,
        rate,
        inject_every_s=every_s or 1e9,
        typologies=[typology] if typology is not None else [],
        first_inject_s=first_s,
        max_injections=cases,
    )
    duration_s = (
        first_s
        + max(cases - 1, 0) * every_s
        + (200.0 if typology in (Category.RAMPING, Category.MARKING_THE_CLOSE) else 30.0)
    )
    if typology is None:
        duration_s = WARMUP_S + 240.0
    return _detect(typology, sim.events(), sim.labels, start_ns, duration_s, settings, observe)


def _run_venue(
    spec: ScenarioSpec, settings: Settings, observe: Callable[[OrderEvent | MarketEvent], None] | None
) -> ScenarioResult:
    typology = spec.typology
    every_s, cases = VENUE_PLAN.get(typology, VENUE_DEFAULT_PLAN)
    start_ns = _scenario_start(None, spec.index) + int(1_800 * NS)
    if typology is Category.MARKING_THE_CLOSE or (typology is None and spec.index % 2 == 1):
        # Half the clean days take in the close and its cross: the honest look-alike of a
        # push into the close and of a price shock.
        start_ns = CLOSE.next_close_ns(start_ns) - int((VENUE_WARMUP_S + 60) * NS)
    sim = VenueSimulator(spec.seed, start_ns, typology, cases, every_s or 1e9, first_s=VENUE_WARMUP_S)
    if typology is None:
        duration_s = VENUE_WARMUP_S + 300.0
    elif typology is Category.MARKING_THE_CLOSE:
        duration_s = VENUE_WARMUP_S + 75.0
    else:
        tail_s = 420.0 if typology is Category.RAMPING else (120.0 if typology is Category.LAYERING else 40.0)
        duration_s = VENUE_WARMUP_S + max(cases - 1, 0) * every_s + tail_s
    return _detect(typology, sim.events(), sim.labels, start_ns, duration_s, settings, observe)


def _detect(
    typology: Category | None,
    events_in: Iterable[OrderEvent | MarketEvent],
    labels_out: list[Label],
    start_ns: int,
    duration_s: float,
    settings: Settings,
    observe: Callable[[OrderEvent | MarketEvent], None] | None,
) -> ScenarioResult:
    end_ns = start_ns + int(duration_s * NS)
    detector = EventTimeDetector(
        detection_context(settings, {}),
        settings.windows.size_ewma_alpha,
        idle_ttl_s=settings.stream.account_idle_ttl_s,
    )
    ours: list[Found] = []
    accounts: set[str] = set()
    events = 0
    for event in events_in:
        if event.ts_ns > end_ns:
            break
        events += 1
        if isinstance(event, OrderEvent):
            accounts.add(event.account)
        for c in detector.feed(event):
            ours.append(
                Found(
                    c.category,
                    c.entity.account,
                    c.entity.symbol,
                    c.event_ns,
                    frozenset(c.evidence.order_ids),
                    c.strength,
                )
            )
        if observe is not None:
            observe(event)
    labels = [label for label in labels_out if label.start_ns <= end_ns]
    return ScenarioResult(typology, labels, ours, len(accounts), duration_s, events)


def catches(alert: Found, label: Label, need_category: bool) -> bool:
    if need_category and alert.category is not label.category:
        return False
    if label.account is not None:
        if alert.account != label.account:
            return False
    elif alert.account is not None or alert.symbol != label.symbol:
        return False
    if alert.order_ids & set(label.order_ids):
        return True
    return label.start_ns - MATCH_BEFORE_NS <= alert.event_ns <= label.end_ns + MATCH_AFTER_NS


@dataclass
class Row:
    labels: int = 0
    caught: int = 0
    alerts: int = 0
    true_alerts: int = 0
    delays_s: list[float] = field(default_factory=list)

    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else float("nan")

    def recall(self) -> float:
        return self.caught / self.labels if self.labels else float("nan")

    def f1(self) -> float:
        p, r = self.precision(), self.recall()
        return 2 * p * r / (p + r) if p + r > 0 else 0.0


def score_ours(results: Iterable[ScenarioResult]) -> dict[Category, Row]:
    rows = {c: Row() for c in Category}
    for res in results:
        for label in res.labels:
            row = rows[label.category]
            row.labels += 1
            hits = [a for a in res.ours if catches(a, label, True)]
            if hits:
                row.caught += 1
                row.delays_s.append(max(0.0, (min(a.event_ns for a in hits) - label.end_ns) / NS))
        for alert in res.ours:
            assert alert.category is not None
            row = rows[alert.category]
            row.alerts += 1
            if any(catches(alert, lb, True) for lb in res.labels):
                row.true_alerts += 1
    return rows


def median_delay_s(row: Row) -> float:
    return statistics.median(row.delays_s) if row.delays_s else float("nan")
