"""deploy/k8s: kustomize renders it (kubectl from Debian's kubernetes-client), every built-in
object validates against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), and the
parts that tie the manifests to riskstream hold: probes on the endpoints the worker serves,
settings that exist, the KEDA trigger on the worker's consumer group, no more workers than
partitions, tensor parallelism on as many GPUs as requested."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from riskstream.settings import REPO_ROOT, Settings
from riskstream.topics import load_specs

K8S = REPO_ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"


def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl not installed (apt-get install kubernetes-client)")
        pytest.skip("kubectl not installed (apt-get install kubernetes-client)")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in rendered() if d["kind"] == kind]


def test_every_builtin_object_validates_against_the_kubernetes_schemas() -> None:
    docs = rendered()
    assert {d["kind"] for d in docs} >= {
        "Namespace",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "Job",
        "ScaledObject",
    }
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    broken = next(d for d in docs if d["kind"] == "Deployment")
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_worker_probes_hit_the_workers_health_endpoints() -> None:
    worker = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "riskstream-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 9108
    assert worker["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_configured_variables_are_settings() -> None:
    config = by_kind("ConfigMap")[0]["data"]
    for var in [*config, "RISKSTREAM_DATABASE__URL"]:
        node: Any = Settings.model_fields
        for part in var.removeprefix("RISKSTREAM_").lower().split("__"):
            assert node is not None and part in node, var
            node = getattr(node[part].annotation, "model_fields", None)


def test_keda_scales_the_workers_consumer_group_up_to_the_partition_count() -> None:
    """A hand check of KEDA's documented ScaledObject fields (its CRD schema is not available
    offline)."""
    scaled = by_kind("ScaledObject")[0]
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "riskstream-worker"
    settings = Settings()
    partitions = {s.name: s.partitions for s in load_specs(settings.topics)}
    # Market data is read whole by every worker, not shared by the group: only trade-logs lag
    # says whether more workers help.
    inputs = {settings.topics.trade_logs}
    assert spec["maxReplicaCount"] <= min(partitions[t] for t in inputs)
    assert {t["metadata"]["topic"] for t in spec["triggers"]} == inputs
    for trigger in spec["triggers"]:
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == settings.app_id
        assert int(trigger["metadata"]["lagThreshold"]) > 0


def test_pdb_selects_the_workers() -> None:
    pdb = by_kind("PodDisruptionBudget")[0]
    worker = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "riskstream-worker")
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= worker["spec"]["template"]["metadata"]["labels"].items()
    )


def test_vllm_tensor_parallel_matches_its_gpus() -> None:
    vllm = next(d for d in by_kind("Deployment") if d["metadata"]["name"] == "vllm")
    container = vllm["spec"]["template"]["spec"]["containers"][0]
    tp = next(int(a.split("=")[1]) for a in container["args"] if a.startswith("--tensor-parallel-size="))
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == tp
