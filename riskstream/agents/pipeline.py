"""What the agents do with a micro-batch: decode -> state -> detect -> score -> publish.

Broker-agnostic: it takes :class:`SourceRecord` lists, so the Faust agents stay thin and the
whole flow runs in tests without a broker. Alerts are published (and acknowledged by the
broker) before the batch returns; their audit rows are handed to the :class:`AuditWriter`,
which the checkpoint flushes before any offset is committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from riskstream.agents.missing_offsets import MissingOffsets
from riskstream.agents.stalled_reads import StalledReads
from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.candidates import Candidate
from riskstream.core.clock import Clock
from riskstream.core.detectors import DetectionContext
from riskstream.core.detectors.linked_wash import linked_fill
from riskstream.core.event_time import MARKET_RANK, ORDER_RANK, EventTimeMerge
from riskstream.core.expiry import IdleExpiry
from riskstream.core.fold import SurveillanceFold
from riskstream.core.state import AccountState
from riskstream.llm.base import Assessment, Scorer, to_alert
from riskstream.llm.rules import assess_by_rules
from riskstream.metrics import Metrics
from riskstream.records import (
    DeadLetter,
    DecodeError,
    OrderEvent,
    RiskAlert,
    SourceWatermark,
    decode_market_input,
    decode_trade_input,
)
from riskstream.records.immutable import immutable
from riskstream.records.linked_fills import LinkedFill, decode_linked_fill
from riskstream.records.market_data import MarketEvent
from riskstream.records.plausibility import EventTimeBounds
from riskstream.sinks import AlertPublisher, AuditWriter, DeadLetterPublisher, LinkedFillPublisher

log = logging.getLogger(__name__)


@immutable
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


Source = tuple[str, int]
"""(topic, partition) of an input."""
Found = list[tuple[Candidate, SourceRecord]]
"""Candidates with the input record whose event completed them (where a failure is reported)."""
Admitted = tuple[SourceRecord, OrderEvent | MarketEvent]
SHOCKS_MARKER = "\x00shocks/"
"""Key prefix (+ market partition) of the record saying from which market-data offset that
partition's market-wide alerts are still to be raised."""


MAX_AWAITING_UPDATE = 10_000
"""Alerts awaiting the model's update whose detection time and first publication are kept for
it; beyond it the oldest go (their update is then stamped when it comes)."""


def _account_of(event: OrderEvent) -> str:
    return event.account


def _symbol_of(event: MarketEvent) -> str:
    return event.symbol


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class Restart:
    """Where a (re)assigned worker starts its fold."""

    trade_offsets: dict[int, int]
    """Owned trade-logs partition -> first offset to fold (the committed offset)."""
    market_partitions: list[int]
    """Every market-data partition: all are read from the start."""


EXPIRY_CHUNK = 64
"""Accounts expired between two looks at the clock."""


@dataclass(frozen=True, slots=True)
class Expired:
    """One expiry sweep: accounts dropped, and whether every account due was looked at."""

    accounts: int
    finished: bool


