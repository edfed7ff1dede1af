"""Publish the lit-book fills of linked accounts to ``linked-fills``, keyed by the owner, so
that every worker can pair the legs of a wash between accounts other workers own."""

from __future__ import annotations

from collections.abc import Sequence

from riskstream.records.codec import dumps
from riskstream.records.linked_fills import LinkedFill
from riskstream.sinks.alerts import SendFn, send_all


class LinkedFillPublisher:
    def __init__(self, send: SendFn, topic: str) -> None:
        self._send = send
        self.topic = topic

    async def publish(self, fills: Sequence[LinkedFill]) -> None:
        await send_all(self._send, self.topic, ((f.owner.encode(), dumps(f.to_json())) for f in fills))
