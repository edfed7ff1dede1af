"""LlmScorer's deadline, late-update, abort and fallback logic, with a hand-written double of
the LLM client (``ScriptedClient``) so each timing is exact. The same behaviour on the real
vLLM engine is tested in tests/llm/."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from riskstream.core.candidates import Candidate
from riskstream.llm.base import Assessment
from riskstream.llm.client import EngineUnavailableError, Generation
from riskstream.llm.prompts import PriorAlert
from riskstream.llm.rules import assess_by_rules
from riskstream.llm.scorer import LlmScorer, LlmScorerConfig, request_seed
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, Category, Evidence, WindowBounds

ANSWER = {
    "score": 0.85,
    "category": "spoofing",
    "severity": "critical",
    "rationale": "Large cancelled bids while selling.",
    "recommended_action": "escalate",
}


def cand(i: int) -> Candidate:
    return Candidate(
        Category.SPOOFING,
        AlertEntity(f"ACC-{i}", "ACME"),
        WindowBounds(1, 2),
        Evidence({"x": 1.0}, (f"o{i}",), "seen"),
        strength=1.5,
    )


class ScriptedClient:
    """Test double of LlmClient: answers after a per-account delay, or fails as scripted."""

    model_name = "scripted"

    def __init__(self, delays_s: dict[str, float] | None = None, text: str = json.dumps(ANSWER)) -> None:
        self.delays_s = delays_s or {}
        self.gates: dict[str, asyncio.Event] = {}
        """Account -> its request answers once the test sets this (exact ordering, no timing)."""
        self.text = text
        self.fail: Exception | None = None
        self.start_fails = False
        self.cancelled: list[str] = []
        self.requests: list[tuple[str, list[dict[str, str]], int]] = []
        self._asked = asyncio.Condition()
        self.closed = False

    async def asked(self, n: int) -> None:
        """Wait until ``n`` requests have come in."""
        async with self._asked:
            await asyncio.wait_for(self._asked.wait_for(lambda: len(self.requests) >= n), 30)

    async def start(self) -> None:
        if self.start_fails:
            raise EngineUnavailableError("no engine")

    async def generate(
        self, request_id: str, messages: list[dict[str, str]], schema: dict[str, Any], seed: int
    ) -> Generation:
        self.requests.append((request_id, messages, seed))
        async with self._asked:
            self._asked.notify_all()
        if self.fail is not None:
            raise self.fail
        account = json.loads(messages[1]["content"].split("<data>")[1].split("</data>")[0])["entity"][
            "account"
        ]
        try:
            await asyncio.sleep(self.delays_s.get(account, 0.0))
            if account in self.gates:
                await self.gates[account].wait()
        except asyncio.CancelledError:
            self.cancelled.append(request_id)
            raise
        return Generation(self.text, "stop", 0.001, 20)

    async def close(self) -> None:
        self.closed = True


def scorer(
    client: ScriptedClient,
    metrics: Metrics,
    monotonic: Callable[[], float] = time.monotonic,
    **overrides: Any,
) -> LlmScorer:
    cfg = {
        "deadline_s": 0.2,
        "update_deadline_s": 1.0,
        "engine_retry_s": 60.0,
        "prior_max_alerts": 3,
        "prior_max_chars": 500,
    } | overrides
    return LlmScorer(client, LlmScorerConfig(**cfg), metrics, monotonic=monotonic)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    got = metrics.registry.get_sample_value(name, labels)
    return 0.0 if got is None else got


async def test_answers_in_time_carry_the_llm_block() -> None:
    m = Metrics()
    s = scorer(ScriptedClient(), m, deadline_s=30.0)
    await s.start()
    out = await s.score([cand(1), cand(2)])
    assert [a.score for a in out] == [0.85, 0.85]
    assert all(a.llm == ANSWER and not a.degraded for a in out)
    assert out[0].rule_score == assess_by_rules(cand(1)).rule_score
    assert value(m, "riskstream_llm_assessments_total", outcome="ok") == 2
    assert value(m, "riskstream_llm_up") == 1
    await s.close()


async def test_past_the_deadline_rules_go_out_degraded_then_the_update_follows() -> None:
    m = Metrics()
    client = ScriptedClient()
    client.gates = {"ACC-2": asyncio.Event()}  # answers only once the test lets it
    s = scorer(client, m, deadline_s=1.0, update_deadline_s=60.0)
    updates = Updates()
    s.on_update(updates)
    await s.start()
    out = await s.score([cand(1), cand(2)])
    assert not out[0].degraded
    assert out[1].degraded and out[1].pending
    assert out[1].llm is None
    assert out[1].score == assess_by_rules(cand(2)).score
    assert updates.got == []
    client.gates["ACC-2"].set()
    await updates.arrived(1)
    assert [(c.alert_id, a.llm, a.degraded) for c, a in updates.got] == [(cand(2).alert_id, ANSWER, False)]
    assert value(m, "riskstream_llm_fallbacks_total", reason="deadline") == 1
    assert value(m, "riskstream_llm_assessments_total", outcome="late") == 1
    await s.close()


async def test_a_request_past_the_update_deadline_is_cancelled() -> None:
    m = Metrics()
    client = ScriptedClient()
    client.gates = {"ACC-1": asyncio.Event()}  # never answers
    s = scorer(client, m, deadline_s=0.05, update_deadline_s=0.2)
    await s.start()
    out = await s.score([cand(1)])
    assert out[0].degraded
    assert s.late_requests == 1
    await s.settled()
    assert len(client.cancelled) == 1
    assert s.late_requests == 0
    assert value(m, "riskstream_llm_aborted_total") == 1
    await s.close()


async def test_close_cancels_late_requests() -> None:
    client = ScriptedClient()
    client.gates = {"ACC-1": asyncio.Event()}  # never answers
    s = scorer(client, Metrics(), deadline_s=0.01, update_deadline_s=10.0)
    await s.start()
    await s.score([cand(1)])
    await s.close()
    assert len(client.cancelled) == 1
    assert client.closed


async def test_an_invalid_answer_degrades_that_candidate_only() -> None:
    m = Metrics()
    client = ScriptedClient(text='{"score": 7}')
    s = scorer(client, m)
    await s.start()
    out = await s.score([cand(1)])
    assert out[0].degraded
    assert value(m, "riskstream_llm_fallbacks_total", reason="invalid") == 1


async def test_engine_failure_falls_back_at_once_until_the_retry_interval() -> None:
    m = Metrics()
    now = [100.0]
    client = ScriptedClient()
    s = LlmScorer(client, LlmScorerConfig(0.2, 1.0, 30.0, 0, 0), m, monotonic=lambda: now[0])
    await s.start()
    client.fail = EngineUnavailableError("engine died")
    out = await s.score([cand(1), cand(2)])
    assert all(a.degraded for a in out)
    assert value(m, "riskstream_llm_up") == 0
    client.fail = None
    asked = len(client.requests)
    out = await s.score([cand(3)])
    assert out[0].degraded
    assert len(client.requests) == asked
    assert value(m, "riskstream_llm_fallbacks_total", reason="engine_down") == 3
    now[0] += 31
    out = await s.score([cand(3)])
    assert not out[0].degraded


async def test_an_engine_that_cannot_start_leaves_the_worker_on_rules() -> None:
    m = Metrics()
    client = ScriptedClient()
    client.start_fails = True
    s = scorer(client, m)
    await s.start()
    out = await s.score([cand(1)])
    assert out[0].degraded
    assert client.requests == []
    assert value(m, "riskstream_llm_up") == 0


async def test_prior_alerts_reach_the_prompt_and_a_failing_lookup_does_not_block() -> None:
    client = ScriptedClient()
    prior = PriorAlert("f" * 32, "spoofing", "high", 0.9, 1, "earlier spoof")
    itself = PriorAlert(cand(1).alert_id, "spoofing", "high", 0.5, 2, "its own version 1")
    later = PriorAlert("e" * 32, "spoofing", "high", 0.9, 3, "a later alert")

    async def lookup(entities: Sequence[AlertEntity], n: int) -> dict[AlertEntity, list[PriorAlert]]:
        assert n == 3
        return {e: [later, itself, prior] for e in entities}

    for first_version in ("llm", "rules"):
        config = LlmScorerConfig(0.2, 1.0, 30.0, 3, 500, first_version=first_version)
        s = LlmScorer(client, config, Metrics(), lookup)
        await s.score([cand(1)])
        await s.settled()
        prompt = client.requests[-1][1][1]["content"]
        assert "earlier spoof" in prompt
        assert "its own version 1" not in prompt and "a later alert" not in prompt

    async def broken(entities: Sequence[AlertEntity], n: int) -> dict[AlertEntity, list[PriorAlert]]:
        raise OSError("database down")

    m = Metrics()
    s = LlmScorer(client, LlmScorerConfig(0.2, 1.0, 30.0, 3, 500), m, broken)
    out = await s.score([cand(1)])
    assert not out[0].degraded
    assert value(m, "riskstream_llm_retrieval_failures_total") == 1


def test_seeds_differ_per_candidate_and_repeat_per_evidence() -> None:
    assert request_seed(cand(1).alert_id) == request_seed(cand(1).alert_id)
    assert request_seed(cand(1).alert_id) != request_seed(cand(2).alert_id)


@pytest.mark.parametrize("n", [1, 16])
async def test_a_batch_is_submitted_concurrently(n: int) -> None:
    client = ScriptedClient()
    gate = asyncio.Event()
    client.gates = {f"ACC-{i}": gate for i in range(n)}
    m = Metrics()
    s = scorer(client, m, deadline_s=30.0)
    scoring = asyncio.create_task(s.score([cand(i) for i in range(n)]))
    # Every request is in before any is answered: submitted one after another, the second
    # would wait for the first's answer, which never comes before the gate opens.
    await client.asked(n)
    gate.set()
    out = await scoring
    assert not any(a.degraded for a in out)
    assert value(m, "riskstream_llm_batch_candidates_sum") == n


class Updates:
    """Collects the scorer's updates; ``arrived(n)`` waits until n have come."""

    def __init__(self) -> None:
        self.got: list[tuple[Candidate, Assessment]] = []
        self._changed = asyncio.Condition()

    async def __call__(self, candidate: Candidate, assessment: Assessment) -> None:
        async with self._changed:
            self.got.append((candidate, assessment))
            self._changed.notify_all()

    async def arrived(self, n: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.got) >= n), 30)


