"""One module per typology. Each detector is a pure function of the new event, the key's
state and the market, returning candidates with their evidence, or nothing."""

from riskstream.core.detectors.base import DetectionContext
from riskstream.core.detectors.fat_finger import detect_fat_finger
from riskstream.core.detectors.limits import detect_limit_breach
from riskstream.core.detectors.spoofing import detect_spoofing
from riskstream.core.detectors.wash_trade import detect_wash_trade

__all__ = [
    "DetectionContext",
    "detect_fat_finger",
    "detect_limit_breach",
    "detect_spoofing",
    "detect_wash_trade",
]
