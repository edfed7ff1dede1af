"""The Grafana dashboard is generated from riskstream/ops/panels.py, and every metric its
queries name is one the code exports (the queries run against a real Prometheus in
tests/integration/test_prometheus.py)."""

from __future__ import annotations

import json
import re

from prometheus_client import CollectorRegistry

from riskstream.metrics import Metrics
from riskstream.ops.grafana import OUT, render
from riskstream.ops.panels import PANELS

SUFFIXES = ("_bucket", "_count", "_sum")


def exported_names() -> set[str]:
    registry = CollectorRegistry()
    Metrics(registry)
    names = set()
    for family in registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in SUFFIXES)
    return names


def test_committed_dashboard_is_current() -> None:
    """Regenerate with: python -m riskstream.ops.grafana --write"""
    assert OUT.read_text() == render()
    board = json.loads(OUT.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    assert exprs == [q.expr for panel in PANELS for q in panel.queries]


def test_every_queried_metric_is_exported() -> None:
    exported = exported_names()
    for panel in PANELS:
        for query in panel.queries:
            for name in re.findall(r"riskstream_[a-z_]+", query.expr):
                assert name in exported, f"{panel.title}: {name} is not exported"
