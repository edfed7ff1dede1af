"""Settings become the pure detection context here, for the worker (``app.py``) and for the
offline backtest alike, so both run the detectors with the same window, limits and thresholds."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from riskstream.core.calendar import SessionCalendar
from riskstream.core.detectors import DetectionContext
from riskstream.core.limits import AccountLimits, RiskLimits, parse_limits
from riskstream.core.state import SymbolState
from riskstream.core.windows import SlidingWindow
from riskstream.settings import Settings


def load_limits(settings: Settings) -> RiskLimits:
    d = settings.limits
    default = AccountLimits(d.max_position_qty, d.max_gross_notional, d.max_order_qty, d.max_loss)
    if settings.limits_file is None:
        return RiskLimits(default)
    return parse_limits(Path(settings.limits_file).read_text(), default)


def detection_context(settings: Settings, market: Mapping[str, SymbolState]) -> DetectionContext:
    w = settings.windows
    return DetectionContext(
        params=settings.detectors,
        window=SlidingWindow.of_seconds(w.activity_window_s, w.grace_s, w.max_events_per_account),
        limits=load_limits(settings),
        market=market,
        calendar=SessionCalendar.parse(
            settings.detectors.close_local_time, settings.detectors.close_timezone
        ),
    )
