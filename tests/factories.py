"""Hand-built order sequences for the detector tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from riskstream.core.candidates import Candidate
from riskstream.core.detectors import DetectionContext
from riskstream.core.fold import EventTimeDetector
from riskstream.core.limits import AccountLimits, RiskLimits
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.windows import SlidingWindow
from riskstream.records import OrderEvent, OrderEventType, Print, Quote, Side
from riskstream.records.market_data import MarketEvent
from riskstream.settings import DetectorSettings

T0 = 1_764_064_800_000_000_000
MS = 1_000_000


def order(
    kind: str,
    oid: str,
    side: str,
    qty: float,
    price: float | None,
    t_ms: float,
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
        T0 + int(t_ms * MS),
        last_qty,
        last_px,
        counterparty,
    )


def fill(
    oid: str,
    side: str,
    qty: float,
    px: float,
    t_ms: float,
    account: str = "ACC-1",
    symbol: str = "AAPL",
    counterparty: str | None = None,
) -> OrderEvent:
    return order(
        "fill", oid, side, qty, px, t_ms, account, symbol, last_qty=qty, last_px=px, counterparty=counterparty
    )


def context(
    market: Mapping[str, SymbolState] | None = None, limits: RiskLimits | None = None, **params: float
) -> DetectionContext:
    return DetectionContext(
        params=DetectorSettings(**params),
        window=SlidingWindow.of_seconds(60, 5, 5000),
        limits=limits or RiskLimits(AccountLimits(1e6, 5e7, 5e5)),
        market=market
        if market is not None
        else {"AAPL": SymbolState(bid=100.0, ask=100.02, bid_size=1000, ask_size=1000, ts_ns=T0)},
    )


def quote(t_ms: float, bid: float, ask: float, size: float = 1000, symbol: str = "AAPL") -> Quote:
    return Quote(symbol, "XNAS", T0 + int(t_ms * MS), bid, ask, size, size)


def trade_print(t_ms: float, price: float, size: float, symbol: str = "AAPL") -> Print:
    return Print(symbol, "XNAS", T0 + int(t_ms * MS), price, size)


def replay(
    events: Iterable[OrderEvent | MarketEvent],
    ctx: DetectionContext,
    accounts: dict[str, AccountState] | None = None,
) -> list[Candidate]:
    """Orders and market data in the given order through the backtest's detector."""
    detector = EventTimeDetector(ctx, 0.05, accounts)
    return [c for event in events for c in detector.feed(event)] + detector.finish()


class StepClockDouble:
    """A hand-written clock that moves a second each time it is read: every time budget given
    against it is spent at the first look (sliced work does one step per slice)."""

    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        self.now_s += 1.0
        return self.now_s
