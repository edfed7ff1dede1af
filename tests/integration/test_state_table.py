"""The account-state changelog as the worker writes it, on a real Tansu broker with a real
aiokafka producer: each partition's records in order, keys as Faust's JSON key codec writes them
(what Faust's changelog recovery reads), a checkpoint's records in a few large batches rather
than one per record, and the marker in a batch of its own after them.

The Faust table is a hand-written double (``TableDouble``: the store's real record file and
the changelog's topic name), standing in for the worker's ``app.Table``, which the worker
integration tests exercise whole (crash, restart, rebalance)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from riskstream.agents.state_table import CHECKPOINT_MARKER, FaustStateTable
from riskstream.agents.table_file import RecordFile
from riskstream.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


class TopicNameDouble:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class StoreDouble:
    def __init__(self, records: RecordFile) -> None:
        self.records = records


class TableDouble:
    def __init__(self, topic: str, records: RecordFile) -> None:
        self.data = StoreDouble(records)
        self.changelog_topic = TopicNameDouble(topic)


async def read_all(bootstrap: str, topic: str, expected: int) -> list[tuple[int, int, str, bytes]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    out: list[tuple[int, int, str, bytes]] = []
    try:
        idle = 0
        while len(out) < expected and idle < 20:
            batch = await consumer.getmany(timeout_ms=500)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                out.extend(
                    (r.partition, r.offset, json.loads(r.key or b"null"), r.value or b"") for r in records
                )
    finally:
        await consumer.stop()
    return out


async def test_a_checkpoint_goes_out_in_few_batches_per_partition_in_order_then_its_marker(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    topic = f"state-{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 2, 1)])
    await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, max_request_size=4 << 20)
    await producer.start()
    try:
        records = RecordFile(tmp_path / "records.log")
        table = FaustStateTable(TableDouble(topic, records), lambda: producer)
        written = {p: [f"ACC-{p}-{k:04d}" for k in range(1500)] for p in (0, 1)}
        for k in range(1500):
            for p in (0, 1):
                table.put_raw(written[p][k], b'{"s":"%s"}' % (b"x" * 600), p)
        assert table.pending == 3000 and records[written[1][7]].startswith(b'{"s":')
        await table.send_pending()
        await producer.flush()
        # Tansu reports a partition's end as its last batch's base offset + 1: one batch per
        # record would put it at 1500.
        after_states = await end_offsets(broker.bootstrap_servers, topic)
        assert all(0 < end <= 1000 for end in after_states.values()), after_states
        table.put_marker(0)
        table.put_marker(1)
        await table.send_pending()
        await producer.flush()
        assert table.pending == 0
    finally:
        await producer.stop()
    got = await read_all(broker.bootstrap_servers, topic, 3002)
    for p in (0, 1):
        keys = [key for partition, _, key, _ in sorted(got) if partition == p]
        assert keys == [*written[p], CHECKPOINT_MARKER]
    # The marker's batch is based at the marker's own offset: it is alone in it.
    assert await end_offsets(broker.bootstrap_servers, topic) == {0: 1501, 1: 1501}


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        return {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()
