"""The audit table: one row per alert_id, upserted so replays write nothing twice.

A later version of the same alert (an LLM re-score) replaces the row; an older or equal version
is ignored, so the row always holds the newest assessment whatever order deliveries come in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    func,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, IntegrityError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from riskstream.llm.prompts import PriorAlert
from riskstream.metrics import Metrics
from riskstream.records import AlertEntity, RiskAlert

logger = logging.getLogger(__name__)
MIGRATION_LOCK_KEY = 0x7269736B73747265
"""PostgreSQL advisory lock id of the audit-schema migration ("riskstre" in ASCII)."""

metadata = MetaData()

audit_table = Table(
    "risk_alert_audit",
    metadata,
    Column("alert_id", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("category", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("score", Float, nullable=False),
    Column("rule_score", Float, nullable=False),
    Column("degraded", Boolean, nullable=False),
    Column("account", String(64)),
    Column("symbol", String(64)),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("event_ts", DateTime(timezone=True), nullable=False),
    Column("detected_ts", DateTime(timezone=True), nullable=False),
    Column("published_ts", DateTime(timezone=True)),
    Column("evidence", JSON, nullable=False),
    Column("llm", JSON),
    Column("alert", JSON, nullable=False),
    Index("ix_audit_account_event_ts", "account", "event_ts"),
    Index("ix_audit_symbol_event_ts", "symbol", "event_ts"),
    Index("ix_audit_category_severity_event_ts", "category", "severity", "event_ts"),
    Index("ix_audit_event_ts", "event_ts"),
)
"""What the migrations in riskstream/migrations build (a test compares them)."""


def _sqlite_wal(dbapi_conn: Any, _record: Any) -> None:
    """WAL with synchronous=NORMAL: a commit survives a crash of the process (what at-least-once
    needs) without an fsync per commit, which cost ~135 ms per audit write here."""
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _dt(ts_ns: int | None) -> datetime | None:
    if ts_ns is None:
        return None
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)


def _ns(ts: datetime) -> int:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp() * 1_000_000) * 1000


def audit_row(alert: RiskAlert) -> dict[str, Any]:
    body = alert.to_json()
    return {
        "alert_id": alert.alert_id,
        "version": alert.version,
        "category": alert.category.value,
        "severity": alert.severity.value,
        "score": alert.score,
        "rule_score": alert.rule_score,
        "degraded": alert.degraded,
        "account": alert.entity.account,
        "symbol": alert.entity.symbol,
        "window_start": _dt(alert.window.start_ns),
        "window_end": _dt(alert.window.end_ns),
        "event_ts": _dt(alert.timings.event_ns),
        "detected_ts": _dt(alert.timings.detected_ns),
        "published_ts": _dt(alert.timings.published_ns),
        "evidence": body["evidence"],
        "llm": alert.llm,
        "alert": body,
    }


class AuditLog:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        if self._dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"audit table supports postgresql and sqlite, not {self._dialect}")

    @classmethod
    def from_url(cls, url: str, pool_size: int = 5, timeout_s: float = 5.0) -> AuditLog:
        """Every call is bounded by ``timeout_s``: connecting, each statement, and waiting for a
        pooled connection. A server that accepts connections and then stalls fails the call."""
        if url.startswith("sqlite"):
            engine = create_async_engine(url, connect_args={"timeout": timeout_s})
            event.listen(engine.sync_engine, "connect", _sqlite_wal)
            return cls(engine)
        return cls(
            create_async_engine(
                url,
                pool_size=pool_size,
                pool_timeout=timeout_s,
                pool_pre_ping=True,
                connect_args={"timeout": timeout_s, "command_timeout": timeout_s},
            )
        )

    async def ensure_schema(self, revision: str = "head") -> None:
        """Migrate the audit schema to ``revision`` (every worker does so on start: idempotent).
        On PostgreSQL the migration holds a transaction-scoped advisory lock, so workers
        starting together (and the migration Job) migrate one after the other instead of racing
        on the same DDL; SQLite serialises writers by itself."""
        from riskstream import migrations

        async with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.run_sync(migrations.upgrade, revision)

    async def downgrade(self, revision: str) -> None:
        from riskstream import migrations

        async with self.engine.begin() as conn:
            await conn.run_sync(migrations.downgrade, revision)

    async def schema_revision(self) -> str | None:
        from riskstream import migrations

        async with self.engine.connect() as conn:
            return await conn.run_sync(migrations.current)

    async def write(self, alerts: Sequence[RiskAlert]) -> None:
        """Upsert on alert_id: a newer version replaces the row, a replay changes nothing."""
        if not alerts:
            return
        rows = [audit_row(a) for a in alerts]
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(audit_table)
        updatable = [c.name for c in audit_table.columns if c.name != "alert_id"]
        stmt = stmt.on_conflict_do_update(
            index_elements=[audit_table.c.alert_id],
            set_={name: stmt.excluded[name] for name in updatable},
            where=audit_table.c.version < stmt.excluded.version,
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt, rows)

    async def recent_alerts(
        self, entities: Sequence[AlertEntity], per_entity: int
    ) -> dict[AlertEntity, list[PriorAlert]]:
        """The newest ``per_entity`` alerts of each entity (by account, or by symbol for an
        entity without one): the LLM tier's retrieved context. One indexed query per kind."""
        found: dict[AlertEntity, list[PriorAlert]] = {e: [] for e in entities}
        by_account: dict[str, list[AlertEntity]] = {}
        by_symbol: dict[str, list[AlertEntity]] = {}
        for e in entities:
            if e.account:
                by_account.setdefault(e.account, []).append(e)
            elif e.symbol:
                by_symbol.setdefault(e.symbol, []).append(e)
        by_column = ((audit_table.c.account, by_account), (audit_table.c.symbol, by_symbol))
        async with self.engine.connect() as conn:
            for column, wanted in by_column:
                if not wanted:
                    continue
                rank = (
                    func.row_number()
                    .over(partition_by=column, order_by=audit_table.c.event_ts.desc())
                    .label("rank")
                )
                inner = (
                    select(
                        column.label("key"),
                        audit_table.c.alert_id,
                        audit_table.c.category,
                        audit_table.c.severity,
                        audit_table.c.score,
                        audit_table.c.event_ts,
                        audit_table.c.evidence,
                        rank,
                    )
                    .where(column.in_(list(wanted)))
                    .subquery()
                )
                rows = await conn.execute(
                    select(inner).where(inner.c.rank <= per_entity).order_by(inner.c.event_ts.desc())
                )
                for row in rows:
                    prior = PriorAlert(
                        alert_id=row.alert_id,
                        category=row.category,
                        severity=row.severity,
                        score=row.score,
                        event_ns=_ns(row.event_ts),
                        summary=str((row.evidence or {}).get("summary", "")),
                    )
                    for entity in wanted[row.key]:
                        found[entity].append(prior)
        return found

    async def fetch_all(self) -> list[dict[str, Any]]:
        """Every row, oldest event first: for tests and small audits."""
        async with self.engine.connect() as conn:
            result = await conn.execute(select(audit_table).order_by(audit_table.c.event_ts))
            return [dict(row._mapping) for row in result]

    async def close(self) -> None:
        await self.engine.dispose()


