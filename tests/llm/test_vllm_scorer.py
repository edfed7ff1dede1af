"""LlmScorer on the real vLLM engine (CPU, tiny random model): constrained answers that
validate, deadlines with late updates, aborts, concurrency, and a crashed engine."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import jsonschema
import psutil
import pytest

from riskstream.core.candidates import Candidate
from riskstream.llm.assessment import output_schema
from riskstream.llm.base import Assessment
from riskstream.llm.scorer import LlmScorer, LlmScorerConfig
from riskstream.llm.vllm_engine import VllmEngineClient, child_pids, lower_priority
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds
from tests.llm.conftest import tiny_scorer_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")
SCHEMA = output_schema()


def cand(i: int, category: Category = Category.SPOOFING) -> Candidate:
    return Candidate(
        category,
        AlertEntity(f"ACC-{i}", "ACME"),
        WindowBounds(1_700_000_000_000_000_000, 1_700_000_002_000_000_000),
        Evidence({"cancelled_qty": 4000.0 + i, "filled_qty": 100.0}, (f"o{i}a", f"o{i}b"), "bids pulled"),
        strength=1.0 + i / 10,
    )


def config(deadline_s: float, update_deadline_s: float = 60.0) -> LlmScorerConfig:
    return LlmScorerConfig(deadline_s, update_deadline_s, 30.0, 0, 0)


def value(m: Metrics, name: str, **labels: str) -> float:
    return m.registry.get_sample_value(name, labels) or 0.0


async def test_answers_validate_against_the_schema(engine: VllmEngineClient) -> None:
    m = Metrics()
    scorer = LlmScorer(engine, config(deadline_s=60.0), m)
    out = await scorer.score([cand(i, c) for i, c in enumerate(Category)])
    for a in out:
        assert not a.degraded
        assert a.llm is not None
        jsonschema.validate(a.llm, SCHEMA)
        assert a.score == a.llm["score"]
    assert value(m, "riskstream_llm_assessments_total", outcome="ok") == len(Category)
    assert value(m, "riskstream_llm_ttft_seconds_count") == len(Category)
    assert value(m, "riskstream_llm_output_tokens_total") > 0


async def test_the_engines_processes_run_below_the_worker(engine: VllmEngineClient) -> None:
    assert engine.engine_pids, "vLLM runs its engine core in processes of its own"
    for pid in engine.engine_pids:
        assert psutil.Process(pid).nice() >= 10


def test_only_the_children_started_since_are_reniced() -> None:
    """Other children of the worker (a broker, another engine) keep their priority."""
    before = subprocess.Popen(["sleep", "60"])
    try:
        existing = child_pids()
        after = subprocess.Popen(["sleep", "60"])
        try:
            assert lower_priority(10, existing) == [after.pid]
            assert psutil.Process(after.pid).nice() == max(10, psutil.Process().nice())
            assert psutil.Process(before.pid).nice() == psutil.Process().nice()
        finally:
            after.kill()
            after.wait()
    finally:
        before.kill()
        before.wait()


async def test_concurrent_batches_all_answered(engine: VllmEngineClient) -> None:
    m = Metrics()
    scorer = LlmScorer(engine, config(deadline_s=120.0), m)
    batches = await asyncio.gather(*(scorer.score([cand(b * 10 + i) for i in range(8)]) for b in range(3)))
    flat = [a for batch in batches for a in batch]
    assert len(flat) == 24
    assert all(not a.degraded and a.llm is not None for a in flat)
    assert value(m, "riskstream_llm_batch_candidates_count") == 3


async def test_deadline_publishes_degraded_then_the_update(engine: VllmEngineClient) -> None:
    m = Metrics()
    scorer = LlmScorer(engine, config(deadline_s=0.001, update_deadline_s=120.0), m)
    updates: list[tuple[Candidate, Assessment]] = []

    async def on_update(c: Candidate, a: Assessment) -> None:
        updates.append((c, a))

    scorer.on_update(on_update)
    out = await scorer.score([cand(1), cand(2)])
    assert all(a.degraded and a.llm is None for a in out)
    for _ in range(600):
        if len(updates) == 2:
            break
        await asyncio.sleep(0.1)
    assert sorted(c.alert_id for c, _ in updates) == sorted([cand(1).alert_id, cand(2).alert_id])
    for _, a in updates:
        assert not a.degraded
        assert a.llm is not None
        jsonschema.validate(a.llm, SCHEMA)


async def test_requests_past_the_update_deadline_are_aborted_and_the_engine_goes_on(
    engine: VllmEngineClient,
) -> None:
    m = Metrics()
    scorer = LlmScorer(engine, config(deadline_s=0.001, update_deadline_s=0.01), m)
    out = await scorer.score([cand(i) for i in range(4)])
    assert all(a.degraded for a in out)
    for _ in range(100):
        if scorer.late_requests == 0:
            break
        await asyncio.sleep(0.05)
    assert value(m, "riskstream_llm_aborted_total") == 4
    after = await LlmScorer(engine, config(deadline_s=60.0), Metrics()).score([cand(9)])
    assert not after[0].degraded


async def test_a_crashed_engine_falls_back_to_rules(tiny_model: Path) -> None:
    client = VllmEngineClient(tiny_scorer_settings(tiny_model))
    m = Metrics()
    scorer = LlmScorer(client, config(deadline_s=60.0), m)
    await scorer.start()
    try:
        assert value(m, "riskstream_llm_up") == 1
        before = set(psutil.Process().children(recursive=True))
        assert before, "the engine core runs in a child process"
        for child in before:
            child.kill()
        await asyncio.sleep(1.0)
        out = await scorer.score([cand(1), cand(2)])
        assert all(a.degraded and a.llm is None for a in out)
        assert value(m, "riskstream_llm_up") == 0
        assert value(m, "riskstream_llm_fallbacks_total", reason="engine_down") == 2
        again = await scorer.score([cand(3)])
        assert again[0].degraded
    finally:
        await scorer.close()
