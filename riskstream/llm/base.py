"""The Scorer interface every backend implements: the rules, the embedded engine, a remote server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from riskstream.core.candidates import Candidate
from riskstream.records import Severity


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


UpdateFn = Callable[[Candidate, Assessment], Awaitable[None]]
"""Receives a better assessment of a candidate already published degraded (its version 2)."""


class Scorer(Protocol):
    async def start(self) -> None:
        """Acquire what the scorer needs (an engine, a connection); called once per worker."""

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        """One assessment per candidate, in order. Must not raise for one bad candidate."""

    def on_update(self, callback: UpdateFn) -> None:
        """Where to hand assessments that arrive after their alert went out degraded."""

    async def close(self) -> None:
        """Release what ``start`` acquired (and give up on pending updates)."""
