"""What the agents do with a micro-batch: decode -> state -> detect -> score -> publish.

Broker-agnostic: it takes :class:`SourceRecord` lists, so the Faust agents stay thin and the
whole flow runs in tests without a broker. Alerts are published (and acknowledged by the
broker) before the batch returns; their audit rows are handed to the :class:`AuditWriter`,
which the checkpoint flushes before any offset is committed.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from riskstream.agents.state_store import CheckpointedStore
from riskstream.core.alignment import EventTimeAligner
from riskstream.core.candidates import Candidate
from riskstream.core.clock import Clock
from riskstream.core.detectors import DetectionContext
from riskstream.core.state import AccountState, SymbolState
from riskstream.core.surveillance import Holders, surveil_account, surveil_market, surveil_marks
from riskstream.llm.base import Assessment, Scorer
from riskstream.llm.rules import assess_by_rules
from riskstream.metrics import Metrics
from riskstream.records import (
    DeadLetter,
    DecodeError,
    OrderEvent,
    OrderEventType,
    RiskAlert,
    Timings,
    decode_market_data,
    decode_trade_log,
)
from riskstream.records.market_data import MarketEvent
from riskstream.records.plausibility import EventTimeBounds
from riskstream.sinks import AlertPublisher, AuditWriter, DeadLetterPublisher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class _Timed(Protocol):
    @property
    def ts_ns(self) -> int: ...


E = TypeVar("E", bound=_Timed)
MAX_AWAITING_UPDATE = 10_000
"""Degraded alerts whose detection time is kept for their update; beyond it the oldest go."""


def _account_of(event: OrderEvent) -> str:
    return event.account


def _symbol_of(event: MarketEvent) -> str:
    return event.symbol


Quotes = list[tuple[SourceRecord, MarketEvent]]
Orders = list[tuple[SourceRecord, OrderEvent]]
Found = list[tuple[Candidate, SourceRecord]]
"""Candidates with the input record whose event completed them (where a failure is reported)."""


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


Held = dict[tuple[str, int], deque[tuple[SourceRecord, E]]]


def _hold(held: Held[E], events: list[tuple[SourceRecord, E]]) -> None:
    for rec, event in events:
        key = (rec.topic, rec.partition)
        queue = held.get(key)
        if queue is None:
            queue = held[key] = deque()
        elif queue and rec.offset <= queue[-1][0].offset:
            continue
        queue.append((rec, event))


def _take_until(held: Held[E], limit_ns: int | None) -> list[tuple[SourceRecord, E]]:
    """Each partition's held events up to ``limit_ns`` (all when None), in partition order."""
    out: list[tuple[SourceRecord, E]] = []
    for queue in held.values():
        while queue and (limit_ns is None or queue[0][1].ts_ns <= limit_ns):
            out.append(queue.popleft())
    return out


def event_time_segments(quotes: Quotes, orders: Orders) -> list[tuple[Quotes, Orders]]:
    """Split a batch into (quotes, then orders) segments so that every quote is applied before
    the orders at or after its event time and after those before it. Orders keep their batch
    order (per account that is partition order, which late-event handling relies on)."""
    if not quotes or not orders:
        return [(quotes, orders)]
    pending = sorted(quotes, key=lambda q: q[1].ts_ns)
    segments: list[tuple[Quotes, Orders]] = []
    qi = 0
    current: tuple[Quotes, Orders] = ([], [])
    for rec, order in orders:
        if qi < len(pending) and pending[qi][1].ts_ns <= order.ts_ns:
            j = qi
            while j < len(pending) and pending[j][1].ts_ns <= order.ts_ns:
                j += 1
            if current[1]:
                segments.append(current)
                current = ([], [])
            current[0].extend(pending[qi:j])
            qi = j
        current[1].append((rec, order))
    segments.append(current)
    if qi < len(pending):
        segments.append((pending[qi:], []))
    return segments


def to_alert(candidate: Candidate, assessment: Assessment, detected_ns: int, version: int = 1) -> RiskAlert:
    return RiskAlert(
        version=version,
        alert_id=candidate.alert_id,
        category=candidate.category,
        severity=assessment.severity,
        score=assessment.score,
        rule_score=assessment.rule_score,
        entity=candidate.entity,
        window=candidate.window,
        evidence=candidate.evidence,
        timings=Timings(event_ns=candidate.event_ns, detected_ns=detected_ns),
        llm=assessment.llm,
        degraded=assessment.degraded,
    )


