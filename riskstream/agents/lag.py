"""Lag monitoring: the broker's end offsets against what the fold has reached, turned into the
lag gauges, readiness conditions, stalled-partition reports and, when only a restart helps, an
exit. The verdict itself is the pure :class:`~riskstream.agents.watchdog.StreamWatchdog`; this
class asks the questions and reports the answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass

from faust.types import TP

from riskstream.agents.pipeline import Source
from riskstream.agents.watchdog import StreamWatchdog
from riskstream.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LagSources:
    """Where the monitor reads: each a call into the worker's consumers and fold."""

    assigned: Callable[[], list[TP]]
    """Owned trade-logs partitions now."""
    end_offsets: Callable[[list[TP]], Awaitable[Mapping[TP, int]]]
    """Asked of the broker; raises when it does not answer."""
    positions: Callable[[], Mapping[Source, int]]
    """Last offset folded or passed per input partition."""
    committed: Callable[[TP], int | None]
    held: Callable[[], set[Source]]
    """Partitions paused by the event-time merge (held on purpose, not stalled)."""
    market_partitions: Callable[[], list[int]]
    market_end: Callable[[int], int | None]
    """End offset of a market-data partition as the market feed last saw it."""
    market_failure: Callable[[], str | None]
    waiting_on: Callable[[], list[Source]]
    """Partitions the fold waits on now (for the stall report)."""
    fetch_state: Callable[[], object] = lambda: None
    """What the consumer says about fetching them (for the stall report)."""
    fold: Callable[[], tuple[int, Hashable]] = lambda: (0, None)
    """Events the fold holds, and the key of the last one it released."""
    merge_state: Callable[[], object] = lambda: None
    """The event-time merge's view of every partition (for the stall report)."""


class LagMonitor:
    def __init__(
        self,
        sources: LagSources,
        watchdog: StreamWatchdog[TP],
        metrics: Metrics,
        market_topic: str,
        crash: Callable[[BaseException, str], Awaitable[None]],
    ) -> None:
        self._s = sources
        self._watchdog = watchdog
        self._m = metrics
        self._market_topic = market_topic
        self._crash = crash

    async def poll(self) -> None:
        s = self._s
        assigned = s.assigned()
        ends: Mapping[TP, int] | None
        try:
            ends = await s.end_offsets(assigned)
        except Exception as exc:
            ends = None
            log.warning("broker did not answer end offsets: %r", exc)
        positions = s.positions()
        processed = {TP(*k): v for k, v in positions.items() if k[0] != self._market_topic}
        committed = {tp: s.committed(tp) for tp in assigned}
        paused = {TP(*k) for k in s.held()}
        health = self._watchdog.observe(ends, processed, committed, paused, s.fold())
        m = self._m
        m.dependency_up.labels("broker").set(1 if health.broker_up else 0)
        m.set_condition("broker", None if health.broker_up else "end offsets not answered")
        for tp, lag in health.lag.items():
            m.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
        for partition in s.market_partitions():
            end = s.market_end(partition)
            done = positions.get((self._market_topic, partition), -1) + 1
            if end is not None:
                m.consumer_lag.labels(self._market_topic, str(partition)).set(max(0, end - done))
        m.stalled_partitions.set(len(health.stalled))
        if health.stalled:
            log.error(
                "no progress on %s with records waiting; the fold waits on %s; fetching: %s",
                sorted(map(str, health.stalled)),
                s.waiting_on(),
                s.fetch_state(),
            )
        if health.fold_stalled_s is not None:
            log.error(
                "the fold has released nothing for %.0f s with events held; it waits on %s;"
                " merge: %s; fetching: %s",
                health.fold_stalled_s,
                s.waiting_on(),
                s.merge_state(),
                s.fetch_state(),
            )
        m.set_condition("stream", _stream_condition(health.stalled, health.fold_stalled_s))
        m.set_condition("market_feed", s.market_failure())
        if health.exit_reason is not None:
            await self._crash(RuntimeError(health.exit_reason), "the stream is not moving")


def _stream_condition(stalled: list[TP], fold_stalled_s: float | None) -> str | None:
    if stalled:
        return f"{len(stalled)} stalled partitions"
    if fold_stalled_s is not None:
        return f"the fold released nothing for {fold_stalled_s:.0f} s"
    return None
