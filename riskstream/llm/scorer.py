"""The LLM scorer: deadlines, concurrent batching, retrieval, late updates and fallback.

It sits behind :class:`~riskstream.llm.base.Scorer`, so agents never see any of this.

With ``first_version="rules"`` (the default) :meth:`LlmScorer.score` answers at once with the
rule assessments and asks the model beside the stream, like Flink's async I/O operator: at most
``requests_in_flight`` requests run at once (a candidate beyond it keeps its rule score, reason
``shed``), and each answer before ``update_deadline_s`` is handed to the update callback as the
alert's version 2. The model's speed then never delays an alert nor the fold.

With ``first_version="llm"`` a micro-batch waits for the model:

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
from dataclasses import dataclass, replace
from typing import Literal

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
    first_version: Literal["rules", "llm"] = "llm"
    """rules: answer with rule scores at once, the model's assessment follows as an update;
    llm: wait up to ``deadline_s`` for the model."""
    requests_in_flight: int = 64
    """first_version rules: most requests running at once; candidates beyond it are shed."""


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


def fallback_reason(exc: BaseException) -> str:
    """The ``riskstream_llm_fallbacks_total`` reason of a request that raised."""
    if isinstance(exc, InvalidAssessmentError):
        return "invalid"
    if isinstance(exc, EngineUnavailableError):
        return "engine_down"
    return "error"


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
        self._asked = 0
        """first_version rules: candidates sent to the model and not settled yet."""
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
        """Requests past their deadline (or, first_version rules, any) still running for an
        update."""
        return len(self._late)

    async def settled(self) -> None:
        """Wait until every request running for an update has ended (answered, failed or
        aborted at its update deadline)."""
        while self._late:
            await asyncio.gather(*self._late, return_exceptions=True)

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        if not candidates:
            return []
        started = self._now()
        if started < self._down_until:
            self._m.llm_fallbacks.labels("engine_down").inc(len(candidates))
            return [degraded_assessment(c) for c in candidates]
        if self._cfg.first_version == "rules":
            return self._ask_beside(candidates, started)
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
                results.append(replace(degraded_assessment(candidate), pending=True))
                self._follow_late(candidate, task, started)
        return results

    def _ask_beside(self, candidates: Sequence[Candidate], started: float) -> list[Assessment]:
        """first_version rules: the rule assessments now (pending where the model is asked);
        the requests, up to ``requests_in_flight``, run in one background task per batch."""
        room = max(0, self._cfg.requests_in_flight - self._asked)
        asked, shed = candidates[:room], candidates[room:]
        if shed:
            self._m.llm_fallbacks.labels("shed").inc(len(shed))
        results = [replace(assess_by_rules(c), pending=True) for c in asked]
        results += [assess_by_rules(c) for c in shed]
        if asked:
            self._m.llm_batch_candidates.observe(len(asked))
            self._asked += len(asked)
            task = asyncio.create_task(self._assess_beside(asked, started))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
        return results

    async def _assess_beside(self, candidates: Sequence[Candidate], started: float) -> None:
        try:
            prior = await self._retrieve(candidates, started + self._cfg.deadline_s)
        except BaseException:
            self._asked -= len(candidates)
            raise
        tasks = [asyncio.create_task(self._ask(c, prior.get(c.entity, []))) for c in candidates]
        for task in tasks:
            self._late_requests.add(task)
            task.add_done_callback(self._request_settled)
        await asyncio.gather(
            *(self._await_late(c, t, started) for c, t in zip(candidates, tasks, strict=True))
        )

    def _request_settled(self, task: asyncio.Task[LlmAssessment]) -> None:
        """A request of first_version rules ended (answered, failed or aborted): room for one."""
        self._late_requests.discard(task)
        self._asked -= 1

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
        # History only: with the rule score first, the candidate's own version 1 (and alerts
        # of later events) can already be in the cache the prior alerts come from.
        earlier = [a for a in prior if a.event_ns < candidate.event_ns and a.alert_id != candidate.alert_id]
        messages = build_messages(candidate, earlier, self._cfg.prior_max_chars)
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
        self._failed(candidate, exc)
        return degraded_assessment(candidate)

    def _failed(self, candidate: Candidate, exc: BaseException) -> None:
        """A request that raised: counted as its candidate's fallback, the engine marked down
        where it is."""
        reason = fallback_reason(exc)
        self._m.llm_fallbacks.labels(reason).inc()
        if reason == "invalid":
            log.warning("LLM answer for %s rejected: %s", candidate.alert_id, exc)
        elif reason == "engine_down":
            self._engine_down(exc)
        else:
            log.error("LLM request for %s failed: %r", candidate.alert_id, exc)

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
        """The answer to a candidate whose alert went out rule-scored: handed on as an update
        before ``update_deadline_s``, else aborted. With first_version rules nothing was counted
        for it yet, so its fallback (if any) is counted here."""
        beside = self._cfg.first_version == "rules"
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
            if beside:
                self._m.llm_fallbacks.labels("deadline").inc()
            log.info(
                "LLM request for %s aborted after %.1f s", candidate.alert_id, self._cfg.update_deadline_s
            )
            return
        exc = task.exception()
        if exc is not None:
            if beside:
                self._failed(candidate, exc)
            elif isinstance(exc, EngineUnavailableError):
                self._engine_down(exc)
            else:
                log.warning("late LLM answer for %s unusable: %s", candidate.alert_id, exc)
            return
        in_time = beside and self._now() - started <= self._cfg.deadline_s
        self._m.llm_assessments.labels("ok" if in_time else "late").inc()
        if self._on_update is not None:
            try:
                await self._on_update(candidate, llm_assessment(candidate, task.result()))
            except Exception:
                log.exception("publishing the LLM update of %s failed", candidate.alert_id)
