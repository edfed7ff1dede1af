"""One module per typology. Each detector is a pure function of the new event, the key's
state and the market, returning candidates with their evidence, or nothing."""

from riskstream.core.detectors.aggression import track_aggression
from riskstream.core.detectors.base import DetectionContext
from riskstream.core.detectors.fat_finger import detect_fat_finger, record_order_size
from riskstream.core.detectors.limits import detect_limit_breach, detect_loss_on_mark, loss_headroom
from riskstream.core.detectors.market_shock import detect_market_shock
from riskstream.core.detectors.marking_close import detect_marking_the_close
from riskstream.core.detectors.momentum import detect_momentum_ignition
from riskstream.core.detectors.ramping import detect_ramping
from riskstream.core.detectors.spoofing import detect_spoofing
from riskstream.core.detectors.stuffing import detect_quote_stuffing
from riskstream.core.detectors.wash_trade import detect_wash_trade

__all__ = [
    "DetectionContext",
    "detect_fat_finger",
    "detect_limit_breach",
    "detect_loss_on_mark",
    "detect_market_shock",
    "detect_marking_the_close",
    "detect_momentum_ignition",
    "detect_quote_stuffing",
    "detect_ramping",
    "detect_spoofing",
    "detect_wash_trade",
    "loss_headroom",
    "record_order_size",
    "track_aggression",
]