class Pipeline:
    """Records of both inputs -> the event-time merge -> the one fold -> scoring -> sinks.

    The worker owns some trade-logs partitions (the consumer group gives them) and reads every
    market-data partition (:class:`~riskstream.agents.market_feed.MarketFeed`); events are
    folded only as the merge releases them, so the alerts are those of the backtest on the same
    history. Market-wide alerts of a symbol are raised by the owner of the trade-logs partition
    with the market-data partition's number.
    """

    def __init__(
        self,
        *,
        accounts: CheckpointedStore[AccountState],
        context: DetectionContext,
        size_alpha: float,
        scorer: Scorer,
        alerts: AlertPublisher,
        audit: AuditWriter,
        dead_letters: DeadLetterPublisher,
        metrics: Metrics,
        clock: Clock,
        market_topic: str,
        trade_topic: str,
        merge: EventTimeMerge[Source, Admitted],
        at_end: Callable[[Source], tuple[int, float] | None] | None = None,
        fetch_clock: Callable[[], float] = time.time,
        event_time_bounds: EventTimeBounds | None = None,
        linked_fills: LinkedFillPublisher | None = None,
        scoring_in_flight: int = 0,
        idle_ttl_s: float | None = None,
        reread_after_s: float | None = None,
    ) -> None:
        """``idle_ttl_s``: accounts with no event for that long in event time are held only in
        their stored form (:meth:`expire_idle`); None keeps every one live.
        ``reread_after_s``: a partition whose reader saw records past the offset the fold
        expects, none of which came for that long, is read again (:meth:`take_stalled`); None
        never."""
        self._expiry = IdleExpiry(idle_ttl_s) if idle_ttl_s is not None else None
        self._market_topic = market_topic
        self._trade_topic = trade_topic
        self._linked_pub = linked_fills
        self.linked_topic = linked_fills.topic if linked_fills is not None else None
        self.linked_next: dict[int, int] = {}
        """linked-fills partition -> next offset to take (every worker reads it all, from the
        start after every restart of the fold: the book is rebuilt from it)."""
        self.linked_ahead: dict[int, int] = {}
        """linked-fills partitions read past the next offset, and that offset (to seek back)."""
        self._linked_out: list[LinkedFill] = []
        self._max_in_flight = scoring_in_flight
        self._in_flight: deque[asyncio.Task[None]] = deque()
        """Scoring and publishing of folded batches, oldest first."""
        self._scoring_failure: BaseException | None = None
        self._bounds = event_time_bounds
        self.accounts = accounts
        self.context = context
        self._size_alpha = size_alpha
        self._scorer = scorer
        self._alerts = alerts
        self._audit = audit
        self._dead = dead_letters
        self._m = metrics
        self._clock = clock
        self.merge = merge
        self._fetched_end = at_end
        """Source -> the end offset its reader's latest fetch saw and the time of that fetch's
        answer, seconds (None: unknown): where a partition has nothing left to read."""
        self._fetch_clock = fetch_clock
        """The clock of ``at_end``'s answers (the consumers': epoch seconds): records are
        stamped with it as they arrive, to tell fetches asked after them."""
        self.owned: set[int] = set()
        self._shocks_from: dict[int, int] = {}
        self._shocks_written: dict[int, int] = {}
        self.fold = self._new_fold()
        self.reread_after_s = reread_after_s
        self._stalled_reads: StalledReads[Source] | None = (
            StalledReads(reread_after_s) if reread_after_s is not None else None
        )
        self.stalled: dict[Source, int] = {}
        """Partitions whose records stopped coming though their reader saw more, with the offset
        to read each again from (:mod:`~riskstream.agents.stalled_reads`)."""
        self._missing: MissingOffsets[Source] = MissingOffsets()
        self.suspected: dict[Source, int] = {}
        """Partitions whose reader kept answering past the offset the merge expects, with that
        offset: the driver asks the broker where their log starts (:meth:`take_suspected`)."""
        self._log_starts: dict[Source, tuple[int, int]] = {}
        """(offset expected, the log's first offset) where the broker's log starts past the
        offset expected: the records between are gone (retention), the partition goes on."""
        self._deliveries = 0
        """Calls of :meth:`on_batch` so far (a jump seen again must come in another one)."""
        self.ahead: dict[Source, int] = {}
        """Partitions whose reader delivered past the next offset the merge expects, with that
        offset: the reader must be sought back to it (:meth:`take_ahead`), or the partition
        would wait forever for a record its reader has gone past."""
        self._awaiting_update: OrderedDict[str, tuple[int, asyncio.Task[None] | None]] = OrderedDict()
        """alert_id -> detection time of alerts published rule-scored and pending, and the task
        publishing their version 1 (an update must not overtake it)."""
        scorer.on_update(self._publish_update)

    def _new_fold(self) -> SurveillanceFold:
        market = self.context.market
        if isinstance(market, dict):
            market.clear()
        return SurveillanceFold(
            self.context,
            self._size_alpha,
            self._held_account,
            self._mark_is_new,
            self.accounts.touch,
            linked_inline=self._linked_pub is None,
            linked_account=self._linked_account,
        )

    def _held_account(self, account: str) -> AccountState | None:
        """The live state of an account this worker owns, read again if it had expired (a
        quote crossed one of its positions' re-mark triggers): it counts as active again."""
        state = self.accounts.cached(account)
        if state is None and self._expiry is not None:
            state = self.accounts.revive(account, self.owned)
            if state is not None:
                self._expiry.seen(account, self._expiry.now_ns)
        return state

    def _linked_account(self, leg: LinkedFill) -> AccountState | None:
        """The state of a linked leg's account if this worker owns it (it raises its alert)."""
        if leg.partition not in self.owned:
            return None
        if self._expiry is not None:
            self._expiry.seen(leg.account, self._expiry.now_ns)
        return self.accounts.get(leg.account, leg.partition)

    def _mark_is_new(self, account: str, source: Hashable) -> bool:
        cut = self.accounts.cut(account)
        return cut is None or source > cut  # type: ignore[operator]

    def restart(self, start: Restart) -> None:
        """Start the fold afresh for a new assignment: account states from their checkpoints,
        the market from the start of market-data, each owned partition from its committed
        offset. Held events and the old market are dropped (they are read again)."""
        self.merge.clear()
        self.ahead.clear()
        self.stalled.clear()
        self._missing.clear()
        self.suspected.clear()
        self._log_starts.clear()
        if self._stalled_reads is not None:
            self._stalled_reads.clear()
        self.accounts.forget()
        self.owned = set(start.trade_offsets)
        self.fold = self._new_fold()
        self.linked_next.clear()
        self.linked_ahead.clear()
        for partition in start.market_partitions:
            self.merge.track((self._market_topic, partition), partition, 0)
        for partition, offset in sorted(start.trade_offsets.items()):
            self.merge.track((self._trade_topic, partition), partition, offset)
        if self._expiry is not None:
            self._expiry.clear()
        for account, state in self.accounts.load(self.owned):
            if state.positions:
                self.fold.hold(account, state)
            if self._expiry is not None:
                # Decoded again at its next event or re-mark, as after an expiry.
                self.accounts.evict(account)
        self._m.accounts_resident.set(self.accounts.resident)
        self._shocks_from = {}
        self._shocks_written = {}
        for partition in self.owned:
            marker = self.accounts.raw(f"{SHOCKS_MARKER}{partition}")
            self._shocks_from[partition] = int(marker["next"]) if marker else 0
        self._m.events_held.set(0)

    def take_ahead(self) -> dict[Source, int]:
        """Partitions to seek back, and the offset to seek each to (then forgotten)."""
        ahead, self.ahead = self.ahead, {}
        return self._still_expected(ahead)

    def take_stalled(self) -> dict[Source, int]:
        """Partitions to read again because their records stopped coming, and the offset to
        read each from (then forgotten)."""
        stalled, self.stalled = self.stalled, {}
        return self._still_expected(stalled)

    def _still_expected(self, seeks: dict[Source, int]) -> dict[Source, int]:
        """The seeks whose offset is still the one the merge expects next."""
        expects = self.merge.next_offset
        return {source: offset for source, offset in seeks.items() if expects(source) == offset}

    def shock_markers(self) -> dict[int, bytes]:
        """Owned partition -> its shocks marker, where it moved since the last checkpoint."""
        out: dict[int, bytes] = {}
        for partition in self.owned:
            position = self.merge.position((self._market_topic, partition))
            if position is not None and position != self._shocks_written.get(partition):
                out[partition] = b'{"next":%d}' % position
                self._shocks_written[partition] = position
        return out

    async def _publish_update(self, candidate: Candidate, assessment: Assessment) -> None:
        """The model's assessment becomes version 2 of the alert published rule-scored, after
        version 1 (an answer can come before the batches ahead of it are published). It is
        published and queued for the audit like any alert; the checkpoint's audit flush covers
        it. An update lost to a crash leaves version 1 standing."""
        detected_ns, first = self._awaiting_update.pop(candidate.alert_id, (None, None))
        if first is not None and not first.done():
            await asyncio.wait({first})
        if first is not None and (first.cancelled() or first.exception() is not None):
            # Version 1 never went out: the fold stops and its batch is folded again.
            return
        if detected_ns is None:
            detected_ns = self._clock()
        outcome = await self._alerts.publish([to_alert(candidate, assessment, detected_ns, version=2)])
        for alert, error in outcome.unencodable:
            # Version 1 went out; the update is dropped, as after a crash.
            log.error("update of alert %s could not be encoded: %s", alert.alert_id, error)
        self._audit.submit(outcome.alerts)
        self._m.alert_updates.inc(len(outcome.alerts))

    def _dead_letter(self, rec: SourceRecord, reason: str) -> DeadLetter:
        self._m.decode_failures.labels(rec.topic).inc()
        return DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, reason, self._clock())

    def _failed(self, rec: SourceRecord, stage: str, error: str) -> DeadLetter:
        """A decoded event whose processing raised: a bug, reported with the event so that it
        can be reproduced, and contained to that event (the stream goes on)."""
        self._m.event_failures.labels(rec.topic, stage).inc()
        log.error(
            "%s processing of %s/%d@%d (key %r) failed, dead-lettered: %s",
            stage,
            rec.topic,
            rec.partition,
            rec.offset,
            rec.key,
            error,
        )
        reason = f"{stage} processing failed: {error}"
        return DeadLetter(rec.topic, rec.partition, rec.offset, rec.key, rec.value, reason, self._clock())

    async def on_batch(self, records: Sequence[SourceRecord]) -> None:
        """Records of either input, in each partition's order; then whatever the merge releases
        is folded. Called with no records too (a timer, an empty fetch): a quiet partition's
        allowed lateness runs out by the clock."""
        dead: list[DeadLetter] = []
        t0 = time.perf_counter()
        self._deliveries += 1
        arrived_s = self._fetch_clock() if records else 0.0
        market = [r for r in records if r.topic == self._market_topic]
        linked = [r for r in records if r.topic == self.linked_topic]
        trades = [r for r in records if r.topic != self._market_topic and r.topic != self.linked_topic]
        if market:
            marks = self._admit(
                market, decode_market_input, _symbol_of, "symbol", MARKET_RANK, dead, arrived_s
            )
            self._track(market[0].topic, market, marks)
        if trades:
            marks = self._admit(
                trades, decode_trade_input, _account_of, "account", ORDER_RANK, dead, arrived_s
            )
            self._track(trades[0].topic, trades, marks)
        self._m.stage.labels("decode").observe(time.perf_counter() - t0)
        found: Found = []
        if linked:
            self._track(linked[0].topic, linked, 0)
            self._pair_linked(linked, found, dead)
        await self._fold(dead, found)

    def _pair_linked(self, records: list[SourceRecord], found: Found, dead: list[DeadLetter]) -> None:
        """linked-fills records, each partition in offset order, into the fold's book: not
        through the event-time merge, since the book pairs legs in any order."""
        for rec in records:
            expected = self.linked_next.get(rec.partition, 0)
            if rec.offset < expected:
                continue
            if rec.offset > expected:
                source = (rec.topic, rec.partition)
                first_kept = self._first_kept(source, expected, rec.offset)
                if first_kept is None:
                    self.linked_ahead.setdefault(rec.partition, expected)
                    continue
                self._report_gone(source, expected, first_kept)
                self.linked_next[rec.partition] = first_kept
                self.linked_ahead.pop(rec.partition, None)
                if first_kept < rec.offset:
                    self.linked_ahead[rec.partition] = first_kept
                    continue
            self.linked_next[rec.partition] = rec.offset + 1
            try:
                fill = decode_linked_fill(rec.value or b"")
            except DecodeError as exc:
                dead.append(self._dead_letter(rec, exc.reason))
                continue
            try:
                pairs = self.fold.on_linked_fill(fill)
            except Exception as exc:
                dead.append(self._failed(rec, "linked fill", _error(exc)))
            else:
                found.extend((c, rec) for c in pairs)

    def take_linked_ahead(self) -> dict[int, int]:
        """linked-fills partitions to seek back, and the offset to seek each to (then forgotten)."""
        ahead, self.linked_ahead = self.linked_ahead, {}
        return {p: o for p, o in ahead.items() if self.linked_next.get(p, 0) == o}

    def _track(self, topic: str, records: Sequence[SourceRecord], watermarks: int) -> None:
        self._m.events_consumed.labels(topic).inc(len(records) - watermarks)
        self._m.batch_events.labels(topic).observe(len(records))

    def _admit(
        self,
        records: list[SourceRecord],
        decode: Callable[[bytes], Any],
        key_of: Callable[[Any], str],
        key_name: str,
        rank: int,
        dead: list[DeadLetter],
        arrived_s: float,
    ) -> int:
        """Decode and validate into the merge; bad input and wrong keys become dead letters,
        orders already in the checkpointed state (redelivered after a crash) are passed over.
        Returns how many records were source watermarks."""
        replayed = watermarks = 0
        merge = self.merge
        for rec in records:
            source = (rec.topic, rec.partition)
            expected = merge.next_offset(source)
            if expected is None or rec.offset < expected:
                # Not tracked (a partition given away) or one already read.
                continue
            if rec.offset > expected:
                first_kept = self._first_kept(source, expected, rec.offset)
                if first_kept is not None:
                    self._skip_gone(source, expected, first_kept)
                if first_kept is None or first_kept < rec.offset:
                    self.ahead.setdefault(source, expected if first_kept is None else first_kept)
                    continue
            try:
                event = decode(rec.value or b"")
            except DecodeError as exc:
                dead.append(self._dead_letter(rec, exc.reason))
                merge.passed(source, rec.offset)
                continue
            mark = event if isinstance(event, SourceWatermark) else None
            key = "" if mark is not None else key_of(event)
            if mark is None and rec.key is not None and rec.key != key.encode():
                dead.append(self._dead_letter(rec, f"key {rec.key!r} is not the {key_name} {key!r}"))
                merge.passed(source, rec.offset)
                continue
            refusal = self._bounds.refusal(event.ts_ns) if self._bounds is not None else None
            if refusal is not None:
                # Only a plausible event or watermark advances its partition's event time (a
                # watermark far ahead would make every later event of the partition late).
                dead.append(self._dead_letter(rec, refusal))
                merge.passed(source, rec.offset)
                continue
            if mark is not None:
                watermarks += 1
                merge.advance(source, rec.offset, mark.ts_ns)
                continue
            if rank == ORDER_RANK and rec.offset <= self.accounts.applied_offset(key, rec.partition):
                replayed += 1
                merge.passed(source, rec.offset)
                continue
            merge.offer(source, rec.offset, event.ts_ns, rank, (rec, event), arrived_s)
        if replayed:
            self._m.replayed_events.labels(records[0].topic).inc(replayed)
        if watermarks:
            self._m.source_watermarks.labels(records[0].topic).inc(watermarks)
        return watermarks

    def _first_kept(self, source: Source, expected: int, offset: int) -> int | None:
        """A record of ``source`` at ``offset`` came past the offset expected: the first offset
        still in the log where the broker said its log starts past ``expected`` (the records
        before it are gone), else None (sought back). A jump seen in several deliveries is
        suspected (:attr:`suspected`), not taken: records a reader fetched before a seek back
        are still delivered after it, for as many deliveries as they fill (a restart on a
        backlog), and only the broker's log start tells a deleted record from a skipped one."""
        confirmed = self._log_starts.get(source)
        if confirmed is not None and confirmed[0] == expected:
            del self._log_starts[source]
            return min(confirmed[1], offset)
        if self._missing.gone(source, expected, self._deliveries):
            self.suspected[source] = expected
        return None

    def take_suspected(self) -> dict[Source, int]:
        """Partitions to ask the broker's log start of, each with the offset expected (then
        forgotten)."""
        suspected, self.suspected = self.suspected, {}
        return suspected

    def log_starts_are(self, starts: Mapping[Source, tuple[int, int]]) -> None:
        """The broker's answer for suspected partitions whose log starts past the offset
        expected: ``(offset expected, first offset in the log)``; the next record read past
        that offset skips the records between."""
        self._log_starts.update(starts)

    def _skip_gone(self, source: Source, expected: int, first_kept: int) -> None:
        """The broker keeps answering from ``first_kept``: the records before it are gone
        (:mod:`~riskstream.agents.missing_offsets`), and the partition goes on from there."""
        self._report_gone(source, expected, first_kept)
        self.merge.passed(source, first_kept - 1)
        self.ahead.pop(source, None)

    def _report_gone(self, source: Source, expected: int, first_kept: int) -> None:
        topic, partition = source
        log.warning(
            "%s[%d]: offsets %d..%d are not in the log (the broker answers from %d); skipped",
            topic,
            partition,
            expected,
            first_kept - 1,
            first_kept,
        )
        self._m.offset_gaps.labels(topic, "skipped").inc()

    def _note_ends(self) -> None:
        if self._fetched_end is None:
            return
        merge = self.merge
        behind: list[tuple[Source, int | None, int | None]] = []
        for source in merge.tracked():
            seen = self._fetched_end(source)
            if seen is None:
                merge.at_end(source, False, 0.0)
                continue
            end, fetched_s = seen
            expected = merge.next_offset(source)
            merge.at_end(source, expected is not None and expected >= end, fetched_s)
            if source not in merge.paused:
                behind.append((source, expected, end))
        if self._stalled_reads is not None:
            self.stalled.update(self._stalled_reads.due(behind, self._fetch_clock()))

    async def _fold(self, dead: list[DeadLetter], found: Found) -> None:
        self._note_ends()
        late_before = self.merge.late
        unanswered_before = self.merge.unconfirmed
        window_late_before = self.fold.late_events
        t1 = time.perf_counter()
        for released in self.merge.release(self._fetch_clock()):
            rec, event = released.item
            if isinstance(event, OrderEvent):
                self._surveil_order(rec, event, found, dead)
            else:
                self._surveil_quote(rec, event, found, dead)
        try:
            found.extend((c, rec) for c in self.fold.flush_marks() for rec in [self._mark_record])
        except Exception as exc:
            log.error("re-marking positions failed: %s", _error(exc))
        self._m.stage.labels("detect").observe(time.perf_counter() - t1)
        unanswered = self.merge.unconfirmed - unanswered_before
        if unanswered:
            self._m.unanswered_idle_releases.inc(unanswered)
        late = self.merge.late - late_before
        if late:
            self._m.out_of_order_events.inc(late)
        window_late = self.fold.late_events - window_late_before
        if window_late:
            self._m.late_events.labels(self._trade_topic).inc(window_late)
        self._m.events_held.set(self.merge.held())
        if self._linked_out and self._linked_pub is not None:
            # Acknowledged before the batch returns, so before the checkpoint that commits the
            # fills' offsets: a crash republishes them (the book drops the repeats).
            out, self._linked_out = self._linked_out, []
            await self._linked_pub.publish(out)
        await self._finish(found, dead)

    _mark_record = SourceRecord("", -1, -1, None, None)
    """Where a re-mark's failure would be reported: no single input record completes it."""

    def _surveil_quote(
        self, rec: SourceRecord, quote: MarketEvent, out: Found, dead: list[DeadLetter]
    ) -> None:
        partition = rec.partition
        shocks = partition in self.owned and rec.offset >= self._shocks_from.get(partition, 0)
        source = (quote.ts_ns, MARKET_RANK, partition, rec.offset)
        try:
            found = self.fold.on_market(quote, source, shocks=shocks)
        except Exception as exc:
            dead.append(self._failed(rec, "market", _error(exc)))
        else:
            out.extend((c, rec) for c in found)

    def _surveil_order(
        self, rec: SourceRecord, event: OrderEvent, out: Found, dead: list[DeadLetter]
    ) -> None:
        """One order through the detectors; an event whose processing raises is dead-lettered."""
        state = self.accounts.get(event.account, rec.partition)
        try:
            outcome = self.fold.on_order(state, event)
            leg = linked_fill(event, self.context, rec.partition) if self._linked_pub is not None else None
        except Exception as exc:
            dead.append(self._failed(rec, "order", _error(exc)))
        else:
            out.extend((c, rec) for c in outcome.candidates)
            if leg is not None:
                self._linked_out.append(leg)
        self.accounts.mark_applied(event.account, rec.partition, rec.offset)
        if self._expiry is not None:
            self._expiry.seen(event.account, event.ts_ns)

    def expire_idle(
        self, budget_s: float | None = None, clock: Callable[[], float] = time.perf_counter
    ) -> Expired:
        """Drop the live state of accounts idle past the time to live (see
        :mod:`riskstream.core.expiry`), but those whose latest changes are not stored yet (the
        next sweep retries them), for about ``budget_s`` (None: all due). Called right after a
        checkpoint's snapshot is written, in slices like the writing: a sweep after a quiet
        spell drops thousands of states, and freeing them takes tens of milliseconds."""
        if self._expiry is None:
            return Expired(0, True)
        deadline = None if budget_s is None else clock() + budget_s
        expired = 0
        deferred: list[str] = []
        while True:
            due = self._expiry.due(EXPIRY_CHUNK)
            for account in due:
                if self.accounts.evict(account):
                    expired += 1
                elif self.accounts.cached(account) is not None:
                    deferred.append(account)
            finished = len(due) < EXPIRY_CHUNK
            if finished or (deadline is not None and clock() >= deadline):
                break
        # Put back after the sweep, so that it does not meet them again.
        for account in reversed(deferred):
            self._expiry.defer(account)
        self._m.accounts_expired.inc(expired)
        self._m.accounts_resident.set(self.accounts.resident)
        return Expired(expired, finished)

    def frontier(self) -> tuple[int, int, int, int] | None:
        """Key of the last event folded: a checkpoint's cut (see :meth:`Pipeline._mark_is_new`)."""
        return self.merge.last_key

    def commit_offsets(self) -> dict[Source, int]:
        """Next offset to read per owned trade-logs partition: past every folded or passed
        record, never past a held one."""
        out: dict[Source, int] = {}
        for source in self.merge.tracked():
            if source[0] == self._market_topic:
                continue
            position = self.merge.position(source)
            if position is not None:
                out[source] = position
        return out

    def positions(self) -> dict[Source, int]:
        """Last offset folded or passed per input partition, for lag and the watchdog."""
        out: dict[Source, int] = {}
        for source in self.merge.tracked():
            position = self.merge.position(source)
            if position is not None and position > 0:
                out[source] = position - 1
        return out

    def held_events(self) -> int:
        return self.merge.held()

    def _await_update(self, alert_id: str, detected_ns: int) -> None:
        self._awaiting_update[alert_id] = (detected_ns, asyncio.current_task())
        while len(self._awaiting_update) > MAX_AWAITING_UPDATE:
            self._awaiting_update.popitem(last=False)

    async def _assess(
        self, found: Found, dead: list[DeadLetter]
    ) -> list[tuple[Candidate, Assessment, SourceRecord]]:
        """The scorer's assessments; should it raise (it must not), rules score each candidate,
        and a candidate even the rules cannot score is dead-lettered with its event."""
        try:
            assessments = await self._scorer.score([c for c, _ in found])
            return [(c, a, rec) for (c, rec), a in zip(found, assessments, strict=True)]
        except Exception:
            log.exception("scorer failed on %d candidates; rules score them", len(found))
        scored: list[tuple[Candidate, Assessment, SourceRecord]] = []
        for candidate, rec in found:
            try:
                scored.append((candidate, assess_by_rules(candidate), rec))
            except Exception as exc:
                dead.append(self._failed(rec, "score", _error(exc)))
        return scored

    async def _finish(self, found: Found, dead: list[DeadLetter]) -> None:
        """Dead letters go out now; the candidates go to the scorer. With ``scoring_in_flight``
        0 this waits for their alerts to be published; otherwise the scoring runs beside the
        fold (Flink's async I/O): at most that many batches in flight, published in the order
        they were folded, and :meth:`drain` (the checkpoint's) waits for them before any offset
        is committed."""
        self._reap()
        if found:
            previous = self._in_flight[-1] if self._in_flight else None
            task = asyncio.create_task(self._score_and_publish(found, self._clock(), previous))
            self._in_flight.append(task)
            self._m.scoring_in_flight.set(len(self._in_flight))
            while len(self._in_flight) > self._max_in_flight:
                await asyncio.wait({self._in_flight[0]})
                self._reap()
        await self._publish_dead(dead)

    def _reap(self) -> None:
        """Forget the finished scoring tasks at the head. One that failed (the broker refusing
        alerts) raises here and on every call after, so the fold stops and no checkpoint
        commits past alerts that were never published."""
        if self._scoring_failure is not None:
            raise self._scoring_failure
        while self._in_flight and self._in_flight[0].done():
            task = self._in_flight.popleft()
            if not task.cancelled() and task.exception() is not None:
                self._scoring_failure = task.exception()
                raise task.exception()  # type: ignore[misc]
        self._m.scoring_in_flight.set(len(self._in_flight))

    async def drain(self) -> None:
        """Wait until every batch folded so far has its alerts published and submitted to the
        audit. Batches folded while it waits are not waited for: under steady load a drain
        that chased the newest batch would never end."""
        self._reap()
        if self._in_flight:
            await asyncio.wait(list(self._in_flight))
            self._reap()

    async def _publish_dead(self, dead: list[DeadLetter]) -> None:
        if dead:
            await self._dead.publish(dead)
            for d in dead:
                self._m.dead_letters.labels(d.source_topic).inc()

    async def _score_and_publish(
        self, found: Found, detected_ns: int, previous: asyncio.Task[None] | None
    ) -> None:
        dead: list[DeadLetter] = []
        t0 = time.perf_counter()
        scored = await self._assess(found, dead)
        t1 = time.perf_counter()
        self._m.stage.labels("score").observe(t1 - t0)
        alerts: list[RiskAlert] = []
        source: dict[str, SourceRecord] = {}
        for candidate, assessment, rec in scored:
            try:
                alert = to_alert(candidate, assessment, detected_ns)
            except Exception as exc:
                dead.append(self._failed(rec, "alert", _error(exc)))
                continue
            alerts.append(alert)
            source[alert.alert_id] = rec
            if assessment.pending:
                self._await_update(alert.alert_id, detected_ns)
        if previous is not None:
            # In the order folded: an entity's alerts never overtake each other.
            await asyncio.wait({previous})
        outcome = await self._alerts.publish(alerts)
        for alert, error in outcome.unencodable:
            dead.append(self._failed(source[alert.alert_id], "alert", error))
        published = outcome.alerts
        self._m.stage.labels("publish").observe(time.perf_counter() - t1)
        for alert in published:
            assert alert.timings.published_ns is not None
            self._m.alerts.labels(alert.category.value, alert.severity.value).inc()
            self._m.event_to_alert.observe(
                max(0.0, (alert.timings.published_ns - alert.timings.event_ns) / 1e9)
            )
        self._audit.submit(published)
        await self._publish_dead(dead)
