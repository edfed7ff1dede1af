"""What every detector may read besides the event and the account's state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from riskstream.core.calendar import SessionCalendar
from riskstream.core.limits import RiskLimits
from riskstream.core.state import SymbolState
from riskstream.core.windows import SlidingWindow
from riskstream.settings import DetectorSettings


@dataclass(frozen=True, slots=True)
class DetectionContext:
    params: DetectorSettings
    window: SlidingWindow
    limits: RiskLimits
    market: Mapping[str, SymbolState]
    """Current market per symbol, from market-data."""
    calendar: SessionCalendar = field(
        default_factory=lambda: SessionCalendar.parse("16:00", "America/New_York")
    )
    """Session closes, for marking the close."""
