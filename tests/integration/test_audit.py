"""The audit sink on the real PostgreSQL server and on SQLite: idempotent on alert_id, newer
versions replace the row, and schemas/audit.sql matches the table the code creates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.package_data import SCHEMAS
from riskstream.records import AlertEntity, Category, Evidence, RiskAlert, Severity, Timings, WindowBounds
from riskstream.sinks import AuditLog, audit_table
from tests.integration.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.integration
T = 1_764_064_800_000_000_000


def alert(alert_id: str = "a" * 32, version: int = 1, score: float = 0.7) -> RiskAlert:
    return RiskAlert(
        alert_id,
        Category.SPOOFING,
        Severity.HIGH,
        score,
        0.7,
        AlertEntity("ACC-1", "AAPL"),
        WindowBounds(T, T + 5),
        Evidence({"ratio": 4.0}, ("o1", "o2"), "s"),
        Timings(T + 5, T + 10, T + 20),
        version=version,
    )


@pytest.fixture(params=["postgres", "sqlite"])
async def audit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AuditLog]:
    pg = request.param == "postgres"
    url = await create_pg_database() if pg else f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    log = AuditLog.from_url(url)
    await log.ensure_schema()
    yield log
    await log.close()
    if pg:
        await drop_pg_database(url)


async def test_replay_writes_no_duplicate(audit: AuditLog) -> None:
    try:
        await audit.write([alert()])
        await audit.write([alert()])
        rows = await audit.fetch_all()
        assert len(rows) == 1
        assert rows[0]["alert"] == alert().to_json()
    finally:
        await audit.close()


async def test_newer_version_replaces_older_never_the_reverse(audit: AuditLog) -> None:
    try:
        await audit.write([alert(version=2, score=0.9)])
        await audit.write([alert(version=1, score=0.1)])
        rows = await audit.fetch_all()
        assert [(r["version"], r["score"]) for r in rows] == [(2, 0.9)]
        await audit.write([alert(version=3, score=0.95), replace(alert(), alert_id="b" * 32)])
        rows = await audit.fetch_all()
        assert sorted((r["alert_id"][0], r["version"]) for r in rows) == [("a", 3), ("b", 1)]
    finally:
        await audit.close()


async def test_reference_ddl_matches_code_table(postgres_url: str) -> None:
    dsn = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute((SCHEMAS / "audit.sql").read_text())
    finally:
        await conn.close()
    engine = create_async_engine(postgres_url)
    try:
        async with engine.connect() as c:
            cols, indexes = await c.run_sync(
                lambda s: (
                    inspect(s).get_columns("risk_alert_audit"),
                    inspect(s).get_indexes("risk_alert_audit"),
                )
            )
    finally:
        await engine.dispose()
    from_ddl = {c["name"]: (type(c["type"]).__name__, c["nullable"]) for c in cols}
    pg = engine.dialect
    from_code = {c.name: (type(c.type.dialect_impl(pg)).__name__, c.nullable) for c in audit_table.columns}
    assert set(from_ddl) == set(from_code)
    for name, (_, nullable) in from_code.items():
        assert from_ddl[name][1] == nullable, name
    assert {i["name"] for i in indexes} == {i.name for i in audit_table.indexes}
    log = AuditLog(create_async_engine(postgres_url))
    try:
        await log.write([alert()])
        assert len(await log.fetch_all()) == 1
    finally:
        await log.close()


async def test_recent_alerts_newest_first_per_entity(audit: AuditLog) -> None:
    def at(i: int, account: str | None, symbol: str) -> RiskAlert:
        a = replace(alert(f"{i:032x}"), entity=AlertEntity(account, symbol))
        return replace(
            a,
            timings=Timings(T + i * 1_000_000_000, T, T),
            evidence=replace(a.evidence, summary=f"s{i}"),
        )

    await audit.write([at(i, "ACC-1", "AAPL") for i in range(5)])
    await audit.write([at(10 + i, "ACC-2", "MSFT") for i in range(2)])
    await audit.write([at(20, None, "IBM"), at(21, None, "IBM")])
    acc1, acc2, acc3 = AlertEntity("ACC-1", "AAPL"), AlertEntity("ACC-2", "X"), AlertEntity("ACC-3", "X")
    ibm = AlertEntity(None, "IBM")
    got = await audit.recent_alerts([acc1, acc2, acc3, ibm], 3)
    assert [p.summary for p in got[acc1]] == ["s4", "s3", "s2"]
    assert [p.event_ns for p in got[acc1]] == [T + i * 1_000_000_000 for i in (4, 3, 2)]
    assert [p.summary for p in got[acc2]] == ["s11", "s10"]
    assert got[acc3] == []
    assert [p.alert_id for p in got[ibm]] == [f"{21:032x}", f"{20:032x}"]
    assert got[acc1][0].category == "spoofing"
