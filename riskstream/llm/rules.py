"""The rule scorer: evidence strength -> score and severity, no model involved."""

from __future__ import annotations

from collections.abc import Sequence

from riskstream.core.candidates import Candidate
from riskstream.core.scoring import rule_score, severity_for
from riskstream.llm.base import Assessment, UpdateFn


def assess_by_rules(candidate: Candidate) -> Assessment:
    score = rule_score(candidate.category, candidate.strength)
    return Assessment(score=score, severity=severity_for(score), rule_score=score)


class RuleScorer:
    async def start(self) -> None:
        return None

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        return [assess_by_rules(c) for c in candidates]

    def on_update(self, callback: UpdateFn) -> None:
        """Rules answer at once: there are never updates."""

    async def close(self) -> None:
        return None
