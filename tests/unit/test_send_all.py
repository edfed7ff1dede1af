"""Publishing many records: each goes into the producer's buffer before the next is offered,
and the publish ends only when the broker acknowledged all of them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import pytest

from riskstream.sinks.alerts import send_all


class BufferingProducerDouble:
    """Hand-written double of a producer: buffering a record takes a turn of the loop, the
    acknowledgements come when the test says so. Counts how many records were being buffered
    at the same time."""

    def __init__(self, records: int) -> None:
        self.records = records
        self.all_buffered = asyncio.Event()
        self.buffering = 0
        self.most_buffering = 0
        self.buffered: list[bytes] = []
        self.acks: list[asyncio.Future[object]] = []

    async def __call__(self, topic: str, key: bytes, value: bytes) -> Awaitable[object]:
        self.buffering += 1
        self.most_buffering = max(self.most_buffering, self.buffering)
        await asyncio.sleep(0)
        self.buffering -= 1
        self.buffered.append(value)
        ack: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        if len(self.acks) == self.records:
            self.all_buffered.set()
        return ack


async def test_records_are_buffered_one_after_the_other_in_order() -> None:
    producer = BufferingProducerDouble(500)
    publishing = asyncio.create_task(send_all(producer, "t", ((b"k", b"%d" % i) for i in range(500))))
    await producer.all_buffered.wait()
    assert producer.most_buffering == 1
    assert producer.buffered == [b"%d" % i for i in range(500)]
    assert not publishing.done()
    for ack in producer.acks[:-1]:
        ack.set_result(None)
    await asyncio.sleep(0)
    assert not publishing.done(), "returned before the last acknowledgement"
    producer.acks[-1].set_result(None)
    await publishing


async def test_a_refused_record_fails_the_publish() -> None:
    producer = BufferingProducerDouble(2)
    publishing = asyncio.create_task(send_all(producer, "t", [(b"k", b"a"), (b"k", b"b")]))
    await producer.all_buffered.wait()
    producer.acks[0].set_result(None)
    producer.acks[1].set_exception(RuntimeError("broker refused"))
    with pytest.raises(RuntimeError, match="broker refused"):
        await publishing
