"""The audit schema's Alembic migrations up and down on the real PostgreSQL server and on
SQLite, through the ``riskstream db`` command; the result matches the code's table and the
reference DDL, and a database the worker created before migrations existed is adopted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from riskstream.cli import main
from riskstream.migrations import head
from riskstream.sinks import audit_table
from riskstream.sinks.audit import metadata
from tests.integration.conftest import create_pg_database, drop_pg_database


@pytest.fixture(params=["postgres", "sqlite"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}"
        return
    url = await create_pg_database()
    yield url
    await drop_pg_database(url)


async def tables_and_indexes(url: str) -> tuple[set[str], set[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: (
                    set(inspect(c).get_table_names()),
                    {i["name"] or "" for i in inspect(c).get_indexes("risk_alert_audit")}
                    if inspect(c).has_table("risk_alert_audit")
                    else set(),
                )
            )
    finally:
        await engine.dispose()


async def db(url: str, *args: str) -> str:
    """The CLI runs its own event loop: off this test's loop, in a thread."""
    env = {"RISKSTREAM_DATABASE__URL": url}
    result = await asyncio.to_thread(CliRunner().invoke, main, ["db", *args], env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_upgrade_downgrade_and_upgrade_again(db_url: str) -> None:
    assert "revision None" in await db(db_url, "current")
    assert f"revision {head()}" in await db(db_url, "upgrade")
    tables, indexes = await tables_and_indexes(db_url)
    assert "risk_alert_audit" in tables
    assert indexes == {i.name for i in audit_table.indexes}
    assert "revision 0001" in await db(db_url, "downgrade", "0001")
    _, indexes = await tables_and_indexes(db_url)
    assert "ix_audit_event_ts" not in indexes and "ix_audit_account_event_ts" in indexes
    assert "revision None" in await db(db_url, "downgrade", "base")
    tables, _ = await tables_and_indexes(db_url)
    assert "risk_alert_audit" not in tables
    assert f"revision {head()}" in await db(db_url, "upgrade")
    assert f"revision {head()}" in await db(db_url, "upgrade")


async def test_a_table_created_before_migrations_is_adopted(db_url: str) -> None:
    """Earlier workers created the table from metadata without the event-time index."""
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.exec_driver_sql("DROP INDEX ix_audit_event_ts")
    finally:
        await engine.dispose()
    assert f"revision {head()}" in await db(db_url, "upgrade")
    _, indexes = await tables_and_indexes(db_url)
    assert indexes == {i.name for i in audit_table.indexes}


def test_unreachable_database_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        main, ["db", "upgrade"], env={"RISKSTREAM_DATABASE__URL": "postgresql+asyncpg://x@127.0.0.1:1/none"}
    )
    assert result.exit_code == 1
    assert "cannot migrate the audit database" in result.output
    assert "Traceback" not in result.output
