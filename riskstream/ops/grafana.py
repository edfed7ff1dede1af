"""The Grafana dashboard, generated from :mod:`riskstream.ops.panels` with Grafana's own
foundation SDK into deploy/grafana/dashboards/riskstream.json:

    python -m riskstream.ops.grafana --write

A test fails when the committed file differs from what this generates.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import DatasourceVariable, Row
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from riskstream.ops.panels import PANELS
from riskstream.settings import REPO_ROOT

OUT = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "riskstream.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")


def build() -> dict[str, Any]:
    board = (
        DashboardBuilder("riskstream")
        .uid("riskstream")
        .tags(["riskstream", "generated"])
        .refresh("10s")
        .time("now-30m", "now")
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
    )
    row = None
    for panel in PANELS:
        if panel.row != row:
            row = panel.row
            board = board.with_row(Row(row))
        ts = Timeseries().title(panel.title).unit(panel.unit).datasource(DATASOURCE).height(8).span(12)
        for i, query in enumerate(panel.queries):
            ts = ts.with_target(
                Dataquery().expr(query.expr).legend_format(query.legend).ref_id(chr(ord("A") + i))
            )
        board = board.with_panel(ts)
    encoded: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True, indent=2).encode(board.build()))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {OUT.relative_to(REPO_ROOT)}")
    args = parser.parse_args()
    if args.write:
        OUT.write_text(render())
    else:
        sys.stdout.write(render())


if __name__ == "__main__":
    main()
