"""Alembic environment: runs on the connection riskstream hands in (see ``__init__``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from riskstream.sinks.audit import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through `riskstream db` (riskstream.migrations), not the alembic CLI")
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