async def test_rules_first_answers_at_once_and_the_model_follows_as_the_update() -> None:
    m = Metrics()
    now = [0.0]
    client = ScriptedClient()
    client.gates = {"ACC-1": asyncio.Event(), "ACC-2": asyncio.Event()}
    s = scorer(client, m, first_version="rules", update_deadline_s=60.0, monotonic=lambda: now[0])
    updates = Updates()
    s.on_update(updates)
    await s.start()
    out = await s.score([cand(1), cand(2)])
    # Nothing waited for the model: the rule assessments, pending its answer.
    assert [a.score for a in out] == [assess_by_rules(cand(i)).score for i in (1, 2)]
    assert all(a.pending and not a.degraded and a.llm is None for a in out)
    client.gates["ACC-1"].set()
    await updates.arrived(1)
    now[0] = 0.5  # past the 0.2 s deadline: ACC-2's answer is late
    client.gates["ACC-2"].set()
    await updates.arrived(2)
    assert [(c.alert_id, a.llm, a.degraded, a.pending) for c, a in updates.got] == [
        (cand(1).alert_id, ANSWER, False, False),
        (cand(2).alert_id, ANSWER, False, False),
    ]
    assert value(m, "riskstream_llm_assessments_total", outcome="ok") == 1
    assert value(m, "riskstream_llm_assessments_total", outcome="late") == 1
    assert value(m, "riskstream_llm_fallbacks_total", reason="deadline") == 0
    await s.close()


