"""``bench/soak.py`` as CI runs it: a short smoke run of the real embedded stack, which must
report every interval with the worker consuming what the simulator offered."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.soak import AlertTally, bucket_quantile, pause_buckets
from riskstream.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def test_a_short_soak_reports_each_interval_with_events_consumed() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--minutes",
            "0.5",
            "--interval-s",
            "10",
            "--rate",
            "100",
            "--inject-every-s",
            "1",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["min", "offered/s"])
    rows = [line.split() for line in lines[header + 1 :] if line and line[0] != "o"]
    assert len(rows) >= 3
    assert sum(float(r[2].replace(",", "")) for r in rows) > 0
    restarts = lines[header].split().index("restarts")
    assert all(float(r[restarts]).is_integer() and float(r[restarts]) >= 0 for r in rows)
    assert lines[-1].startswith("offered ")


def test_checkpoint_pause_quantile_is_read_from_the_histograms_increase() -> None:
    before = pause_buckets('riskstream_stage_seconds_bucket{stage="checkpoint_pause",le="0.01"} 100.0\n')
    text = "\n".join(
        f'riskstream_stage_seconds_bucket{{stage="checkpoint_pause",le="{le}"}} {n}'
        for le, n in (("0.01", 190.0), ("0.05", 199.0), ("+Inf", 300.0))
    )
    now = pause_buckets(text)
    assert bucket_quantile(now, before, 0.25) == 0.01  # 90 of the 200 new ones
    assert bucket_quantile(now, before, 0.5) == 0.05
    assert bucket_quantile(now, before, 0.99) == float("inf")
    assert bucket_quantile(now, now, 0.99) is None


def test_an_alert_published_again_is_counted_apart_and_adds_no_latency() -> None:
    """A replay after a rebalance publishes its alerts again: a consumer that dedupes on
    (alert_id, version) sees no new alert, so the soak counts it apart, in any interval."""
    from riskstream.records import AlertEntity, Category, Evidence, RiskAlert, Severity, Timings, WindowBounds

    def alert(alert_id: str, version: int, event_ms: int, published_ms: int) -> RiskAlert:
        ms = 1_000_000
        return RiskAlert(
            alert_id=alert_id,
            category=Category.FAT_FINGER,
            severity=Severity.HIGH,
            score=0.9,
            rule_score=0.9,
            entity=AlertEntity("A", None),
            window=WindowBounds(0, 1),
            evidence=Evidence({}, (), ""),
            timings=Timings(event_ms * ms, event_ms * ms, published_ms * ms),
            version=version,
        )

    tally = AlertTally()
    tally.add(alert("a", 1, 0, 40))
    tally.add(alert("a", 2, 0, 400))
    tally.add(alert("b", 1, 10, 60))
    assert (tally.latencies_ms, tally.again) == ([40.0, 400.0, 50.0], 0)
    tally.next_interval()
    tally.add(alert("a", 1, 0, 9000))
    tally.add(alert("c", 1, 100, 130))
    assert (tally.latencies_ms, tally.again) == ([30.0], 1)
