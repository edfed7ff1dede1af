"""Scoring rules: evidence strength -> rule score -> severity.

A candidate's ``strength`` is how many times past its threshold the pattern went; each category
starts from a base that says how much a bare threshold crossing already means for it.
"""

from __future__ import annotations

from riskstream.records import Category, Severity

BASE_SCORE: dict[Category, float] = {
    Category.FAT_FINGER: 0.55,
    Category.SPOOFING: 0.6,
    Category.LAYERING: 0.65,
    Category.WASH_TRADE: 0.7,
    Category.LIMIT_BREACH: 0.6,
    Category.MOMENTUM_IGNITION: 0.65,
    Category.RAMPING: 0.65,
    Category.MARKING_THE_CLOSE: 0.6,
    Category.QUOTE_STUFFING: 0.55,
    Category.MARKET_SHOCK: 0.5,
}
SEVERITY_FLOORS: tuple[tuple[float, Severity], ...] = (
    (0.85, Severity.CRITICAL),
    (0.7, Severity.HIGH),
    (0.5, Severity.MEDIUM),
)


def rule_score(category: Category, strength: float) -> float:
    """Rises from the category's base at the threshold towards 1 as strength grows."""
    base = BASE_SCORE[category]
    excess = max(strength, 1.0)
    return round(base + (1.0 - base) * (1.0 - 1.0 / excess), 4)


def severity_for(score: float) -> Severity:
    for floor, severity in SEVERITY_FLOORS:
        if score >= floor:
            return severity
    return Severity.LOW
