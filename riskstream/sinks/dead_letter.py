"""Route undecodable input to ``dead-letter`` with its bytes, origin and reason."""

from __future__ import annotations

from collections.abc import Sequence

from riskstream.records import DeadLetter
from riskstream.records.codec import dumps
from riskstream.sinks.alerts import SendFn, send_all


class DeadLetterPublisher:
    def __init__(self, send: SendFn, topic: str) -> None:
        self._send = send
        self._topic = topic

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        records = ((d.dedupe_key.encode(), dumps(d.to_json())) for d in letters)
        await send_all(self._send, self._topic, records)
