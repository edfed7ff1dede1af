"""Backtest memory against file size: record-batch reading keeps the peak flat.

Writes simulated history of two sizes to Parquet, backtests each in a fresh process and
prints the files' in-memory (Arrow) size, the process's peak RSS and the rate:

    python -m bench.backtest_memory --events 100000,800000

If reading were whole-file, peak RSS would grow with the Arrow size; with record batches it
stays near the interpreter's baseline plus one batch and the per-account state.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from riskstream.offline.parquet import simulate_to_parquet

CHILD = """
import sys, time
from pathlib import Path
from riskstream.offline.backtest import run_backtest
from riskstream.settings import Settings
d = Path(sys.argv[1])
t0 = time.perf_counter()
stats = run_backtest([d / "market_data.parquet", d / "trade_logs.parquet"], d / "alerts.parquet", Settings())
dt = time.perf_counter() - t0
hwm_kb = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(stats.events, stats.alerts, dt, hwm_kb)
"""
"""Peak RSS is the child's VmHWM: ``ru_maxrss`` survives exec on Linux, so a child forked from
this process (which holds the simulated history) would report this process's peak."""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 800_000])
    args = p.parse_args()
    print("| events | parquet MB | arrow MB (whole file in memory) | peak RSS MB | events/s | alerts |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.events:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            simulate_to_parquet(d, seed=1, rate=500, events=n, start_ns=1_764_000_000_000_000_000)
            files = [d / "market_data.parquet", d / "trade_logs.parquet"]
            disk_mb = sum(f.stat().st_size for f in files) / 2**20
            arrow_mb = sum(pq.read_table(f).nbytes for f in files) / 2**20
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(d)], capture_output=True, text=True, check=True
            ).stdout.split()
            events, alerts, seconds, rss_kb = int(out[0]), int(out[1]), float(out[2]), int(out[3])
            print(
                f"| {events:,} | {disk_mb:.1f} | {arrow_mb:.1f} | {rss_kb / 1024:.0f} | "
                f"{events / seconds:,.0f} | {alerts} |"
            )


if __name__ == "__main__":
    main()
