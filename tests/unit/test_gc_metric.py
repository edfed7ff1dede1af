"""The collector-pause metric, on this process's real collector."""

from __future__ import annotations

import gc

from riskstream.metrics import Metrics


def test_gc_passes_are_timed_by_generation_while_watched() -> None:
    metrics = Metrics()
    metrics.watch_gc()
    try:
        gc.collect(2)
    finally:
        metrics.unwatch_gc()
    passes = metrics.gc_pause.labels("2")._sum.get()
    assert passes > 0
    gc.collect(2)
    assert metrics.gc_pause.labels("2")._sum.get() == passes
