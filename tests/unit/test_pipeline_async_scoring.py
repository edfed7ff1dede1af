"""The scorer off the fold path: while a batch's candidates are with a slow scorer the fold goes
on with the next batches, alerts still go out in the order their batches were folded, at most
``scoring_in_flight`` batches wait at once, and the checkpoint's drain waits for all of them.

The scorer here is a hand-written double (``GatedScorer``): it holds each call until the test
opens its gate, standing in for an LLM that answers when it answers. The pipeline, state,
detectors, rule assessments and alert encoding are the real ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.agents.checkpoint import Checkpoint, CheckpointIO
from riskstream.agents.pipeline import Pipeline
from riskstream.core.candidates import Candidate
from riskstream.llm import RuleScorer
from riskstream.llm.base import Assessment, Scorer, UpdateFn
from riskstream.llm.rules import assess_by_rules
from riskstream.metrics import Metrics
from riskstream.sinks import AuditLog, AuditWriter
from tests.unit.test_pipeline_event_time import SendDouble
from tests.unit.test_pipeline_faults import ALERTS, MARKET, TRADES, as_records, order, quote
from tests.unit.test_pipeline_faults import build as faults_build


class GatedScorer:
    """Hand-written double of a slow LLM scorer: call k waits for ``gates[k]``."""

    def __init__(self, calls: int) -> None:
        self.gates = [asyncio.Event() for _ in range(calls)]
        self.calls = 0

    async def start(self) -> None:
        return None

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        gate = self.gates[self.calls]
        self.calls += 1
        await gate.wait()
        return [assess_by_rules(c) for c in candidates]

    def on_update(self, callback: UpdateFn) -> None:
        return None

    async def close(self) -> None:
        return None


class UpdatingScorer(GatedScorer):
    """Hand-written double of an LLM scorer publishing rule scores first: call 0 waits for its
    gate; later calls answer at once with pending rule assessments and the test hands in the
    model's answer through ``update``."""

    def __init__(self) -> None:
        super().__init__(1)
        self.update: UpdateFn | None = None
        self.asked: list[Candidate] = []
        self.has_asked = asyncio.Event()

    async def score(self, candidates: Sequence[Candidate]) -> list[Assessment]:
        if self.calls == 0:
            return await super().score(candidates)
        self.calls += 1
        self.asked.extend(candidates)
        self.has_asked.set()
        return [replace(assess_by_rules(c), pending=True) for c in candidates]

    def on_update(self, callback: UpdateFn) -> None:
        self.update = callback


class RefusingSend(SendDouble):
    """The producer double refusing every alert (a broker that rejects the write)."""

    async def __call__(self, topic: str, key: bytes, value: bytes) -> asyncio.Future[object]:
        if topic == ALERTS:
            raise RuntimeError("broker refused the alert")
        return await super().__call__(topic, key, value)  # type: ignore[return-value]


def build(scorer: Scorer, in_flight: int, send: SendDouble | None = None) -> tuple[Pipeline, SendDouble]:
    p, sent, _ = faults_build(scorer=scorer, scoring_in_flight=in_flight, send=send)
    return p, sent


class BrokerIODouble:
    """Hand-written double of the checkpoint's broker side: records the commits; a commit waits
    for ``answered`` (set by default: the broker answers at once)."""

    def __init__(self, answers: bool = True) -> None:
        self.commits: list[dict[tuple[str, int], int]] = []
        self.answered = asyncio.Event()
        if answers:
            self.answered.set()

    def io(self, timeout_s: float = 30.0) -> CheckpointIO:
        async def nothing() -> None:
            return None

        async def same_log() -> bool:
            return True

        async def commit(offsets: Mapping[tuple[str, int], int]) -> object:
            await self.answered.wait()
            self.commits.append(dict(offsets))
            return None

        return CheckpointIO(nothing, commit, same_log, timeout_s=timeout_s)


