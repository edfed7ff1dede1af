"""Scorers: the narrow seam between detectors and whatever assesses their candidates.

Deadlines, batching and fallback live behind :class:`Scorer`; agents only call ``score``.
"""

from riskstream.llm.base import Assessment, Scorer
from riskstream.llm.rules import RuleScorer

__all__ = ["Assessment", "RuleScorer", "Scorer"]
