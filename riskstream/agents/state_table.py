"""The account-state table's side in Kafka: a Faust table's stored records for reads, and its changelog
written in whole batches, one or a few per partition per checkpoint.

Faust writes a changelog record through ``send_changelog``: a ``FutureMessage``, a JSON key
encoding and a trip through its producer buffer per record. A worker over 100 000 accounts
writes about one state per order event (an account seldom changes twice in a second), and a
profile of that run (``bench/state_size.py``) put 11 % of the worker's CPU there. Here the
records of a checkpoint are appended to aiokafka batch builders and each full batch is handed to
the producer once: the same records, keys as Faust's JSON key codec writes them (so Faust's
changelog recovery reads them back), in far fewer, larger produce batches (fewer objects for a
broker such as Tansu to list on every fetch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from aiokafka.producer.message_accumulator import BatchBuilder

CHECKPOINT_MARKER = "\x00checkpoint"
"""Key of the state-less record that ends each checkpoint in a changelog partition."""
CHANGELOG_BATCH_BYTES = 512 * 1024
"""Records per produce batch, in bytes (a larger state goes alone in its batch)."""


class BatchProducer(Protocol):
    """What the writer needs of an aiokafka producer."""

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any: ...


def changelog_key(key: str) -> bytes:
    """A table key as Faust's ``json`` key serializer writes it."""
    return json.dumps(key).encode()


class StoredRecords(Protocol):
    """The table store's records by key (:class:`~riskstream.agents.table_file.RecordFile`)."""

    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, value: bytes, partition: int) -> None: ...

    def commit(self) -> None:
        """End the transaction the puts since the last commit are in."""

    def __iter__(self) -> Iterator[str]: ...


class FaustStateTable:
    """:class:`~riskstream.agents.state_store.StateTable` over a Faust table: reads from its
    store's records, writes them at once and the changelog at :meth:`send_pending`, to the
    partition each record names (a micro-batch mixes partitions, so Faust's current-event
    partition would be wrong)."""

    def __init__(self, table: Any, producer: Callable[[], BatchProducer]) -> None:
        self.table = table
        self._records: StoredRecords = table.data.records
        self._producer = producer
        self._pending: dict[int, list[tuple[bytes, bytes]]] = {}

    def get_raw(self, key: str) -> dict[str, Any] | None:
        value = self._records.get(key)
        return None if value is None else dict(json.loads(value))

    def put_raw(self, key: str, value: bytes, partition: int) -> None:
        self._records.put(key, value, partition)
        self._pending.setdefault(partition, []).append((changelog_key(key), value))

    def put_marker(self, partition: int) -> None:
        self._pending.setdefault(partition, []).append((changelog_key(CHECKPOINT_MARKER), b"{}"))

    def keys(self) -> Iterator[str]:
        return iter(self._records)

    @property
    def pending(self) -> int:
        """Records written to the store and not yet handed to the producer."""
        return sum(len(records) for records in self._pending.values())

    async def send_pending(self) -> None:
        """Hand every pending record to the producer, in order per partition; the caller's
        producer flush then waits for their delivery."""
        self._records.commit()
        pending, self._pending = self._pending, {}
        if not pending:
            return
        producer = self._producer()
        topic = self.table.changelog_topic.get_topic_name()
        for partition, records in sorted(pending.items()):
            batch = BatchBuilder(CHANGELOG_BATCH_BYTES, 0)
            for key, value in records:
                if batch.append(timestamp=None, key=key, value=value) is None:
                    await producer.send_batch(batch, topic, partition=partition)
                    batch = BatchBuilder(CHANGELOG_BATCH_BYTES, 0)
                    batch.append(timestamp=None, key=key, value=value)
            await producer.send_batch(batch, topic, partition=partition)