class Pipeline:
    def __init__(
        self,
        *,
        accounts: CheckpointedStore[AccountState],
        symbols: CheckpointedStore[SymbolState],
        context: DetectionContext,
        size_alpha: float,
        scorer: Scorer,
        alerts: AlertPublisher,
        audit: AuditWriter,
        dead_letters: DeadLetterPublisher,
        metrics: Metrics,
        clock: Clock,
        market_topic: str,
        aligner: EventTimeAligner[tuple[str, int]] | None = None,
        event_time_bounds: EventTimeBounds | None = None,
    ) -> None:
        self._market_topic = market_topic
        self._bounds = event_time_bounds
        self.accounts = accounts
        self.symbols = symbols
        self.context = context
        self._size_alpha = size_alpha
        self._scorer = scorer
        self._alerts = alerts
        self._audit = audit
        self._dead = dead_letters
        self._m = metrics
        self._clock = clock
        self.last_offsets: dict[tuple[str, int], int] = {}
        """(topic, partition) -> last offset processed, for the lag gauge."""
        self._aligner = aligner
        self._held_quotes: Held[MarketEvent] = {}
        self._held_orders: Held[OrderEvent] = {}
        """Events decoded but waiting for the other partitions' event time (with an aligner)."""
        self.batch_progress: dict[tuple[str, int], int] = {}
        """(topic, partition) -> largest event time decoded from it in the last batch, for
        event-time alignment across partitions."""
        self.holders = Holders()
        """Accounts with open positions per symbol, for the loss limit on market moves."""
        self._degraded_detected_ns: OrderedDict[str, int] = OrderedDict()
        """alert_id -> detection time of alerts published degraded, awaiting an update."""
        scorer.on_update(self._publish_update)

    async def _publish_update(self, candidate: Candidate, assessment: Assessment) -> None:
        """A late assessment becomes version 2 of the alert already published degraded. It is
        published and queued for the audit like any alert; the checkpoint's audit flush covers
        it. An update lost to a crash leaves the degraded version 1 standing."""
        detected_ns = self._degraded_detected_ns.pop(candidate.alert_id, None)
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

    def _track(self, topic: str, records: Sequence[SourceRecord]) -> None:
        self._m.events_consumed.labels(topic).inc(len(records))
        self._m.batch_events.labels(topic).observe(len(records))
        for rec in records:
            self.last_offsets[(rec.topic, rec.partition)] = rec.offset

    async def on_batch(self, records: Sequence[SourceRecord]) -> list[RiskAlert]:
        """One micro-batch from both input topics, folded in event-time order: each order is
        checked against the market as of its own event time (quotes at the same time count as
        before it), as the offline backtest does, not against quotes that came later. With an
        aligner, events ahead of what the other partitions have delivered wait for them."""
        market = [r for r in records if r.topic == self._market_topic]
        trades = [r for r in records if r.topic != self._market_topic]
        dead: list[DeadLetter] = []
        self.batch_progress = {}
        t0 = time.perf_counter()
        quotes: Quotes = []
        orders: Orders = []
        if market:
            self._track(market[0].topic, market)
            quotes = self._admit(market, decode_market_data, _symbol_of, "symbol", self.symbols, dead)
        if trades:
            self._track(trades[0].topic, trades)
            orders = self._admit(trades, decode_trade_log, _account_of, "account", self.accounts, dead)
        self._m.stage.labels("decode").observe(time.perf_counter() - t0)
        if self._aligner is not None:
            self._aligner.observe(self.batch_progress)
            _hold(self._held_quotes, quotes)
            _hold(self._held_orders, orders)
            quotes, orders = self._release()
        return await self._fold(quotes, orders, dead)

    async def release_due(self) -> list[RiskAlert]:
        """Held events the other partitions have caught up with, or stopped being waited for:
        run on a timer too, so that held events need not wait for the next batch."""
        if self._aligner is None or self.held_events() == 0:
            return []
        quotes, orders = self._release()
        if not quotes and not orders:
            return []
        return await self._fold(quotes, orders, [])

    def _release(self) -> tuple[Quotes, Orders]:
        assert self._aligner is not None
        limit = self._aligner.release_limit_ns()
        quotes = _take_until(self._held_quotes, limit)
        orders = _take_until(self._held_orders, limit)
        self._m.events_held.set(self.held_events())
        return quotes, orders

    def held_events(self) -> int:
        return sum(len(q) for q in self._held_quotes.values()) + sum(
            len(q) for q in self._held_orders.values()
        )

    def drop_held(self) -> None:
        """Forget held events (a rebalance: the consumer re-reads them from the committed
        offsets, which never pass a held event)."""
        self._held_quotes.clear()
        self._held_orders.clear()
        self._m.events_held.set(0)

    def commit_offsets(self) -> dict[tuple[str, int], int]:
        """Next offset to read per partition: past every processed record, never past a held
        one."""
        out: dict[tuple[str, int], int] = {}
        for key, last in self.last_offsets.items():
            held = self._held_quotes.get(key) or self._held_orders.get(key)
            out[key] = held[0][0].offset if held else last + 1
        return out

    async def _fold(self, quotes: Quotes, orders: Orders, dead: list[DeadLetter]) -> list[RiskAlert]:
        found: Found = []
        market_s = detect_s = 0.0
        late = 0
        for segment_quotes, segment_orders in event_time_segments(quotes, orders):
            t1 = time.perf_counter()
            for rec, quote in segment_quotes:
                self._surveil_quote(rec, quote, found, dead)
            t2 = time.perf_counter()
            late += self._surveil(segment_orders, found, dead)
            market_s += t2 - t1
            detect_s += time.perf_counter() - t2
        if quotes:
            self._m.stage.labels("market_state").observe(market_s)
        if orders:
            self._m.stage.labels("detect").observe(detect_s)
            if late:
                self._m.late_events.labels(orders[0][0].topic).inc(late)
        return await self._finish(found, dead)

    def _surveil_quote(
        self, rec: SourceRecord, quote: MarketEvent, out: Found, dead: list[DeadLetter]
    ) -> None:
        symbol_state = self.symbols.get(quote.symbol, rec.partition)
        try:
            found = surveil_market(symbol_state, quote, self.context)
            found += surveil_marks(
                quote.symbol, quote.ts_ns, self.holders, self.accounts.cached, self.context
            )
        except Exception as exc:
            dead.append(self._failed(rec, "market", _error(exc)))
        else:
            out.extend((c, rec) for c in found)
        self.symbols.mark_applied(quote.symbol, rec.partition, rec.offset)

    def _admit(
        self,
        records: list[SourceRecord],
        decode: Callable[[bytes], E],
        key_of: Callable[[E], str],
        key_name: str,
        store: CheckpointedStore[Any],
        dead: list[DeadLetter],
    ) -> list[tuple[SourceRecord, E]]:
        """Decode and validate; bad input and wrong keys become dead letters, events already in
        the checkpointed state (redelivered after a crash) are skipped."""
        admitted: list[tuple[SourceRecord, E]] = []
        replayed = 0
        progress = self.batch_progress
        for rec in records:
            try:
                event = decode(rec.value or b"")
            except DecodeError as exc:
                dead.append(self._dead_letter(rec, exc.reason))
                continue
            key = key_of(event)
            if rec.key is not None and rec.key != key.encode():
                dead.append(self._dead_letter(rec, f"key {rec.key!r} is not the {key_name} {key!r}"))
                continue
            refusal = self._bounds.refusal(event.ts_ns) if self._bounds is not None else None
            if refusal is not None:
                dead.append(self._dead_letter(rec, refusal))
                continue
            # Only a plausible event advances its partition's event time.
            source = (rec.topic, rec.partition)
            if event.ts_ns > progress.get(source, -1):
                progress[source] = event.ts_ns
            if rec.offset <= store.applied_offset(key, rec.partition):
                replayed += 1
                continue
            admitted.append((rec, event))
        if replayed:
            self._m.replayed_events.labels(records[0].topic).inc(replayed)
        return admitted

    def _surveil(self, orders: Orders, out: Found, dead: list[DeadLetter]) -> int:
        """Orders of one segment through the detectors, one event at a time as the backtest
        does; an event whose processing raises is dead-lettered. Returns late events."""
        late = 0
        for rec, event in orders:
            state = self.accounts.get(event.account, rec.partition)
            try:
                result = surveil_account(state, (event,), self.context, self._size_alpha)
                if event.event is OrderEventType.FILL:
                    self.holders.update(event.account, state, self.context)
            except Exception as exc:
                dead.append(self._failed(rec, "order", _error(exc)))
            else:
                out.extend((c, rec) for c in result.candidates)
                late += result.late_events
            self.accounts.mark_applied(event.account, rec.partition, rec.offset)
        return late

    def _remember_degraded(self, alert_id: str, detected_ns: int) -> None:
        self._degraded_detected_ns[alert_id] = detected_ns
        while len(self._degraded_detected_ns) > MAX_AWAITING_UPDATE:
            self._degraded_detected_ns.popitem(last=False)

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

    async def _finish(self, found: Found, dead: list[DeadLetter]) -> list[RiskAlert]:
        published: list[RiskAlert] = []
        if found:
            detected_ns = self._clock()
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
                if alert.degraded:
                    self._remember_degraded(alert.alert_id, detected_ns)
            outcome = await self._alerts.publish(alerts)
            for alert, error in outcome.unencodable:
                dead.append(self._failed(source[alert.alert_id], "alert", error))
            published = outcome.alerts
            t2 = time.perf_counter()
            self._m.stage.labels("publish").observe(t2 - t1)
            for alert in published:
                assert alert.timings.published_ns is not None
                self._m.alerts.labels(alert.category.value, alert.severity.value).inc()
                self._m.event_to_alert.observe(
                    max(0.0, (alert.timings.published_ns - alert.timings.event_ns) / 1e9)
                )
            self._audit.submit(published)
        if dead:
            await self._dead.publish(dead)
            for d in dead:
                self._m.dead_letters.labels(d.source_topic).inc()
        return published
