"""``risk-alerts``: scored alerts (key = account, or symbol for market-wide alerts).

Delivery is at-least-once: the same evidence always yields the same ``alert_id``, so consumers
dedupe on it and the audit insert is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from riskstream.records.codec import format_ts, parse_ts


class Category(StrEnum):
    FAT_FINGER = "fat_finger"
    SPOOFING = "spoofing"
    LAYERING = "layering"
    WASH_TRADE = "wash_trade"
    LIMIT_BREACH = "limit_breach"
    MOMENTUM_IGNITION = "momentum_ignition"
    RAMPING = "ramping"
    MARKING_THE_CLOSE = "marking_the_close"
    QUOTE_STUFFING = "quote_stuffing"
    MARKET_SHOCK = "market_shock"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class AlertEntity:
    """Who or what the alert is about."""

    account: str | None
    """Account under suspicion; None for a market-wide alert."""
    symbol: str | None
    """Instrument involved, where there is one."""

    @property
    def key(self) -> str:
        """Kafka key: the account when there is one, else the symbol."""
        return self.account or self.symbol or ""


@dataclass(frozen=True, slots=True)
class WindowBounds:
    """The event-time span of evidence the detector looked at."""

    start_ns: int
    """First event time in the evidence, epoch ns."""
    end_ns: int
    """Event time of the triggering event, epoch ns."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a compliance analyst needs to check the alert by hand."""

    features: dict[str, float]
    """Named feature values the rule compared to its thresholds."""
    order_ids: tuple[str, ...]
    """Orders that make up the pattern, in event order; empty for a market-wide alert, which
    market data alone raises."""
    summary: str
    """One sentence saying what was seen."""


@dataclass(frozen=True, slots=True)
class Timings:
    """Wall-clock stamps that make the alert's latency auditable."""

    event_ns: int
    """Event time of the triggering event."""
    detected_ns: int
    """Wall time the detector produced the candidate."""
    published_ns: int | None = None
    """Wall time the alert was handed to the broker; set by the alert sink."""


@dataclass(frozen=True, slots=True)
class RiskAlert:
    alert_id: str
    """Deterministic id: a hash of category, entity and the evidence's order ids."""
    category: Category
    """Typology that fired."""
    severity: Severity
    """Triage level derived from the score."""
    score: float
    """Final score 0..1 (the LLM's when present, else the rule score)."""
    rule_score: float
    """Score 0..1 the rules gave from the evidence alone."""
    entity: AlertEntity
    window: WindowBounds
    evidence: Evidence
    timings: Timings
    llm: dict[str, Any] | None = None
    """The LLM assessment; None until the LLM tier scores it."""
    degraded: bool = False
    """True when a better scorer was wanted but the rule score had to do."""
    version: int = field(default=1)
    """Increases when a later assessment updates the same alert_id."""

    def published(self, published_ns: int) -> RiskAlert:
        return replace(self, timings=replace(self.timings, published_ns=published_ns))

    def to_json(self) -> dict[str, Any]:
        t = self.timings
        return {
            "alert_id": self.alert_id,
            "version": self.version,
            "category": self.category.value,
            "severity": self.severity.value,
            "score": self.score,
            "rule_score": self.rule_score,
            "llm": self.llm,
            "degraded": self.degraded,
            "entity": {"account": self.entity.account, "symbol": self.entity.symbol},
            "window": {
                "start_ts": format_ts(self.window.start_ns),
                "end_ts": format_ts(self.window.end_ns),
            },
            "evidence": {
                "features": self.evidence.features,
                "order_ids": list(self.evidence.order_ids),
                "summary": self.evidence.summary,
            },
            "timings": {
                "event_ts": format_ts(t.event_ns),
                "detected_ts": format_ts(t.detected_ns),
                "published_ts": None if t.published_ns is None else format_ts(t.published_ns),
            },
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RiskAlert:
        t = obj["timings"]
        return cls(
            alert_id=obj["alert_id"],
            version=obj["version"],
            category=Category(obj["category"]),
            severity=Severity(obj["severity"]),
            score=obj["score"],
            rule_score=obj["rule_score"],
            llm=obj["llm"],
            degraded=obj["degraded"],
            entity=AlertEntity(obj["entity"]["account"], obj["entity"]["symbol"]),
            window=WindowBounds(parse_ts(obj["window"]["start_ts"]), parse_ts(obj["window"]["end_ts"])),
            evidence=Evidence(
                features=dict(obj["evidence"]["features"]),
                order_ids=tuple(obj["evidence"]["order_ids"]),
                summary=obj["evidence"]["summary"],
            ),
            timings=Timings(
                event_ns=parse_ts(t["event_ts"]),
                detected_ns=parse_ts(t["detected_ts"]),
                published_ns=None if t["published_ts"] is None else parse_ts(t["published_ts"]),
            ),
        )
