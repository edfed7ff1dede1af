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
import time
from collections import defaultdict, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from riskstream.offline.evaluation import (
    NS,
    TRADING_DAY_S,
    Found,
    ScenarioResult,
    ScenarioSpec,
    catches,
    median_delay_s,
    run_scenario,
    score_ours,
)
from riskstream.records import Category, OrderEvent, OrderEventType, Quote
from riskstream.records.market_data import MarketEvent
from riskstream.settings import REPO_ROOT, Settings


@dataclass
class Scored:
    """A scenario's result with the baseline's alerts beside riskstream's."""

    result: ScenarioResult
    baseline: list[Found]


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


def scored(job: tuple[ScenarioSpec, Settings]) -> Scored:
    spec, settings = job
    baseline = StaticBaseline()
    return Scored(run_scenario(spec, settings, baseline.feed), baseline.found)


def baseline_caught(runs: list[Scored], keep: int) -> tuple[dict[Category, int], int]:
    """Labels per typology the baseline's ``keep`` highest-scoring alerts catch."""
    ranked = sorted(
        ((a.score, i, j) for i, run in enumerate(runs) for j, a in enumerate(run.baseline)), reverse=True
    )
    kept: dict[int, list[Found]] = defaultdict(list)
    for _, i, j in ranked[:keep]:
        kept[i].append(runs[i].baseline[j])
    caught: dict[Category, int] = defaultdict(int)
    for i, run in enumerate(runs):
        for label in run.result.labels:
            if any(catches(a, label, False) for a in kept[i]):
                caught[label.category] += 1
    return caught, len(ranked)


def account_days(results: list[ScenarioResult]) -> float:
    return sum(r.accounts * r.duration_s / TRADING_DAY_S for r in results)


GENERATORS = {
    "sim": ("riskstream.sim.market", "limits.demo.toml"),
    "venue": ("riskstream.sim.venue", "limits.venue.toml"),
}
"""Generator -> (its module, the limits and owner links its accounts are configured with)."""


def scenario_arguments(parser: argparse.ArgumentParser) -> None:
    """The scenario set's arguments, shared with ``bench/calibration.py``."""
    parser.add_argument("--scenarios", type=int, default=8, help="scenarios per typology")
    parser.add_argument("--clean", type=int, default=4, help="clean days (no injection)")
    parser.add_argument("--rate", type=float, default=150.0, help="background actions per second (sim)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--only",
        action="append",
        choices=[*(c.value for c in Category), "clean"],
        help="run only these typologies' scenarios (repeatable; each keeps its seeds)",
    )


def scenario_specs(generator: str, args: argparse.Namespace) -> list[ScenarioSpec]:
    """The scenario set the arguments name: per typology its own seeds, whatever else runs."""
    out: list[ScenarioSpec] = []
    for t_index, typology in enumerate([*Category, None]):
        if args.only and (typology.value if typology is not None else "clean") not in args.only:
            continue
        for k in range(args.clean if typology is None else args.scenarios):
            seed = args.seed * 100_003 + t_index * 1_009 + k
            out.append(ScenarioSpec(typology, k, seed, args.rate, generator))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    scenario_arguments(parser)
    parser.add_argument(
        "--generator", choices=[*GENERATORS, "both"], default="both", help="which generator's table"
    )
    args = parser.parse_args()
    for generator in GENERATORS if args.generator == "both" else [args.generator]:
        table(generator, args)


def table(generator: str, args: argparse.Namespace) -> None:
    module, limits = GENERATORS[generator]
    settings = Settings(limits_file=REPO_ROOT / "deploy" / limits)
    jobs = [(spec, settings) for spec in scenario_specs(generator, args)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(scored, jobs))
    wall_s = time.perf_counter() - t0
    results = [r.result for r in runs]
    events = sum(r.events for r in results)
    days = account_days(results)
    clean = [r for r in results if r.typology is None]
    rows = score_ours(results)
    total_alerts = sum(len(r.ours) for r in results)
    base, base_all = baseline_caught(runs, total_alerts)
    print(
        f"\n## generator {generator} ({module})\n\n"
        f"{len(results)} scenarios ({args.scenarios} per typology, {args.clean} clean), {events} events, "
        f"seed {args.seed}, {wall_s:.0f}s wall\n"
    )
    header = (
        "typology | labels | precision | recall | F1 | median delay s | alerts/1000 acc/day | baseline recall"
    )
    print(f"| {header} |")
    print("|---|---|---|---|---|---|---|---|")
    for cat, row in rows.items():
        per_k = row.alerts / days * 1000 if days else 0.0
        b = base.get(cat, 0) / row.labels if row.labels else float("nan")
        print(
            f"| {cat.value} | {row.labels} | {row.precision():.2f} | {row.recall():.2f} | {row.f1():.2f} "
            f"| {median_delay_s(row):.3f} | {per_k:,.0f} | {b:.2f} |"
        )
    caught = sum(r.caught for r in rows.values())
    labels = sum(r.labels for r in rows.values())
    base_caught = sum(base.values())
    clean_alerts = sum(len(r.ours) for r in clean)
    clean_days = account_days(clean)
    print(
        f"\nall typologies: riskstream caught {caught}/{labels} labelled events with {total_alerts} alerts; "
        f"the static baseline, keeping its {total_alerts} highest-scoring of {base_all} alerts, caught "
        f"{base_caught}/{labels}: {caught / max(base_caught, 1) - 1:+.0%} more for riskstream"
    )
    print(
        f"clean days: {clean_alerts} alerts over {clean_days:.3f} account-days "
        f"({clean_alerts / clean_days * 1000 if clean_days else 0:,.0f} per 1000 accounts per day)"
    )


if __name__ == "__main__":
    main()
