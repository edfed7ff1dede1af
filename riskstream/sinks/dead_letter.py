"""Route undecodable input to ``dead-letter`` with its bytes, origin and reason."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from riskstream.records import DeadLetter
from riskstream.records.codec import dumps
from riskstream.sinks.alerts import SendFn


class DeadLetterPublisher:
    def __init__(self, send: SendFn, topic: str) -> None:
        self._send = send
        self._topic = topic

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        await asyncio.gather(
            *(self._send(self._topic, d.dedupe_key.encode(), dumps(d.to_json())) for d in letters)
        )
