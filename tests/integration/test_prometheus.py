"""deploy/prometheus against the real Prometheus (Debian's ``prometheus`` package): promtool
checks the config and runs the rules' unit tests, and a Prometheus server scrapes a running
worker, loads the rules, serves riskstream's series back through its HTTP API, and runs every
Grafana panel's query without an error."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from riskstream.broker import EmbeddedBroker, free_port
from riskstream.ops.panels import PANELS, for_prometheus
from riskstream.settings import REPO_ROOT
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import produce_scenario

PROM_DIR = REPO_ROOT / "deploy" / "prometheus"
RULES = (PROM_DIR / "rules" / "riskstream.yml").read_text().count("- alert: ")
"""Alerting rules in the file: every one must load and have a unit test."""


def need(tool: str) -> str:
    """Path of a Prometheus binary; CI installs them (.ci/run), so there a missing one fails."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} not installed (apt-get install prometheus)")
        pytest.skip(f"{tool} not installed (apt-get install prometheus)")
    return path


def test_promtool_checks_config_and_rule_tests() -> None:
    promtool = need("promtool")
    check = subprocess.run(
        [promtool, "check", "config", "prometheus.yml"], cwd=PROM_DIR, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{RULES} rules found" in check.stdout + check.stderr
    tests = subprocess.run(
        [promtool, "test", "rules", "tests/riskstream_test.yml"], cwd=PROM_DIR, capture_output=True, text=True
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    rule_tests = (PROM_DIR / "tests" / "riskstream_test.yml").read_text()
    names = re.findall(r"- alert: (\w+)", (PROM_DIR / "rules" / "riskstream.yml").read_text())
    assert len(names) == RULES
    assert [n for n in names if f"alertname: {n}" not in rule_tests] == []


def query(base: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def loaded_rules(base: str) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=5) as r:
        groups = json.loads(r.read())["data"]["groups"]
    return {rule["name"]: rule for g in groups for rule in g["rules"]}


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A Prometheus server on a free port with riskstream's rules; the caller writes the scrape
    target into ``targets.json`` (file service discovery, re-read every second)."""
    binary = need("prometheus")
    port = free_port()
    (tmp_path / "rules").mkdir()
    shutil.copy(PROM_DIR / "rules" / "riskstream.yml", tmp_path / "rules" / "riskstream.yml")
    targets = tmp_path / "targets.json"
    targets.write_text("[]")
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules/*.yml]\n"
        "scrape_configs:\n"
        "  - job_name: riskstream\n"
        f"    file_sd_configs: [{{files: ['{targets}'], refresh_interval: 1s}}]\n"
    )
    log = open(tmp_path / "prometheus.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "prometheus.log").read_text()[-3000:])
            time.sleep(0.2)
        yield base, targets
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def test_prometheus_scrapes_a_worker_and_serves_its_series(
    broker: EmbeddedBroker, tmp_path: Path, prometheus: tuple[str, Path]
) -> None:
    base, targets = prometheus
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        targets.write_text(json.dumps([{"targets": [f"127.0.0.1:{worker.metrics_port}"]}]))
        expected = await produce_scenario(broker, worker)
        categories = {category for category, _, _ in expected}

        async def series(promql: str) -> list[dict[str, Any]]:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                found = await asyncio.to_thread(query, base, promql)
                if found:
                    return found
                await asyncio.sleep(0.5)
            raise TimeoutError(promql)

        up = await series('up{job="riskstream"} == 1')
        assert up[0]["metric"]["instance"] == f"127.0.0.1:{worker.metrics_port}"
        consumed = await series('riskstream_events_consumed_total{topic="trade-logs"} > 0')
        assert float(consumed[0]["value"][1]) > 0
        by_category = " or ".join(f'riskstream_alerts_total{{category="{c}"}}' for c in sorted(categories))
        await series(f"count(count by (category) ({by_category})) == {len(categories)}")
        await series(
            "histogram_quantile(0.99, sum by (le) (rate(riskstream_event_to_alert_seconds_bucket[1m])))"
        )
        for panel in PANELS:
            for q in panel.queries:
                await asyncio.to_thread(query, base, for_prometheus(q.expr))
        rules = await asyncio.to_thread(loaded_rules, base)
        assert len(rules) == RULES
        assert all(rule["health"] == "ok" for rule in rules.values()), rules
    finally:
        worker.stop()


async def test_worker_health_and_readiness_endpoints(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """What the Kubernetes probes call: /healthz answers while the process lives, /readyz only
    once the worker's services have started."""
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    worker = WorkerProcess(env, tmp_path / "worker.log")

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}{path}", timeout=2) as r:
                return int(r.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return 0

    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        assert await asyncio.to_thread(status, "/healthz") == 200
        assert await asyncio.to_thread(status, "/readyz") == 200
        assert worker.metric("riskstream_ready") == 1
    finally:
        worker.stop()
    assert await asyncio.to_thread(status, "/healthz") == 0


def test_readyz_is_503_until_ready() -> None:
    from prometheus_client import CollectorRegistry

    from riskstream.metrics import Metrics

    m = Metrics(CollectorRegistry())
    port = free_port()
    m.serve(port, addr="127.0.0.1")
    url = f"http://127.0.0.1:{port}/readyz"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=2)
    assert refused.value.code == 503
    m.mark_ready()
    with urllib.request.urlopen(url, timeout=2) as r:
        assert r.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        assert b"riskstream_ready 1.0" in r.read()
    m.set_condition("database", "ConnectionRefusedError")
    with pytest.raises(urllib.error.HTTPError) as down:
        urllib.request.urlopen(url, timeout=2)
    assert down.value.code == 503 and b"database: ConnectionRefusedError" in down.value.read()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        assert b"riskstream_ready 0.0" in r.read()
    m.set_condition("database", None)
    with urllib.request.urlopen(url, timeout=2) as r:
        assert r.status == 200


def test_healthz_fails_with_the_reason_the_worker_gives() -> None:
    from prometheus_client import CollectorRegistry

    from riskstream.metrics import Metrics

    m = Metrics(CollectorRegistry())
    port = free_port()
    m.serve(port)
    url = f"http://127.0.0.1:{port}/healthz"
    with urllib.request.urlopen(url, timeout=2) as r:
        assert r.status == 200
    m.health_check = lambda: "checkpoint running for 75 s"
    with pytest.raises(urllib.error.HTTPError) as stuck:
        urllib.request.urlopen(url, timeout=2)
    assert stuck.value.code == 503 and b"checkpoint running for 75 s" in stuck.value.read()
