"""The audit schema's migrations (Alembic), run by ``riskstream db upgrade`` and by every worker
on start (upgrading to head is idempotent), on PostgreSQL and SQLite alike.

Alembic is configured here in code, not from an alembic.ini: the database URL comes from the
settings tree like everything else, and the scripts ship inside the package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

SCRIPTS = Path(__file__).parent


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(connection: Connection, revision: str = "head") -> None:
    command.upgrade(_config(connection), revision)


def downgrade(connection: Connection, revision: str) -> None:
    command.downgrade(_config(connection), revision)


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def head() -> str:
    script = ScriptDirectory.from_config(_config())
    found = script.get_current_head()
    assert found is not None
    return found
