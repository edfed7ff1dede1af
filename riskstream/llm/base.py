"""The Scorer interface every backend implements: the rules, the embedded engine, a remote server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from riskstream.core.candidates import Candidate
from riskstream.records import RiskAlert, Severity, Timings


@dataclass(frozen=True, slots=True)
class Assessment:
    score: float
    """Final score 0..1."""
    severity: Severity
    rule_score: float
    """What the rules alone said; kept beside any model's view for audit."""
    llm: dict[str, Any] | None = None
    """The model's validated assessment, when a model scored it."""
    degraded: bool = False
    """True when the wanted scorer could not answer in time and rules stood in."""
    pending: bool = False
    """True when the model's answer may still come, as the alert's next version (see
    :data:`UpdateFn`): the pipeline keeps the alert's detection time for it."""


def to_alert(candidate: Candidate, assessment: Assessment, detected_ns: int, version: int = 1) -> RiskAlert:
    """An assessed candidate as the alert the worker publishes and the backtest writes."""
    return RiskAlert(
        version=version,
        alert_id=candidate.alert_id,
        category=candidate.category,
        severity=assessment.severity,
        score=assessment.score,
        rule_score=assessment.rule_score,
        entity=candidate.entity,
        window=candidate.window,
        evidence=candidate.evidence,
        timings=Timings(event_ns=candidate.event_ns, detected_ns=detected_ns),
        llm=assessment.llm,
        degraded=assessment.degraded,
    )


UpdateFn = Callable[[Candidate, Assessment], Awaitable[None]]
"""Receives the model's assessment of a candidate whose alert went out rule-scored, pending
(its version 2)."""


class Scorer(Protocol):
    async def start(self) -> None:
        """Acquire what the scorer needs (an engine, a connection); called once per worker."""

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        """One assessment per candidate, in order. Must not raise for one bad candidate."""

    def on_update(self, callback: UpdateFn) -> None:
        """Where to hand the model's assessments of alerts that went out rule-scored, pending."""

    async def close(self) -> None:
        """Release what ``start`` acquired (and give up on pending updates)."""
