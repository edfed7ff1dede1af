"""A real worker with the embedded vLLM scorer (tiny model) on the real broker and PostgreSQL.

Every alert goes out rule-scored first and its LLM assessment follows as version 2 of the same
alert_id, on the topic and in the audit row: by design with ``first_version=rules`` (version 1
not degraded), and with ``first_version=llm`` because the deadline is set below what any answer
can meet (version 1 degraded)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import defaultdict
from pathlib import Path

import jsonschema
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.broker import EmbeddedBroker
from riskstream.llm.assessment import output_schema
from riskstream.records import RiskAlert
from riskstream.sinks import AuditLog
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import ALERT_SCHEMA, consume_all, produce_scenario, wait_for
from tests.llm.conftest import tiny_worker_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("first_version", ["rules", "llm"])
async def test_rule_scored_alert_then_llm_update(
    broker: EmbeddedBroker, postgres_url: str, tiny_model: Path, tmp_path: Path, first_version: str
) -> None:
    env = worker_env(broker, postgres_url, f"rs-{uuid.uuid4().hex[:8]}")
    env |= tiny_worker_env(tiny_model)
    env |= {
        "RISKSTREAM_SCORER__FIRST_VERSION": first_version,
        "RISKSTREAM_SCORER__DEADLINE_MS": "1",
        "RISKSTREAM_SCORER__UPDATE_DEADLINE_MS": "120000",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready, 240)
        assert worker.metric("riskstream_llm_up") == 1
        expected = await produce_scenario(broker, worker)
        records = await consume_all(broker.bootstrap_servers, "risk-alerts", 2 * len(expected), 180)
        versions: dict[str, dict[int, RiskAlert]] = defaultdict(dict)
        for r in records:
            body = json.loads(r.value)
            jsonschema.validate(body, ALERT_SCHEMA)
            alert = RiskAlert.from_json(body)
            versions[alert.alert_id][alert.version] = alert
        got = {
            (a[1].category.value, a[1].entity.account or "", tuple(sorted(a[1].evidence.order_ids)))
            for a in versions.values()
        }
        assert got == {(c, acc, tuple(sorted(ids))) for c, acc, ids in expected}
        for alert_id, by_version in versions.items():
            assert set(by_version) == {1, 2}, alert_id
            first, update = by_version[1], by_version[2]
            assert first.degraded == (first_version == "llm")
            assert first.llm is None
            assert not update.degraded
            assert update.llm is not None
            jsonschema.validate(update.llm, output_schema())
            assert update.score == update.llm["score"]
            assert update.rule_score == first.rule_score
            assert update.timings.detected_ns == first.timings.detected_ns

        await wait_for(lambda: worker.metric("riskstream_checkpoints_total", table="all") >= 3, 20)
        audit = AuditLog(create_async_engine(postgres_url))
        try:
            rows = await audit.fetch_all()
        finally:
            await audit.close()
        assert {r["alert_id"] for r in rows} == set(versions)
        for row in rows:
            assert row["version"] == 2
            assert not row["degraded"]
            assert row["llm"] == versions[row["alert_id"]][2].llm
        assert worker.metric("riskstream_alert_updates_total") == len(expected)
        fallbacks = worker.metric("riskstream_llm_fallbacks_total", reason="deadline")
        assert fallbacks == (len(expected) if first_version == "llm" else 0)
        assert worker.metric("riskstream_llm_assessments_total", outcome="late") == len(expected)
    finally:
        worker.stop()
