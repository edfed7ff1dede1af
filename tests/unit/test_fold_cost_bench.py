"""``bench/fold_cost.py`` as a check: its digest of the alerts is what a change meant only to make
the fold cheaper is compared by, so the same backlog must give the same digest run after run."""

from __future__ import annotations

import asyncio

from bench.fold_cost import backlog, fold_once


def test_the_same_backlog_gives_the_same_alerts_and_digest_in_a_fresh_pipeline() -> None:
    records = backlog(20_000, 4, 5000, 1)
    first = asyncio.run(fold_once(records, 4, 500))
    second = asyncio.run(fold_once(records, 4, 137))
    assert first[2] > 0
    # Another batch size too: how the input is cut into fetches must not change the alerts.
    assert first[1:] == second[1:]
