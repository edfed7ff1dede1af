"""Hand-built order sequences for the detector tests."""

from __future__ import annotations

from riskstream.core.detectors import DetectionContext
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.core.state import SymbolState
from riskstream.core.windows import SlidingWindow
from riskstream.records import OrderEvent, OrderEventType, Side
from riskstream.settings import DetectorSettings

T0 = 1_764_064_800_000_000_000
MS = 1_000_000


def order(
    kind: str,
    oid: str,
    side: str,
    qty: float,
    price: float | None,
    t_ms: int,
    account: str = "ACC-1",
    symbol: str = "AAPL",
    *,
    last_qty: float | None = None,
    last_px: float | None = None,
    counterparty: str | None = None,
) -> OrderEvent:
    return OrderEvent(
        OrderEventType(kind),
        oid,
        account,
        "TRD-1",
        symbol,
        Side(side),
        qty,
        price,
        T0 + t_ms * MS,
        last_qty,
        last_px,
        counterparty,
    )


def fill(
    oid: str,
    side: str,
    qty: float,
    px: float,
    t_ms: int,
    account: str = "ACC-1",
    symbol: str = "AAPL",
    counterparty: str | None = None,
) -> OrderEvent:
    return order(
        "fill", oid, side, qty, px, t_ms, account, symbol, last_qty=qty, last_px=px, counterparty=counterparty
    )


def context(
    market: dict[str, SymbolState] | None = None, limits: RiskLimits | None = None, **params: float
) -> DetectionContext:
    return DetectionContext(
        params=DetectorSettings(**params),
        window=SlidingWindow.of_seconds(60, 5, 5000),
        limits=limits or RiskLimits(AccountLimits(1e6, 5e7, 5e5)),
        market=market
        if market is not None
        else {"AAPL": SymbolState(bid=100.0, ask=100.02, bid_size=1000, ask_size=1000, ts_ns=T0)},
    )