async def test_rules_first_sheds_candidates_beyond_the_requests_in_flight() -> None:
    m = Metrics()
    client = ScriptedClient()
    client.gates = {f"ACC-{i}": asyncio.Event() for i in range(5)}
    s = scorer(client, m, first_version="rules", requests_in_flight=2, update_deadline_s=60.0)
    updates = Updates()
    s.on_update(updates)
    out = await s.score([cand(0), cand(1), cand(2)])
    assert [a.pending for a in out] == [True, True, False]
    assert not any(a.degraded for a in out)
    assert [a.pending for a in await s.score([cand(3)])] == [False]
    assert value(m, "riskstream_llm_fallbacks_total", reason="shed") == 2
    client.gates["ACC-0"].set()
    await updates.arrived(1)
    # One request settled: room for one more.
    assert [a.pending for a in await s.score([cand(4)])] == [True]
    client.gates["ACC-1"].set()
    client.gates["ACC-4"].set()
    await updates.arrived(3)
    assert sorted(c.alert_id for c, _ in updates.got) == sorted(cand(i).alert_id for i in (0, 1, 4))
    await s.close()


async def test_rules_first_a_failed_request_sends_no_update_and_counts_its_fallback() -> None:
    m = Metrics()
    client = ScriptedClient(text='{"score": 7}')
    s = scorer(client, m, first_version="rules")
    updates = Updates()
    s.on_update(updates)
    out = await s.score([cand(1)])
    assert out[0].pending
    await s.settled()
    assert updates.got == []
    assert value(m, "riskstream_llm_fallbacks_total", reason="invalid") == 1
    client.fail = EngineUnavailableError("engine died")
    await s.score([cand(2)])
    await s.settled()
    assert value(m, "riskstream_llm_fallbacks_total", reason="engine_down") == 1
    # The engine is down: rule scores at once, degraded, nothing pending.
    out = await s.score([cand(3)])
    assert out[0].degraded and not out[0].pending
    assert updates.got == []
    await s.close()


async def test_rules_first_a_request_past_the_update_deadline_is_aborted() -> None:
    m = Metrics()
    client = ScriptedClient()
    client.gates = {"ACC-1": asyncio.Event()}  # never answers
    s = scorer(client, m, first_version="rules", update_deadline_s=0.05)
    updates = Updates()
    s.on_update(updates)
    await s.score([cand(1)])
    await s.settled()
    assert len(client.cancelled) == 1
    assert updates.got == []
    assert value(m, "riskstream_llm_aborted_total") == 1
    assert value(m, "riskstream_llm_fallbacks_total", reason="deadline") == 1
    await s.close()
