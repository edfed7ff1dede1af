"""The account-state table's record file (``riskstream/agents/table_file.py``) on its own:

    python -m bench.table_file --keys 80000 --value-bytes 840 --rewrites 6

Fills the file with ``--keys`` records in random key order, rewrites every key ``--rewrites``
times (each time in a new random order, a commit every ``--commit-every`` writes as a
checkpoint would, the compaction running in its slices), then reads half the keys at random.
Prints µs per write (compaction included) and per read, and the file's size against the live
bytes after each round, as what a worker at that many accounts pays per state written and
read again.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from riskstream.agents.table_file import RecordFile


def write_round(records: RecordFile, keys: list[str], value: bytes, commit_every: int) -> float:
    t0 = time.perf_counter()
    for i, key in enumerate(keys):
        records.put(key, value, i % 4)
        if i % commit_every == commit_every - 1:
            records.commit()
    records.commit()
    return (time.perf_counter() - t0) / len(keys) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keys", type=int, default=80_000)
    parser.add_argument("--value-bytes", type=int, default=840)
    parser.add_argument("--rewrites", type=int, default=6)
    parser.add_argument("--commit-every", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    a = parser.parse_args()
    rng = random.Random(a.seed)
    value = b"x" * a.value_bytes
    keys = [f"ACC-{k}" for k in range(a.keys)]
    live_mb = a.keys * a.value_bytes / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        records = RecordFile(Path(tmp) / "bench.records")
        print(f"{a.keys:,} keys of {a.value_bytes} bytes: {live_mb:.0f} MB live")
        print(f"{'round':>8} {'us/write':>9} {'file MB':>8} {'x live':>7} {'files':>6}")
        for round_ in range(a.rewrites + 1):
            rng.shuffle(keys)
            us = write_round(records, keys, value, a.commit_every)
            name = "fill" if round_ == 0 else f"rewrite {round_}"
            print(
                f"{name:>8} {us:>9.1f} {records.file_bytes / 1e6:>8.0f} "
                f"{records.file_bytes / 1e6 / live_mb:>7.1f} {len(records.files):>6}"
            )
        sample = rng.sample(keys, len(keys) // 2)
        t0 = time.perf_counter()
        for key in sample:
            records.get(key)
        print(f"read: {(time.perf_counter() - t0) / len(sample) * 1e6:.1f} us")
        records.close()


if __name__ == "__main__":
    main()
