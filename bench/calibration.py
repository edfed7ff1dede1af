"""Calibration curves: precision, recall and alert volume per typology as its thresholds move,
on both in-project generators, so a compliance team can pick an operating point.

    python -m bench.calibration --scenarios 8 --clean 4

A curve is a series of real runs, not a cut on one run's scores: a detector that fires once per
episode fires earlier, and on weaker evidence, when its line is lower, so a score cut of a loose
run would misstate what the stricter setting catches. Each run scales the thresholds of every
typology by the same sensitivity multiplier ``m`` (``m`` > 1 is stricter: a higher line for
an "at least" threshold, a tighter one for an "at most" threshold such as the wash-trade match
window). The detectors do not read one another's candidates, so one run gives every curve its
point at ``m``. ``m`` = 1 is the shipped default: the row ``bench/detection.py`` reports.

Limit breaches have no curve: their line is each account's configured limit, which the firm
sets, not the detector.

The alert volume is per 1 000 accounts per trading day, over the scenarios with injected
abuse and over the clean days alone (the load an analyst team would see on an ordinary day).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from bench.detection import GENERATORS, account_days, scenario_arguments, scenario_specs
from riskstream.offline.evaluation import ScenarioResult, ScenarioSpec, run_scenario, score_ours
from riskstream.records import Category
from riskstream.settings import REPO_ROOT, DetectorSettings, Settings


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str
    """A field of :class:`riskstream.settings.DetectorSettings`."""
    at_least: bool = True
    """True: the pattern must reach the value (scaled by m); False: stay within it (divided)."""


CURVES: dict[Category, tuple[Threshold, ...]] = {
    Category.FAT_FINGER: (
        Threshold("fat_finger_size_multiple"),
        Threshold("fat_finger_own_sigmas"),
        Threshold("fat_finger_depth_multiple"),
        Threshold("fat_finger_price_band"),
    ),
    Category.SPOOFING: (Threshold("spoof_min_touch_multiple"), Threshold("spoof_volume_ratio")),
    Category.LAYERING: (Threshold("layering_min_levels"),),
    Category.WASH_TRADE: (Threshold("wash_match_window_s", at_least=False),),
    Category.MOMENTUM_IGNITION: (
        Threshold("ignition_min_touch_multiple"),
        Threshold("ignition_min_move_spreads"),
        Threshold("ignition_min_move_sigmas"),
    ),
    Category.RAMPING: (
        Threshold("ramp_min_participation"),
        Threshold("ramp_min_move_sigmas"),
        Threshold("ramp_min_move_spreads"),
    ),
    Category.MARKING_THE_CLOSE: (
        Threshold("close_min_participation"),
        Threshold("close_min_move_spreads"),
        Threshold("close_min_move_sigmas"),
    ),
    Category.QUOTE_STUFFING: (Threshold("stuffing_rate_multiple"), Threshold("stuffing_own_rate_multiple")),
    Category.MARKET_SHOCK: (
        Threshold("shock_volatility_multiple"),
        Threshold("shock_spread_multiple"),
        Threshold("shock_volume_multiple"),
        Threshold("shock_gap_sigmas"),
    ),
}
"""Per typology, the thresholds its sensitivity multiplier moves."""


HEADER = "m | thresholds | precision | recall | alerts | per 1000 acc/day | clean days, per 1000 acc/day"


def scaled(detectors: DetectorSettings, m: float) -> DetectorSettings:
    """The detector settings with every curve's thresholds moved by ``m``, validated again
    (a multiplier that takes a threshold out of its allowed range fails loudly)."""
    values = detectors.model_dump()
    for thresholds in CURVES.values():
        for t in thresholds:
            value = values[t.name]
            moved = value * m if t.at_least else value / m
            values[t.name] = max(2, round(moved)) if isinstance(value, int) else moved
    return DetectorSettings.model_validate(values)


def run(job: tuple[float, ScenarioSpec, Settings]) -> tuple[float, ScenarioResult]:
    m, spec, settings = job
    return m, run_scenario(spec, settings)


def curve_rows(m: float, results: list[ScenarioResult], detectors: DetectorSettings) -> dict[Category, str]:
    rows = score_ours(results)
    days = account_days(results)
    clean = [r for r in results if r.typology is None]
    clean_days = account_days(clean)
    out: dict[Category, str] = {}
    for category, thresholds in CURVES.items():
        row = rows[category]
        clean_alerts = sum(1 for r in clean for a in r.ours if a.category is category)
        values = ", ".join(f"{t.name} {_fmt(getattr(detectors, t.name))}" for t in thresholds)
        out[category] = (
            f"| {m:g} | {values} | {row.precision():.2f} | {row.recall():.2f} | {row.alerts} "
            f"| {row.alerts / days * 1000 if days else 0:,.0f} "
            f"| {clean_alerts / clean_days * 1000 if clean_days else 0:,.0f} |"
        )
    return out


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, int) or value >= 0.01 else f"{value:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    scenario_arguments(parser)
    parser.add_argument("--multipliers", default="0.5,0.7,1,1.4,2", help="sensitivity multipliers m")
    parser.add_argument("--generator", choices=[*GENERATORS, "both"], default="both")
    args = parser.parse_args()
    multipliers = [float(x) for x in args.multipliers.split(",")]
    for generator in GENERATORS if args.generator == "both" else [args.generator]:
        curves(generator, multipliers, args)


def curves(generator: str, multipliers: list[float], args: argparse.Namespace) -> None:
    base = Settings(limits_file=REPO_ROOT / "deploy" / GENERATORS[generator][1])
    settings = {m: base.model_copy(update={"detectors": scaled(base.detectors, m)}) for m in multipliers}
    jobs = [(m, spec, settings[m]) for m in multipliers for spec in scenario_specs(generator, args)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        done = list(pool.map(run, jobs, chunksize=1))
    wall_s = time.perf_counter() - t0
    by_m: dict[float, list[ScenarioResult]] = {m: [] for m in multipliers}
    for m, result in done:
        by_m[m].append(result)
    rows = {m: curve_rows(m, by_m[m], settings[m].detectors) for m in multipliers}
    print(
        f"\n## generator {generator}: {len(jobs) // len(multipliers)} scenarios per point "
        f"({args.scenarios} per typology, {args.clean} clean), seed {args.seed}, {wall_s:.0f}s wall"
    )
    for category in CURVES:
        print(f"\n### {category.value}\n")
        print(f"| {HEADER} |")
        print("|---|---|---|---|---|---|---|")
        for m in multipliers:
            print(rows[m][category])


if __name__ == "__main__":
    main()
