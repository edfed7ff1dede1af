"""The LLM scorer: deadlines, concurrent batching, retrieval, late updates and fallback.

It sits behind :class:`~riskstream.llm.base.Scorer`, so agents never see any of this:

* every candidate of a micro-batch is submitted at once, so the engine's continuous batching
  runs them together;
* the batch waits at most ``deadline_s``; a candidate without an answer by then is assessed by
  the rules and marked ``degraded``, and its request goes on in the background until
  ``update_deadline_s``: an answer in time is handed to the update callback (the pipeline
  publishes it as version 2 of the same alert), otherwise the request is cancelled, which
  aborts it in the engine;
* an answer that does not parse or validate degrades that one candidate;
* when the engine is unavailable every candidate is rule-scored at once (no waiting out the
  deadline) until ``engine_retry_s`` has passed, and ``riskstream_llm_up`` says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from riskstream.core.candidates import Candidate
from riskstream.llm.assessment import InvalidAssessmentError, LlmAssessment, output_schema, parse_assessment
from riskstream.llm.base import Assessment, UpdateFn
from riskstream.llm.client import EngineUnavailableError, Generation, LlmClient
from riskstream.llm.prompts import PriorAlert, build_messages
from riskstream.llm.rules import assess_by_rules
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity

log = logging.getLogger(__name__)

PriorAlertSource = Callable[[Sequence[AlertEntity], int], Awaitable[dict[AlertEntity, list[PriorAlert]]]]
"""(entities, most per entity) -> recent prior alerts of each entity, newest first."""


@dataclass(frozen=True, slots=True)
class LlmScorerConfig:
    deadline_s: float
    """Longest a micro-batch waits for the model before rules stand in."""
    update_deadline_s: float
    """Longest a request may run in all; past it the request is aborted and no update comes."""
    engine_retry_s: float
    """How long rules alone are used after the engine was found unavailable."""
    prior_max_alerts: int
    """Prior alerts of the entity retrieved per candidate."""
    prior_max_chars: int
    """Bound on the prior-alert context in the prompt (about a quarter of that in tokens)."""


def request_seed(alert_id: str) -> int:
    """A different seed per candidate (one shared seed made different prompts answer alike),
    the same on every replay of the same evidence."""
    return int.from_bytes(hashlib.sha256(alert_id.encode()).digest()[:4], "big")


def llm_assessment(candidate: Candidate, answer: LlmAssessment) -> Assessment:
    rules = assess_by_rules(candidate)
    return Assessment(
        score=answer.score, severity=answer.severity, rule_score=rules.rule_score, llm=answer.to_json()
    )


def degraded_assessment(candidate: Candidate) -> Assessment:
    rules = assess_by_rules(candidate)
    return Assessment(score=rules.score, severity=rules.severity, rule_score=rules.rule_score, degraded=True)


class LlmScorer:
    def __init__(
        self,
        client: LlmClient,
        config: LlmScorerConfig,
        metrics: Metrics,
        prior_alerts: PriorAlertSource | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._cfg = config
        self._m = metrics
        self._prior_alerts = prior_alerts
        self._now = monotonic
        self._schema = output_schema()
        self._on_update: UpdateFn | None = None
        self._late: set[asyncio.Task[None]] = set()
        self._late_requests: set[asyncio.Task[LlmAssessment]] = set()
        self._down_until = 0.0

    def on_update(self, callback: UpdateFn) -> None:
        self._on_update = callback

    async def start(self) -> None:
        """A model that cannot start must not stop surveillance: the worker runs on rule
        scores (degraded), says so in the log and in ``riskstream_llm_up``, and retries the
        server every ``engine_retry_s`` (an engine that failed to load stays down until the
        worker restarts)."""
        self._m.llm_up.set(0)
        try:
            await self._client.start()
        except EngineUnavailableError as exc:
            self._engine_down(exc)
            return
        self._m.llm_up.set(1)
        log.info("LLM scorer ready: model=%s", self._client.model_name)

    async def close(self) -> None:
        pending = [*self._late, *self._late_requests]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._client.close()

    @property
    def late_requests(self) -> int:
        """Requests past their deadline still running for an update."""
        return len(self._late)

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        if not candidates:
            return []
        started = self._now()
        if started < self._down_until:
            self._m.llm_fallbacks.labels("engine_down").inc(len(candidates))
            return [degraded_assessment(c) for c in candidates]
        self._m.llm_batch_candidates.observe(len(candidates))
        prior = await self._retrieve(candidates, started + self._cfg.deadline_s)
        tasks = [asyncio.create_task(self._ask(c, prior.get(c.entity, []))) for c in candidates]
        remaining = max(0.0, started + self._cfg.deadline_s - self._now())
        try:
            await asyncio.wait(tasks, timeout=remaining)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        results: list[Assessment] = []
        for candidate, task in zip(candidates, tasks, strict=True):
            if task.done():
                results.append(self._settle(candidate, task))
            else:
                self._m.llm_fallbacks.labels("deadline").inc()
                results.append(degraded_assessment(candidate))
                self._follow_late(candidate, task, started)
        return results

    async def _retrieve(
        self, candidates: Sequence[Candidate], deadline: float
    ) -> dict[AlertEntity, list[PriorAlert]]:
        """Prior alerts are context, not a requirement: a slow or failing audit read costs the
        prompt its history, never the candidate its score."""
        if self._prior_alerts is None or self._cfg.prior_max_alerts == 0:
            return {}
        entities = list(dict.fromkeys(c.entity for c in candidates))
        budget = max(0.0, (deadline - self._now()) / 4)
        t0 = time.perf_counter()
        try:
            return await asyncio.wait_for(self._prior_alerts(entities, self._cfg.prior_max_alerts), budget)
        except Exception as exc:
            self._m.llm_retrieval_failures.inc()
            log.warning(
                "prior-alert retrieval failed (%s); scoring without history", exc or type(exc).__name__
            )
            return {}
        finally:
            self._m.stage.labels("llm_retrieval").observe(time.perf_counter() - t0)

    async def _ask(self, candidate: Candidate, prior: Sequence[PriorAlert]) -> LlmAssessment:
        messages = build_messages(candidate, prior, self._cfg.prior_max_chars)
        request_id = f"{candidate.alert_id}-{time.monotonic_ns()}"
        t0 = time.perf_counter()
        self._m.llm_inflight.inc()
        try:
            gen: Generation = await self._client.generate(
                request_id, messages, self._schema, request_seed(candidate.alert_id)
            )
        finally:
            self._m.llm_inflight.dec()
        self._m.llm_request.observe(time.perf_counter() - t0)
        if gen.ttft_s is not None:
            self._m.llm_ttft.observe(gen.ttft_s)
        self._m.llm_output_tokens.inc(gen.output_tokens)
        if gen.finish_reason == "length":
            raise InvalidAssessmentError("generation cut off at max_tokens")
        return parse_assessment(gen.text)

    def _settle(self, candidate: Candidate, task: asyncio.Task[LlmAssessment]) -> Assessment:
        exc = task.exception()
        if exc is None:
            self._m.llm_assessments.labels("ok").inc()
            return llm_assessment(candidate, task.result())
        if isinstance(exc, InvalidAssessmentError):
            self._m.llm_fallbacks.labels("invalid").inc()
            log.warning("LLM answer for %s rejected: %s", candidate.alert_id, exc)
        elif isinstance(exc, EngineUnavailableError):
            self._m.llm_fallbacks.labels("engine_down").inc()
            self._engine_down(exc)
        else:
            self._m.llm_fallbacks.labels("error").inc()
            log.error("LLM request for %s failed: %r", candidate.alert_id, exc)
        return degraded_assessment(candidate)

    def _engine_down(self, exc: BaseException) -> None:
        if self._now() >= self._down_until:
            log.error(
                "LLM engine unavailable (%s): rule scores only for the next %.0f s",
                exc,
                self._cfg.engine_retry_s,
            )
        self._m.llm_up.set(0)
        self._down_until = self._now() + self._cfg.engine_retry_s

    def _follow_late(self, candidate: Candidate, task: asyncio.Task[LlmAssessment], started: float) -> None:
        late = asyncio.create_task(self._await_late(candidate, task, started))
        self._late.add(late)
        late.add_done_callback(self._late.discard)
        self._late_requests.add(task)
        task.add_done_callback(self._late_requests.discard)

    async def _await_late(
        self, candidate: Candidate, task: asyncio.Task[LlmAssessment], started: float
    ) -> None:
        remaining = max(0.0, started + self._cfg.update_deadline_s - self._now())
        try:
            done, _ = await asyncio.wait([task], timeout=remaining)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._m.llm_aborted.inc()
            log.info(
                "LLM request for %s aborted after %.1f s", candidate.alert_id, self._cfg.update_deadline_s
            )
            return
        exc = task.exception()
        if exc is not None:
            if isinstance(exc, EngineUnavailableError):
                self._engine_down(exc)
            else:
                log.warning("late LLM answer for %s unusable: %s", candidate.alert_id, exc)
            return
        self._m.llm_assessments.labels("late").inc()
        if self._on_update is not None:
            try:
                await self._on_update(candidate, llm_assessment(candidate, task.result()))
            except Exception:
                log.exception("publishing the LLM update of %s failed", candidate.alert_id)
