"""Each detector and tracker runs only on the kinds of order event it is registered for
(:data:`riskstream.core.surveillance.PRE_APPLY` and the others): on every other kind it must
return nothing and change nothing, or skipping it would change the alerts."""

from __future__ import annotations

import dataclasses
import itertools

from riskstream.core.detectors.fat_finger import _outsized, _size_multiple
from riskstream.core.fold import EventTimeDetector
from riskstream.core.state import AccountState
from riskstream.core.surveillance import POST_APPLY, PRE_APPLY, TRACKERS
from riskstream.detection import detection_context
from riskstream.records import OrderEvent, OrderEventType
from riskstream.settings import Settings
from riskstream.sim.market import MarketSimulator

START_NS = 1_767_360_600 * 1_000_000_000


def _as(event: OrderEvent, kind: OrderEventType) -> OrderEvent:
    if kind is OrderEventType.FILL:
        return dataclasses.replace(
            event,
            event=kind,
            last_qty=event.last_qty or event.qty,
            last_px=event.last_px or event.price or 100.0,
        )
    return dataclasses.replace(event, event=kind)


def test_what_a_detector_skips_it_would_not_have_read() -> None:
    settings = Settings()
    detector = EventTimeDetector(detection_context(settings, {}), settings.windows.size_ewma_alpha)
    ctx = detector.ctx
    alpha = settings.windows.size_ewma_alpha
    checked = 0
    for n, event in enumerate(itertools.islice(MarketSimulator(7, START_NS, 400.0).events(), 40_000)):
        if isinstance(event, OrderEvent) and n % 3 == 0:
            state = detector.accounts.get(event.account) or AccountState()
            before = state.to_bytes()
            for kind in OrderEventType:
                probe = _as(event, kind)
                for run, kinds in (*PRE_APPLY, *POST_APPLY):
                    if kind not in kinds:
                        assert run(probe, state, ctx) == [], (run, kind)
                        checked += 1
                for track, kinds in TRACKERS:
                    if kind not in kinds:
                        track(probe, state, ctx, alpha)
                        checked += 1
            assert state.to_bytes() == before, event
        detector.feed(event)
    assert checked > 50_000


def test_the_fat_finger_gate_reads_the_size_multiple_it_judges() -> None:
    """The fat-finger detector returns early when neither price nor size can alert; its size
    gate must be the very multiple the full judgement compares (own sizes or displayed depth)."""
    settings = Settings()
    detector = EventTimeDetector(detection_context(settings, {}), settings.windows.size_ewma_alpha)
    compared = 0
    for event in itertools.islice(MarketSimulator(11, START_NS, 400.0).events(), 30_000):
        if isinstance(event, OrderEvent) and event.event is OrderEventType.NEW:
            state = detector.accounts.get(event.account) or AccountState()
            for scale in (1.0, 10.0, 1000.0):
                probe = dataclasses.replace(event, qty=event.qty * scale)
                judged = _outsized(probe, state, detector.ctx)
                assert _size_multiple(probe, state, detector.ctx) == (judged[0] if judged else None)
                compared += judged is not None
        detector.feed(event)
    assert compared > 1_000
