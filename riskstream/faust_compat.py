"""The one place riskstream reaches into Faust's driver.

1. Faust's aiokafka driver hard-codes ``fetch_max_wait_ms=1500``. Brokers that hold a fetch for
the full wait when a partition is idle (Tansu does) then add up to 1.5 s to every event: measured
here, a p50 of 404 ms at 1500 ms against 2 ms at 10 ms. The worker consumer gets the wait from
settings instead.
2. Faust commits the offsets of acknowledged events; riskstream commits the offsets its own
checkpoint has made durable (state, audit), which need not be what Faust has acknowledged at
that instant. :func:`commit_offsets` hands explicit offsets to Faust's consumer.
3. Faust's drain loop hands each fetched message to the streams through ``wait_first``, which
races the delivery against the flow-suspend event with four new tasks per message: about a
quarter of a bare agent's per-message cost here. :meth:`_RiskstreamConsumer._drain_messages`
awaits the delivery directly. What the race bought is kept: no message is delivered once the
flow is suspended, and a delivery blocked at a rebalance ends when Faust stops the fetcher
(``_stop_fetcher`` cancels this loop right after suspending the flow). When the stream's
buffer is full (a backlog), the loop waits for room itself: Faust's delivery would otherwise
start a task per message to wait in. Faust's own throttle (a partition whose record met a nearly
full buffer is not fetched until the buffer runs empty) is off: it starved the busiest partition.
The loop is Faust 0.15's own otherwise;
``tests/unit/test_faust_compat.py`` pins the source it was adapted from.
4. Faust's Monitor sensor keeps statistics per message and event for Faust's web views, which
riskstream turns off; the lean app leaves it out of the sensors.
5. Event-time alignment pauses partitions in the aiokafka consumer (:func:`pause_partitions`),
not through Faust's pause, which can lose records.
6. Faust's drain loop takes any offset at or past the partition's read offset, so records from a
fetch that was in flight while Faust sought back to the committed offsets (after a restart's
recovery) were delivered, moved the read offset past the records between, and those were then
dropped as already read: a block of input lost without a word. The lean loop keeps the read
offset as the next offset it expects, delivers exactly that one, and treats a forward jump in
a gapless input topic as an error (:class:`OffsetContinuity`): it seeks back, counts it, and
skips the jump only when the broker keeps answering past the missing offsets.
7. Faust's ``Consumer.seek`` calls aiokafka's ``seek`` from the event loop's thread, while
aiokafka runs in Faust's consumer thread. A seek that lands while that thread hands out a fetch
of the partition is overwritten: the handout ends by setting the position past the records it
handed out, and the records between the seek's offset and there are not read again. When more
records follow, the drain sees the jump and seeks again; after the partition's last records
nothing follows, and the fold waited for them for good (CI: 177 records of trade-logs[1] after
the crash test's fourth restart). Seeks run in the consumer thread instead, like pausing.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP


class _FetchWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = getattr(self.consumer.app, "fetch_max_wait_ms", 1500)
        return consumer


class _FetchWaitConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _seek(self, partition: TP, offset: int) -> None:
        """Seek in the aiokafka consumer's own thread (see 7. above): Faust seeks from the
        event loop's thread, while the consumer thread may be handing out a fetch of the
        partition and then sets the position past that fetch, over the seek."""
        thread: Any = self._thread
        kafka = thread._ensure_consumer()
        tp = TopicPartition(partition.topic, partition.partition)

        async def seek() -> None:
            # A rebalance may have taken the partition away since the decision.
            if tp in kafka.assignment():
                kafka.seek(tp, offset)

        await thread.call_thread(seek)


FULL_STREAM_POLL_S = 0.001
"""How often a drain waiting for room in a full stream buffer looks again."""
GAP_RESEEKS = 3
"""Seeks back to a missing offset before the jump past it is accepted: the broker answered past
it from fresh fetches that many times, so the records are not in the log (deleted by retention,
or transaction markers of a transactional producer)."""


class Continuity(enum.Enum):
    DELIVER = "deliver"
    DROP = "drop"
    """Already delivered (a refetch), or the stale rest of a fetch that jumped."""
    RESEEK = "reseek"
    """A jump forward: seek back to the expected offset, deliver nothing of this fetch."""
    REWOUND = "rewound"
    """Fresh fetches keep answering below the expected offset: the partition's log restarted
    (a broker that lost its data). Offsets, state and commits describe another log now."""


@dataclass(slots=True)
class _Jump:
    expected: int
    fetch: int
    seeks: int


GapReport = Callable[[str, int, int, int, str], None]
"""(topic, partition, expected offset, offset received, outcome): outcome ``reseek`` or
``skipped`` for a forward jump, ``rewound`` for a log that restarted below the expected offset."""


class OffsetContinuity:
    """Decides, per record of a gapless topic, whether the drain delivers it, given the next
    offset expected from the partition and the number of the fetch it came in."""

    def __init__(self, reseeks: int = GAP_RESEEKS) -> None:
        self._reseeks = reseeks
        self._jumps: dict[Any, _Jump] = {}
        self._behind: dict[Any, _Jump] = {}
        """Partitions answering below the expected offset: since which fetch, how many fetches."""

    def check(self, tp: Any, expected: int | None, offset: int, fetch: int) -> Continuity:
        if expected is None or offset == expected:
            self._jumps.pop(tp, None)
            self._behind.pop(tp, None)
            return Continuity.DELIVER
        if offset < expected:
            return self._below(tp, expected, fetch)
        self._behind.pop(tp, None)
        jump = self._jumps.get(tp)
        if jump is None or jump.expected != expected:
            self._jumps[tp] = _Jump(expected, fetch, 1)
            return Continuity.RESEEK
        if jump.fetch == fetch:
            return Continuity.DROP
        if jump.seeks >= self._reseeks:
            del self._jumps[tp]
            return Continuity.DELIVER
        jump.seeks += 1
        jump.fetch = fetch
        return Continuity.RESEEK

    def _below(self, tp: Any, expected: int, fetch: int) -> Continuity:
        """A stale record of a fetch that crossed a seek is dropped; fetches issued after it
        that still answer below the expected offset mean the log itself went back."""
        behind = self._behind.get(tp)
        if behind is None or behind.expected != expected:
            self._behind[tp] = _Jump(expected, fetch, 1)
            return Continuity.DROP
        if fetch != behind.fetch:
            behind.fetch = fetch
            behind.seeks += 1
        if behind.seeks > self._reseeks:
            del self._behind[tp]
            return Continuity.REWOUND
        return Continuity.DROP

    def forget(self, tp: Any) -> None:
        self._jumps.pop(tp, None)
        self._behind.pop(tp, None)


class _RiskstreamConsumer(_FetchWaitConsumer):
    def on_buffer_full(self, tp: TP) -> None:
        """Faust stops fetching a partition whose record found the stream buffer nearly full,
        and fetches it again only once the buffer has run empty. The other partitions keep the
        buffer from running empty, so the partition waits while they run ahead: the busiest
        trade-logs partition fell a second of event time behind at 5 000 events/s, and the
        event-time merge held every other partition back for it. The drain loop waits for
        room itself (below), which throttles every partition alike."""

    async def _drain_messages(self, fetcher: Any) -> None:
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        flow_suspended = self.suspend_flow.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        conductor: Any = self.app.topics
        channels_of = conductor._tp_index.get

        def wait_for_room(tp: TP) -> bool:
            return any(channel.queue.full() for channel in channels_of(tp, ())) and not (
                flow_suspended() or consumer_should_stop() or fetcher_should_stop()
            )

        yield_every = 100
        num_since_yield = 0
        app: Any = self.app
        gapless: frozenset[str] = getattr(app, "gapless_topics", frozenset())
        report: GapReport | None = getattr(app, "on_offset_gap", None)
        continuity = OffsetContinuity()
        fetch = 0
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait: AsyncIterator[Any] = getmany(timeout=1.0)
                fetch += 1
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await asyncio.sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        expected = get_read_offset(tp)
                        if tp.topic in gapless:
                            verdict = continuity.check(tp, expected, offset, fetch)
                            if verdict is Continuity.DROP:
                                continue
                            if verdict is Continuity.RESEEK:
                                assert expected is not None
                                if report is not None:
                                    report(tp.topic, tp.partition, expected, offset, "reseek")
                                await self._seek(tp, expected)
                                continue
                            if verdict is Continuity.REWOUND:
                                assert expected is not None
                                if report is not None:
                                    report(tp.topic, tp.partition, expected, offset, "rewound")
                                continue
                            if expected is not None and offset != expected and report is not None:
                                report(tp.topic, tp.partition, expected, offset, "skipped")
                        elif expected is not None and offset < expected:
                            continue
                        gap = offset - (expected or 0)
                        if gap > 0 and expected and acks_enabled_for(message.topic):
                            await self._add_gap(tp, expected, offset)
                        if commit_every is not None and self._n_acked >= commit_every:
                            self._n_acked = 0
                            await self.commit()
                        # A poll: asyncio.Queue has no wait for room short of a put.
                        while wait_for_room(tp):  # noqa: ASYNC110
                            await asyncio.sleep(FULL_STREAM_POLL_S)
                        if flow_suspended():
                            # Not delivered: the read offset stays, and Faust seeks back to
                            # the committed offsets before the flow resumes.
                            continue
                        await callback(message)
                        set_read_offset(tp, offset + 1)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class RiskstreamApp(faust.App):
    """A Faust app whose worker consumer waits at most ``fetch_max_wait_ms`` per fetch and,
    with ``lean_drain`` (the default; off only to benchmark stock Faust), delivers fetched
    messages without a per-message task race and without Faust's statistics sensor."""

    def __init__(
        self,
        *args: Any,
        fetch_max_wait_ms: int,
        lean_drain: bool = True,
        gapless_topics: Iterable[str] = (),
        on_offset_gap: GapReport | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.lean_drain = lean_drain
        self.gapless_topics = frozenset(gapless_topics)
        """Topics whose offsets have no holes (not compacted, no transaction markers): a jump
        in them is a lost read, not a property of the log."""
        self.on_offset_gap = on_offset_gap

    def on_init_dependencies(self) -> Iterable[Any]:
        services = super().on_init_dependencies()
        if self.lean_drain:
            # Faust's Monitor keeps statistics per message and per event for Faust's web views,
            # which riskstream turns off; riskstream's Prometheus metrics say what they would.
            self.sensors.remove(self.monitor)
        return services

    def _new_transport(self) -> Any:
        transport = super()._new_transport()
        consumer = _RiskstreamConsumer if self.lean_drain else _FetchWaitConsumer
        transport.Consumer = consumer  # type: ignore[misc]
        return transport


async def commit_offsets(app: faust.App, offsets: Mapping[TP, int]) -> bool:
    """Commit ``offsets`` (next offset to read, per partition) for the partitions still
    assigned; False when none is. A failure raises, so the caller counts and retries it:
    Faust's own commit step logs it, crashes its consumer thread and returns False, which is how
    a broker restart once left a worker consuming nothing while it reported ready."""
    consumer: Any = app.consumer
    assignment = consumer.assignment()
    committable = {tp: offset for tp, offset in offsets.items() if tp in assignment}
    if not committable:
        return False
    thread: Any = consumer._thread
    kafka = thread._ensure_consumer()
    request = {
        TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(o, "") for tp, o in committable.items()
    }
    await thread.call_thread(kafka.commit, request)
    consumer._committed_offset.update(committable)
    thread.tp_last_committed_at.update(dict.fromkeys(committable, time.monotonic()))
    return True


async def end_offsets(app: faust.App, tps: Iterable[TP], timeout_s: float) -> dict[TP, int]:
    """The broker's end offsets of ``tps``, asked over the network (the consumer's cached
    highwater goes stale when its fetcher stops); raises when the broker does not answer in
    ``timeout_s``."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    kafka = thread._ensure_consumer()
    partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]
    if not partitions:
        return {}

    async def ask() -> Any:
        return await asyncio.wait_for(kafka.end_offsets(partitions), timeout_s)

    answer = await asyncio.wait_for(thread.call_thread(ask), timeout_s * 2)
    return {TP(tp.topic, tp.partition): int(offset) for tp, offset in answer.items()}


async def pause_partitions(app: faust.App, tps: Iterable[TP]) -> None:
    """Stop fetching ``tps`` in the aiokafka consumer itself, in its thread. Faust's own
    ``pause_partitions`` drops the rest of a fetched batch of a partition paused mid-delivery,
    and its stream-buffer flow control can make the partition active again unseen; aiokafka's
    pause keeps the consumer's position, so its fetched-but-unreturned records are read again
    after the resume, and nothing is lost."""
    await _call_kafka(app, "pause", tps)


async def resume_partitions(app: faust.App, tps: Iterable[TP]) -> None:
    """Undo :func:`pause_partitions`."""
    await _call_kafka(app, "resume", tps)


async def _call_kafka(app: faust.App, method: str, tps: Iterable[TP]) -> None:
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    kafka = thread._ensure_consumer()
    partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]
    assigned = kafka.assignment()

    async def call() -> None:
        # A rebalance may have taken a partition away since the decision.
        getattr(kafka, method)(*(tp for tp in partitions if tp in assigned))

    await thread.call_thread(call)


async def committed_offsets(app: faust.App, tps: Iterable[TP], timeout_s: float) -> dict[TP, int | None]:
    """The group's committed offsets of ``tps``, asked of the broker (None: nothing committed)."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    kafka = thread._ensure_consumer()
    partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]

    async def ask() -> dict[TP, int | None]:
        out: dict[TP, int | None] = {}
        for tp in partitions:
            offset = await asyncio.wait_for(kafka.committed(tp), timeout_s)
            out[TP(tp.topic, tp.partition)] = None if offset is None or offset < 0 else int(offset)
        return out

    result: dict[TP, int | None] = await asyncio.wait_for(thread.call_thread(ask), timeout_s * 2)
    return result


