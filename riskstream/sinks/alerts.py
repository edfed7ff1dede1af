"""Publish alerts to ``risk-alerts`` and wait for the broker's acknowledgement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from riskstream.core.clock import Clock
from riskstream.records import RiskAlert
from riskstream.records.codec import dumps

SendFn = Callable[[str, bytes, bytes], Awaitable[object]]
"""(topic, key, value) -> completes when the broker acknowledged the record."""


class AlertPublisher:
    def __init__(self, send: SendFn, topic: str, clock: Clock) -> None:
        self._send = send
        self._topic = topic
        self._clock = clock

    async def publish(self, alerts: Sequence[RiskAlert]) -> list[RiskAlert]:
        """Stamp publication time, send every alert, return them as published."""
        if not alerts:
            return []
        now = self._clock()
        stamped = [a.published(now) for a in alerts]
        await asyncio.gather(
            *(self._send(self._topic, a.entity.key.encode(), dumps(a.to_json())) for a in stamped)
        )
        return stamped
