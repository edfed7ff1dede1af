"""``dead-letter``: input that could not be decoded or validated, kept byte for byte."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from riskstream.records.codec import format_ts, parse_ts


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source_topic: str
    """Topic the message was read from."""
    partition: int
    """Its partition."""
    offset: int
    """Its offset: with topic and partition, where to find it again."""
    key: bytes | None
    """The original key bytes."""
    value: bytes | None
    """The original value bytes."""
    reason: str
    """Why it was rejected, in words an operator can act on."""
    dead_lettered_ns: int
    """Wall time it was rejected, epoch ns."""

    @property
    def dedupe_key(self) -> str:
        return f"{self.source_topic}/{self.partition}/{self.offset}"

    def to_json(self) -> dict[str, Any]:
        return {
            "source_topic": self.source_topic,
            "partition": self.partition,
            "offset": self.offset,
            "key_b64": None if self.key is None else base64.b64encode(self.key).decode(),
            "value_b64": None if self.value is None else base64.b64encode(self.value).decode(),
            "reason": self.reason,
            "dead_lettered_at": format_ts(self.dead_lettered_ns),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DeadLetter:
        return cls(
            source_topic=obj["source_topic"],
            partition=obj["partition"],
            offset=obj["offset"],
            key=None if obj["key_b64"] is None else base64.b64decode(obj["key_b64"]),
            value=None if obj["value_b64"] is None else base64.b64decode(obj["value_b64"]),
            reason=obj["reason"],
            dead_lettered_ns=parse_ts(obj["dead_lettered_at"]),
        )
