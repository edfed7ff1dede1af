"""Files the code reads at run time, shipped inside the package (a wheel install has no source
tree around it): the JSON Schema of every message and the audit DDL in ``schemas/``, the topic
specs in ``topic_specs/``."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

PACKAGE_DATA = Path(str(resources.files("riskstream")))
SCHEMAS = PACKAGE_DATA / "schemas"
TOPIC_SPECS = PACKAGE_DATA / "topic_specs"


def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``schemas/{name}.json``."""
    return dict(json.loads((SCHEMAS / f"{name}.json").read_text()))
