"""docker-compose.yml against the Compose specification's JSON Schema (tests/data/compose_spec.json,
from docker-compose 1.29.2; no Docker engine or compose plugin runs here), plus what the schema
cannot say: every riskstream service runs a real command, files it mounts exist, and the
Dockerfile's stages and non-root user are there."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from click.testing import CliRunner

from riskstream.cli import main
from riskstream.settings import REPO_ROOT, Settings

COMPOSE = REPO_ROOT / "docker-compose.yml"
SCHEMA = json.loads((Path(__file__).parent.parent / "data" / "compose_spec.json").read_text())


def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    validator.validate(compose())
    broken = compose()
    broken["services"]["worker"]["depends_on"]["topics"]["condition"] = "service_finished"
    assert not validator.is_valid(broken)


def test_compose_has_the_production_shape() -> None:
    services = compose()["services"]
    assert {
        "kafka",
        "postgres",
        "prometheus",
        "grafana",
        "worker",
        "topics",
        "migrate",
        "simulator",
        "vllm",
    } <= set(services)
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["simulator"]["profiles"] == ["demo"] and services["vllm"]["profiles"] == ["gpu"]
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["capabilities"] == ["gpu"]
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "--scale worker=N needs neither"
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert worker["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_every_riskstream_command_in_compose_exists() -> None:
    for name, service in compose()["services"].items():
        if service.get("image") != "riskstream:latest":
            continue
        result = CliRunner().invoke(main, [*service["command"], "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_every_env_var_compose_sets_is_a_setting() -> None:
    """A typo in a RISKSTREAM_ variable would be silently ignored by the worker."""
    env = compose()["x-riskstream"]["environment"]
    for var in env:
        path = var.removeprefix("RISKSTREAM_").lower().split("__")
        node: Any = Settings.model_fields
        for part in path:
            assert part in node, var
            annotation = node[part].annotation
            node = getattr(annotation, "model_fields", None)


def test_mounted_files_exist() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./deploy"):
                assert (REPO_ROOT / source).exists(), source


def test_dockerfile_is_multi_stage_non_root_with_cpu_and_gpu_targets() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, flags=re.M)
    assert stages == ["build", "cpu", "gpu"]
    assert text.count("USER 10001") == 2
    for path in re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.M):
        assert (REPO_ROOT / path).exists(), path