async def log_start_offsets(app: faust.App, tps: Iterable[TP], timeout_s: float) -> dict[TP, int]:
    """The first offset each of ``tps`` still holds, asked of the broker (ListOffsets earliest:
    it moves when retention deletes the start of the log); any topic, assigned or not."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    kafka = thread._ensure_consumer()
    partitions = [TopicPartition(tp.topic, tp.partition) for tp in tps]

    async def ask() -> dict[TP, int]:
        starts = await asyncio.wait_for(kafka.beginning_offsets(partitions), timeout_s)
        return {TP(tp.topic, tp.partition): int(offset) for tp, offset in starts.items()}

    result: dict[TP, int] = await asyncio.wait_for(thread.call_thread(ask), timeout_s * 2)
    return result


def kafka_producer(app: faust.App) -> Any:
    """The aiokafka producer under Faust's, for writes that hand it whole batches
    (:mod:`riskstream.agents.state_table`)."""
    return app.producer._ensure_producer()  # type: ignore[attr-defined]


def fetch_state(app: faust.App) -> dict[str, list[str]]:
    """Why a partition might not be fetched, for a stall report: Faust's active and
    buffer-throttled partitions and aiokafka's paused ones."""
    consumer: Any = app.consumer
    out: dict[str, list[str]] = {}
    active = consumer._active_partitions
    out["faust_active"] = sorted(map(str, active)) if active is not None else ["all"]
    out["faust_buffer_full"] = sorted(map(str, consumer._buffered_partitions))
    try:
        kafka = consumer._thread._ensure_consumer()
        out["aiokafka_paused"] = sorted(map(str, kafka.paused()))
    except Exception as exc:
        out["aiokafka_paused"] = [repr(exc)]
    return out


def fetched_end(app: faust.App, tp: TP) -> tuple[int, float] | None:
    """The end offset ``tp``'s latest fetch saw and when (epoch seconds) that fetch was
    answered; None before the first fetch or when ``tp`` is not assigned."""
    consumer: Any = app.consumer
    try:
        kafka = consumer._thread._ensure_consumer()
        partition = TopicPartition(tp.topic, tp.partition)
        end = kafka.highwater(partition)
        at_ms = kafka.last_poll_timestamp(partition)
    except (AssertionError, KafkaError, AttributeError):
        return None
    if end is None or at_ms is None:
        return None
    return int(end), at_ms / 1000