async def audited(p: Pipeline, tmp_path: Path) -> AuditLog:
    """The pipeline's audit writer on a SQLite file with the schema (a checkpoint flushes it)."""
    log = AuditLog(create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"))
    await log.ensure_schema()
    p._audit = AuditWriter(log, Metrics())
    return log


def price_typo(oid: str, t_s: float) -> tuple[str, dict[str, object]]:
    """A buy 30 % through the ask: a fat finger on its own, one candidate."""
    return (TRADES, order("new", oid, 10, 130.0, t_s))


def published(send: SendDouble) -> list[str]:
    return [json.loads(v)["evidence"]["order_ids"][0] for topic, _, v in send.sent if topic == ALERTS]


async def test_the_fold_goes_on_while_the_scorer_thinks_and_alerts_keep_their_fold_order() -> None:
    scorer = GatedScorer(3)
    p, send = build(scorer, in_flight=4)
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    await p.on_batch(as_records([price_typo("second", 2)], offsets))
    await p.on_batch(as_records([price_typo("third", 3)], offsets))
    # Three batches folded, none scored yet: the fold did not wait.
    assert p.commit_offsets()[(TRADES, 0)] == 3
    await asyncio.sleep(0.05)
    assert scorer.calls == 3 and published(send) == []
    scorer.gates[2].set()
    scorer.gates[1].set()
    await asyncio.sleep(0.05)
    assert published(send) == []  # the later answers wait for the first batch's
    scorer.gates[0].set()
    await p.drain()
    assert published(send) == ["first", "second", "third"]


async def test_the_models_update_is_published_after_version_1_of_its_alert() -> None:
    scorer = UpdatingScorer()
    p, send = build(scorer, in_flight=4)
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    await p.on_batch(as_records([price_typo("second", 2)], offsets))
    await asyncio.wait_for(scorer.has_asked.wait(), 30)
    assert [c.evidence.order_ids[0] for c in scorer.asked] == ["second"]
    candidate = scorer.asked[0]
    answer = replace(assess_by_rules(candidate), score=0.99, llm={"score": 0.99})
    assert scorer.update is not None
    # The model answers while "second" waits behind "first": its update must wait too.
    update = asyncio.ensure_future(scorer.update(candidate, answer))
    await asyncio.sleep(0.05)
    assert not update.done() and published(send) == []
    scorer.gates[0].set()
    await p.drain()
    await asyncio.wait_for(update, 5)
    bodies = [json.loads(v) for topic, _, v in send.sent if topic == ALERTS]
    assert [(b["evidence"]["order_ids"][0], b["version"], b["llm"]) for b in bodies] == [
        ("first", 1, None),
        ("second", 1, None),
        ("second", 2, {"score": 0.99}),
    ]
    assert bodies[2]["timings"]["detected_ts"] == bodies[1]["timings"]["detected_ts"]


async def test_at_most_the_bound_of_batches_wait_for_the_scorer() -> None:
    scorer = GatedScorer(3)
    p, send = build(scorer, in_flight=1)
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    blocked = asyncio.create_task(p.on_batch(as_records([price_typo("second", 2)], offsets)))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # two in flight over a bound of one: the fold waits
    scorer.gates[0].set()
    await asyncio.wait_for(blocked, 2)
    assert published(send) == ["first"]
    scorer.gates[1].set()
    await p.drain()
    assert published(send) == ["first", "second"]


async def test_drain_waits_for_every_folded_batch_and_the_audit_has_their_alerts() -> None:
    scorer = GatedScorer(1)
    p, send = build(scorer, in_flight=8)
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    drained = asyncio.create_task(p.drain())
    await asyncio.sleep(0.05)
    assert not drained.done()
    scorer.gates[0].set()
    await asyncio.wait_for(drained, 2)
    assert published(send) == ["first"]
    assert p._audit.pending == 1  # submitted, for the checkpoint's flush


async def test_a_publish_that_fails_in_the_background_stops_the_fold_and_every_drain() -> None:
    scorer = GatedScorer(2)
    p, _ = build(scorer, in_flight=8, send=RefusingSend())
    offsets: dict[str, int] = {}
    scorer.gates[0].set()
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    with pytest.raises(RuntimeError, match="refused"):
        await p.drain()
    with pytest.raises(RuntimeError, match="refused"):
        await p.drain()
    with pytest.raises(RuntimeError, match="refused"):
        await p.on_batch(as_records([price_typo("second", 2)], offsets))


async def test_a_checkpoint_commits_only_once_the_scored_alerts_are_published_and_audited(
    tmp_path: Path,
) -> None:
    scorer = GatedScorer(1)
    send = SendDouble()
    p, _ = build(scorer, in_flight=8, send=send)
    log = await audited(p, tmp_path)
    broker = BrokerIODouble()
    checkpoint = Checkpoint(p, p.accounts, p._audit, broker.io(), asyncio.Lock(), Metrics())
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    running = asyncio.create_task(checkpoint.run())
    await asyncio.sleep(0.05)
    assert not running.done() and broker.commits == []
    scorer.gates[0].set()
    assert await asyncio.wait_for(running, 5)
    assert broker.commits == [{(TRADES, 0): 1}]
    assert published(send) == ["first"]
    assert p._audit.pending == 0
    await log.close()


async def test_a_commit_the_broker_never_answers_gives_up_and_the_next_checkpoint_runs(
    tmp_path: Path,
) -> None:
    """A broker gone mid-checkpoint: the commit hangs. The checkpoint gives up after its
    timeout (counted as a commit failure) instead of holding every later checkpoint back."""
    p, _ = build(RuleScorer(), in_flight=8)
    log = await audited(p, tmp_path)
    broker = BrokerIODouble(answers=False)
    metrics = Metrics()
    checkpoint = Checkpoint(p, p.accounts, p._audit, broker.io(timeout_s=0.2), asyncio.Lock(), metrics)
    offsets: dict[str, int] = {}
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    assert not await asyncio.wait_for(checkpoint.run(), 5)
    assert metrics.commit_failures._value.get() == 1
    broker.answered.set()
    assert await asyncio.wait_for(checkpoint.run(), 5)
    # The first commit was not cut off: once the broker answers it lands too, with the same cut.
    assert broker.commits == [{(TRADES, 0): 1}, {(TRADES, 0): 1}]
    await log.close()


class WatchedLock(asyncio.Lock):
    """The fold lock, telling the test when someone asks for it and how often it was taken, so
    the test waits for those steps instead of sleeping."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.taken = 0
        self.changed = asyncio.Event()

    async def acquire(self) -> Literal[True]:
        self.asked += 1
        self.changed.set()
        await super().acquire()
        self.taken += 1
        self.changed.set()
        return True

    def release(self) -> None:
        super().release()
        self.changed.set()

    async def until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self.changed.clear()
            await self.changed.wait()


async def fold_while_a_checkpoint_waits_for_the_lock(
    p: Pipeline, checkpoint: Checkpoint, lock: WatchedLock, offsets: dict[str, int]
) -> asyncio.Task[bool]:
    """A checkpoint that finds nothing to wait for, then the fold lock taken: a fat finger
    (scored behind a gate) is folded before the checkpoint gets the lock and takes its cut."""
    await lock.acquire()
    running = asyncio.create_task(checkpoint.run())
    await asyncio.wait_for(lock.until(lambda: lock.asked == 2), 5)
    await p.on_batch(as_records([(MARKET, quote(100.0, 100.02, 0)), price_typo("first", 1)], offsets))
    lock.release()
    # The checkpoint has taken its cut once it has had the lock and let it go.
    await asyncio.wait_for(lock.until(lambda: lock.taken == 2 and not lock.locked()), 5)
    return running


def stored_offset(p: Pipeline) -> int | None:
    raw = p.accounts._table.get_raw("A1")
    return None if raw is None else int(raw["off"])


async def test_the_cut_holds_the_lock_only_and_its_state_goes_out_after_its_alerts(tmp_path: Path) -> None:
    """The checkpoint takes its cut under the fold lock and waits for the cut's alerts outside
    it: the fold goes on meanwhile, no state of the cut is written before its alert is
    published and audited, and what was folded after the cut waits for the next checkpoint."""
    scorer = GatedScorer(2)
    send = SendDouble()
    p, _ = build(scorer, in_flight=8, send=send)
    log = await audited(p, tmp_path)
    broker = BrokerIODouble()
    lock = WatchedLock()
    checkpoint = Checkpoint(p, p.accounts, p._audit, broker.io(), lock, Metrics())
    offsets: dict[str, int] = {}
    running = await fold_while_a_checkpoint_waits_for_the_lock(p, checkpoint, lock, offsets)
    assert not running.done()
    assert stored_offset(p) is None and broker.commits == [] and published(send) == []
    # Free while the checkpoint waits for the cut's alerts (a lock held there would time out).
    await asyncio.wait_for(lock.acquire(), 5)
    try:
        await p.on_batch(as_records([price_typo("second", 2)], offsets))
    finally:
        lock.release()
    scorer.gates[0].set()
    assert await asyncio.wait_for(running, 5)
    assert broker.commits == [{(TRADES, 0): 1}]
    assert stored_offset(p) == 0, "the state written is the cut's, not the fold's since"
    scorer.gates[1].set()
    assert await asyncio.wait_for(checkpoint.run(), 5)
    assert broker.commits[-1] == {(TRADES, 0): 2} and stored_offset(p) == 1
    assert published(send) == ["first", "second"]
    await log.close()


async def test_a_cut_whose_alerts_do_not_come_in_time_is_written_by_the_next_checkpoint(
    tmp_path: Path,
) -> None:
    scorer = GatedScorer(1)
    p, _ = build(scorer, in_flight=8)
    log = await audited(p, tmp_path)
    broker = BrokerIODouble()
    lock = WatchedLock()
    checkpoint = Checkpoint(p, p.accounts, p._audit, broker.io(timeout_s=0.2), lock, Metrics())
    offsets: dict[str, int] = {}
    running = await fold_while_a_checkpoint_waits_for_the_lock(p, checkpoint, lock, offsets)
    assert not await asyncio.wait_for(running, 5)
    assert stored_offset(p) is None and broker.commits == []
    scorer.gates[0].set()
    assert await asyncio.wait_for(checkpoint.run(), 5)
    assert stored_offset(p) == 0 and broker.commits == [{(TRADES, 0): 1}]
    await log.close()


async def orders_of_forty_accounts(p: Pipeline, offsets: dict[str, int]) -> list[str]:
    """A quote, then one order of each of 40 accounts folded: 40 dirty states."""
    accounts = [f"A{k:02d}" for k in range(40)]
    await p.on_batch(
        as_records(
            [(MARKET, quote(100.0, 100.02, 0))]
            + [(TRADES, order("new", f"o-{a}", 10, 100.0, 1, account=a)) for a in accounts],
            offsets,
        )
    )
    return accounts


async def test_the_checkpoint_serializes_dirty_states_in_slices_before_its_cut(tmp_path: Path) -> None:
    """Dirty states are serialized in slices of the fold lock ahead of the cut (the store's own
    tests show a state changed between two slices is written as it is at the cut): the cut
    itself finds nothing left to serialize, and every state is written with its cut."""
    p, _ = build(RuleScorer(), in_flight=0)
    log = await audited(p, tmp_path)
    broker = BrokerIODouble()
    lock = WatchedLock()
    metrics = Metrics()
    checkpoint = Checkpoint(p, p.accounts, p._audit, broker.io(), lock, metrics, precopy_slice_s=1e-9)
    offsets: dict[str, int] = {}
    accounts = await orders_of_forty_accounts(p, offsets)
    dirty_at_cut: list[int] = []
    take_cut = p.accounts.snapshot

    def watched_snapshot(cut: tuple[int, ...] | None = None) -> object:
        dirty_at_cut.append(p.accounts.dirty_count)
        return take_cut(cut)

    p.accounts.snapshot = watched_snapshot  # type: ignore[assignment,method-assign]
    assert await asyncio.wait_for(checkpoint.run(), 5)
    assert lock.taken == 41, "a slice of one key each at this budget, then the cut"
    assert dirty_at_cut == [0]
    stored = [p.accounts._table.get_raw(a) for a in accounts]
    assert [raw["off"] for raw in stored if raw is not None] == list(range(40))
    assert {tuple(raw["cut"]) for raw in stored if raw is not None} == {p.frontier()}
    assert broker.commits == [{(TRADES, 0): 40}]
    # Each stop of the fold is measured: 41 lock holds, then 40 slices writing a key each, the
    # last one finding none left, and the idle accounts' sweep.
    pauses = metrics.registry.get_sample_value(
        "riskstream_stage_seconds_count", {"stage": "checkpoint_pause"}
    )
    assert pauses == 41 + 41 + 1
    await log.close()


async def test_the_fold_goes_on_between_the_slices_writing_a_checkpoints_state(tmp_path: Path) -> None:
    p, _ = build(RuleScorer(), in_flight=0)
    log = await audited(p, tmp_path)
    broker = BrokerIODouble()
    checkpoint = Checkpoint(
        p, p.accounts, p._audit, broker.io(), WatchedLock(), Metrics(), precopy_slice_s=1e-9
    )
    offsets: dict[str, int] = {}
    accounts = await orders_of_forty_accounts(p, offsets)
    table = p.accounts._table
    put_raw = table.put_raw
    written: list[str] = []
    folded_after: list[int] = []

    async def fold_next() -> None:
        await p.on_batch(as_records([price_typo("later", 2)], offsets))
        folded_after.append(len([k for k in written if k.startswith("A")]))

    def watched_put(key: str, value: bytes, partition: int) -> None:
        put_raw(key, value, partition)
        written.append(key)
        if len(written) == 5:
            background.add(asyncio.ensure_future(fold_next()))

    background: set[asyncio.Future[None]] = set()
    table.put_raw = watched_put  # type: ignore[method-assign]
    assert await asyncio.wait_for(checkpoint.run(), 5)
    await asyncio.gather(*background)
    assert folded_after and folded_after[0] < len(accounts), "the fold waited for the whole write"
    assert broker.commits == [{(TRADES, 0): 40}]
    await log.close()
