"""Detection quality: precision, recall, F1, median delay and alert volume per typology, for
riskstream's detectors and for a static-threshold baseline, on labelled simulated scenarios.

    python -m bench.detection --scenarios 8 --clean 4

Each scenario is a seeded simulated market (``riskstream.sim.market``) with one typology
injected a few times (ground-truth labels), or none (a clean day). Events go, in event-time
order, through the backtest's detector (the worker's pure detectors and rule scorer), and
through the baseline. A label counts as caught when an alert of its category names its account
(its symbol for market shocks) and shares an order with it or falls inside
[start - 1 s, end + 10 s] of event time. An alert counts as true when it catches some label of
its category. Delay is the alert's event time minus the label's end (the pattern's completion),
floored at 0.

The baseline is what surveillance teams start from: single-rule static thresholds (order size,
an account's cancel ratio, a symbol's price move, a position change, a same-quantity round
trip). Its alerts carry no typology; a label counts as caught by the baseline when any of its
alerts names the label's account (symbol) in the same interval. For the comparison at the same
alert volume, the baseline keeps its K highest-scoring alerts, K = riskstream's alert count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from riskstream.detection import detection_context
from riskstream.offline.backtest import EventTimeDetector
from riskstream.records import Category, OrderEvent, OrderEventType, Quote
from riskstream.records.market_data import MarketEvent
from riskstream.settings import REPO_ROOT, Settings
from riskstream.sim.market import CLOSE, Label, MarketSimulator

NS = 1_000_000_000
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
    baseline: list[Found]
    accounts: int
    duration_s: float
    events: int


class StaticBaseline:
    """Single-rule thresholds, one alert per rule and entity per minute at most."""

    ORDER_QTY = 10_000.0
    CANCEL_RATIO = 0.9
    MIN_ORDERS = 20
    PRICE_MOVE = 0.01
    POSITION_CHANGE = 20_000.0
    SPAN_NS = 60 * NS

    def __init__(self) -> None:
        self.found: list[Found] = []
        self._last: dict[tuple[str, str], int] = {}
        self._orders: dict[str, deque[tuple[int, bool]]] = defaultdict(deque)
        self._mids: dict[str, deque[tuple[int, float]]] = defaultdict(deque)
        self._fills: dict[tuple[str, str], deque[tuple[int, float]]] = defaultdict(deque)

    def _alert(
        self, rule: str, account: str | None, symbol: str, ts: int, score: float, oid: str = ""
    ) -> None:
        key = (rule, account or symbol)
        if ts - self._last.get(key, -self.SPAN_NS) < self.SPAN_NS:
            return
        self._last[key] = ts
        self.found.append(Found(None, account, symbol, ts, frozenset({oid} if oid else ()), score))

    def feed(self, event: OrderEvent | MarketEvent) -> None:
        ts = event.ts_ns
        if isinstance(event, Quote):
            mids = self._mids[event.symbol]
            mid = (event.bid + event.ask) / 2
            mids.append((ts, mid))
            while mids[0][0] < ts - self.SPAN_NS:
                mids.popleft()
            move = abs(mid / mids[0][1] - 1)
            if move >= self.PRICE_MOVE:
                self._alert("price_move", None, event.symbol, ts, move / self.PRICE_MOVE)
            return
        if not isinstance(event, OrderEvent):
            return
        acc = event.account
        if event.event is OrderEventType.NEW and event.qty >= self.ORDER_QTY:
            self._alert("order_size", acc, event.symbol, ts, event.qty / self.ORDER_QTY, event.order_id)
        if event.event in (OrderEventType.NEW, OrderEventType.CANCEL):
            orders = self._orders[acc]
            orders.append((ts, event.event is OrderEventType.CANCEL))
            while orders[0][0] < ts - self.SPAN_NS:
                orders.popleft()
            news = sum(1 for _, c in orders if not c)
            cancels = len(orders) - news
            if news >= self.MIN_ORDERS and cancels / news >= self.CANCEL_RATIO:
                score = cancels / news / self.CANCEL_RATIO * news / self.MIN_ORDERS
                self._alert("cancel_ratio", acc, event.symbol, ts, score, event.order_id)
        if event.event is OrderEventType.FILL and event.last_qty:
            fills = self._fills[(acc, event.symbol)]
            fills.append((ts, event.side.sign * event.last_qty))
            while fills[0][0] < ts - self.SPAN_NS:
                fills.popleft()
            change = abs(sum(q for _, q in fills))
            if change >= self.POSITION_CHANGE:
                self._alert("position", acc, event.symbol, ts, change / self.POSITION_CHANGE, event.order_id)
            opposite = [q for _, q in fills if q == -event.side.sign * event.last_qty]
            if opposite:
                self._alert("round_trip", acc, event.symbol, ts, 1.0, event.order_id)


def _scenario_start(typology: Category | None, index: int) -> int:
    day = START.timestamp() + index * 86_400 * 7
    if typology is Category.MARKING_THE_CLOSE:
        close_ns = CLOSE.next_close_ns(int(day * NS))
        return close_ns - int((WARMUP_S + 330) * NS)
    return int((day + (index % 5) * 3_600) * NS)


def run_scenario(args: tuple[Category | None, int, int, float, Settings]) -> ScenarioResult:
    typology, index, seed, rate, settings = args
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
    end_ns = start_ns + int(duration_s * NS)
    detector = EventTimeDetector(detection_context(settings, {}), settings.windows.size_ewma_alpha)
    baseline = StaticBaseline()
    ours: list[Found] = []
    accounts: set[str] = set()
    events = 0
    for event in sim.events():
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
        baseline.feed(event)
    labels = list(sim.labels)
    return ScenarioResult(typology, labels, ours, baseline.found, len(accounts), duration_s, events)


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


def baseline_caught(results: list[ScenarioResult], keep: int) -> tuple[dict[Category, int], int]:
    """Labels per typology the baseline's ``keep`` highest-scoring alerts catch."""
    ranked = sorted(
        ((a.score, i, j) for i, res in enumerate(results) for j, a in enumerate(res.baseline)), reverse=True
    )
    kept: dict[int, list[Found]] = defaultdict(list)
    for _, i, j in ranked[:keep]:
        kept[i].append(results[i].baseline[j])
    caught: dict[Category, int] = defaultdict(int)
    for i, res in enumerate(results):
        for label in res.labels:
            if any(catches(a, label, False) for a in kept[i]):
                caught[label.category] += 1
    return caught, len(ranked)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", type=int, default=8, help="scenarios per typology")
    parser.add_argument("--clean", type=int, default=4, help="clean days (no injection)")
    parser.add_argument("--rate", type=float, default=150.0, help="background actions per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    settings = Settings(limits_file=REPO_ROOT / "deploy" / "limits.demo.toml")
    jobs: list[tuple[Category | None, int, int, float, Settings]] = []
    for t_index, typology in enumerate([*Category, None]):
        count = args.clean if typology is None else args.scenarios
        for k in range(count):
            jobs.append((typology, k, args.seed * 100_003 + t_index * 1_009 + k, args.rate, settings))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(run_scenario, jobs))
    wall_s = time.perf_counter() - t0
    events = sum(r.events for r in results)
    account_days = sum(r.accounts * r.duration_s / TRADING_DAY_S for r in results)
    clean = [r for r in results if r.typology is None]
    clean_days = sum(r.accounts * r.duration_s / TRADING_DAY_S for r in clean)
    rows = score_ours(results)
    total_alerts = sum(len(r.ours) for r in results)
    base, base_all = baseline_caught(results, total_alerts)
    print(
        f"{len(results)} scenarios ({args.scenarios} per typology, {args.clean} clean), {events} events, "
        f"rate {args.rate:g}/s, seed {args.seed}, {wall_s:.0f}s wall\n"
    )
    header = (
        "typology | labels | precision | recall | F1 | median delay s | alerts/1000 acc/day | baseline recall"
    )
    print(f"| {header} |")
    print("|---|---|---|---|---|---|---|---|")
    for cat, row in rows.items():
        delay = statistics.median(row.delays_s) if row.delays_s else float("nan")
        per_k = row.alerts / account_days * 1000 if account_days else 0.0
        b = base.get(cat, 0) / row.labels if row.labels else float("nan")
        print(
            f"| {cat.value} | {row.labels} | {row.precision():.2f} | {row.recall():.2f} | {row.f1():.2f} "
            f"| {delay:.3f} | {per_k:,.0f} | {b:.2f} |"
        )
    caught = sum(r.caught for r in rows.values())
    labels = sum(r.labels for r in rows.values())
    base_caught = sum(base.values())
    clean_alerts = sum(len(r.ours) for r in clean)
    print(
        f"\nall typologies: riskstream caught {caught}/{labels} labelled events with {total_alerts} alerts; "
        f"the static baseline, keeping its {total_alerts} highest-scoring of {base_all} alerts, caught "
        f"{base_caught}/{labels}: {caught / max(base_caught, 1) - 1:+.0%} more for riskstream"
    )
    print(
        f"clean days: {clean_alerts} alerts over {clean_days * 1000 / 1000:.3f} account-days "
        f"({clean_alerts / clean_days * 1000 if clean_days else 0:,.0f} per 1000 accounts per day)"
    )


if __name__ == "__main__":
    main()
