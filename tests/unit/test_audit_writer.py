"""The audit writer's retry policy, with a hand-written double of the audit table that fails on
demand and an injected clock (the real table, refused and stalled, is in test_outages)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError

from riskstream.core.candidates import Candidate
from riskstream.llm.base import to_alert
from riskstream.llm.rules import assess_by_rules
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, Category, Evidence, RiskAlert, WindowBounds
from riskstream.sinks import AuditWriter


class AuditLogDouble:
    """Stands in for AuditLog.write: raises the queued errors, then records what it wrote."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors = errors
        self.written: list[str] = []
        self.calls = 0

    async def write(self, alerts: Sequence[RiskAlert]) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.written += [a.alert_id for a in alerts]


class Clock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


def alert(n: int) -> RiskAlert:
    c = Candidate(
        Category.FAT_FINGER, AlertEntity("A", "S"), WindowBounds(n, n), Evidence({}, (f"o{n}",), "s"), 2.0
    )
    return to_alert(c, assess_by_rules(c), n)


def writer(errors: list[BaseException]) -> tuple[AuditWriter, AuditLogDouble, Clock, Metrics]:
    double, clock, metrics = AuditLogDouble(errors), Clock(), Metrics()
    log: Any = double
    return AuditWriter(log, metrics, retry_max_s=5.0, clock=clock), double, clock, metrics


async def test_transient_failures_back_off_and_keep_every_row() -> None:
    w, double, clock, metrics = writer([ConnectionRefusedError("refused"), ConnectionRefusedError("refused")])
    metrics.mark_ready()
    w.submit([alert(1), alert(2)])
    assert not await w.flush()
    assert metrics.readiness() == "database: ConnectionRefusedError: refused"
    assert not await w.flush() and double.calls == 1, "retried before its backoff"
    clock.now_s = 0.06
    assert not await w.flush() and double.calls == 2
    w.submit([alert(3)])
    clock.now_s = 1.0
    assert await w.flush()
    assert double.written == [alert(i).alert_id for i in (1, 2, 3)]
    assert metrics.readiness() is None and w.pending == 0


async def test_a_permanent_error_is_retried_at_the_slowest_pace_only() -> None:
    refused = IntegrityError("INSERT", {}, Exception("violates check constraint"))
    w, double, clock, _ = writer([refused, refused])
    w.submit([alert(1)])
    assert not await w.flush()
    for step in range(1, 50):
        clock.now_s = step * 0.1
        await w.flush()
    assert double.calls == 1, "spun on an error no retry can fix"
    clock.now_s = 5.0
    assert not await w.flush() and double.calls == 2
    clock.now_s = 10.0
    assert await w.flush() and double.written == [alert(1).alert_id]
