"""What a detector hands to the scorer: a pattern seen, with its evidence."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from riskstream.records import AlertEntity, Category, Evidence, WindowBounds


@dataclass(frozen=True, slots=True)
class Candidate:
    category: Category
    entity: AlertEntity
    window: WindowBounds
    evidence: Evidence
    strength: float
    """Observed value over its threshold (>= 1): how far past the line the pattern went."""
    discriminator: str = ""
    """Extra identity where order ids alone do not separate two alerts (e.g. the limit kind)."""

    @property
    def alert_id(self) -> str:
        """Same category, entity and evidence orders -> same id, on every replay."""
        parts = (
            self.category.value,
            self.entity.account or "",
            self.entity.symbol or "",
            self.discriminator,
            ",".join(self.evidence.order_ids),
        )
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    @property
    def event_ns(self) -> int:
        return self.window.end_ns