PERMANENT_ERRORS = (IntegrityError, DataError, ProgrammingError)
"""The database refuses the rows themselves or the schema is not what the code expects: a retry
cannot succeed until an operator acts, so it is reported as such and retried at the slowest
pace only."""


class AuditWriter:
    """Audit rows written in the background, in batches, so a slow database does not stall the
    stream. :meth:`flush` is awaited before every offset commit (the durable-before-commit
    rule) and says whether every submitted row is written; a failing write keeps its rows
    pending (never dropped), is logged with its reason and retried with capped exponential
    backoff, and marks the database unreachable for readiness until a write succeeds."""

    def __init__(
        self,
        log: AuditLog,
        metrics: Metrics,
        retry_max_s: float = 5.0,
        timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
        on_submit: Callable[[Sequence[RiskAlert]], None] | None = None,
    ) -> None:
        """``on_submit`` sees every alert submitted (the prior-alerts cache keeps them)."""
        self.log = log
        self._on_submit = on_submit
        self._m = metrics
        self._retry_max_s = retry_max_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._pending: list[RiskAlert] = []
        self._lock = asyncio.Lock()
        self._delay_s = 0.0
        self._retry_at = 0.0

    def submit(self, alerts: Sequence[RiskAlert]) -> None:
        self._pending.extend(alerts)
        if self._on_submit is not None:
            self._on_submit(alerts)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> bool:
        """Write every pending row; True when none is left pending. While backing off after a
        failure it returns False without trying."""
        async with self._lock:
            if not self._pending:
                return True
            if self._clock() < self._retry_at:
                return False
            batch = list(self._pending)
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(self.log.write(batch), self._timeout_s)
            except Exception as exc:
                self._failed(len(batch), exc)
                return False
            self._m.audit_write.observe(time.perf_counter() - t0)
            # Rows submitted while the write ran stay pending.
            del self._pending[: len(batch)]
            if self._delay_s:
                logger.info("audit writes succeed again; %d rows pending", len(self._pending))
            self._delay_s = 0.0
            self._m.dependency_up.labels("database").set(1)
            self._m.set_condition("database", None)
            return not self._pending

    def _failed(self, rows: int, exc: BaseException) -> None:
        self._m.audit_failures.inc()
        self._m.dependency_up.labels("database").set(0)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300] if str(exc) else type(exc).__name__
        if isinstance(exc, PERMANENT_ERRORS):
            self._delay_s = self._retry_max_s
            logger.error(
                "audit table refuses %d alerts (%s): not retryable until fixed (schema: riskstream db"
                " upgrade); offsets stay uncommitted, retrying every %.0f s",
                rows,
                reason,
                self._delay_s,
            )
        else:
            self._delay_s = min(max(self._delay_s * 2, 0.05), self._retry_max_s)
            logger.warning(
                "audit write of %d alerts failed (%s); offsets stay uncommitted, retrying in %.2f s",
                rows,
                reason,
                self._delay_s,
            )
        self._m.set_condition("database", reason)
        self._retry_at = self._clock() + self._delay_s
