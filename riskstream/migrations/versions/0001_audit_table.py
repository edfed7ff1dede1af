"""The audit table of scored alerts, with its entity and category indexes.

Databases created before migrations existed (the worker created the table itself) already hold
the table and indexes: this revision then only records itself.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

INDEXES = {
    "ix_audit_account_event_ts": ["account", "event_ts"],
    "ix_audit_symbol_event_ts": ["symbol", "event_ts"],
    "ix_audit_category_severity_event_ts": ["category", "severity", "event_ts"],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("risk_alert_audit"):
        op.create_table(
            "risk_alert_audit",
            sa.Column("alert_id", sa.String(32), primary_key=True),
            sa.Column("version", sa.Integer, nullable=False),
            sa.Column("category", sa.String(32), nullable=False),
            sa.Column("severity", sa.String(16), nullable=False),
            sa.Column("score", sa.Float, nullable=False),
            sa.Column("rule_score", sa.Float, nullable=False),
            sa.Column("degraded", sa.Boolean, nullable=False),
            sa.Column("account", sa.String(64)),
            sa.Column("symbol", sa.String(64)),
            sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
            sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
            sa.Column("event_ts", sa.DateTime(timezone=True), nullable=False),
            sa.Column("detected_ts", sa.DateTime(timezone=True), nullable=False),
            sa.Column("published_ts", sa.DateTime(timezone=True)),
            sa.Column("evidence", sa.JSON, nullable=False),
            sa.Column("llm", sa.JSON),
            sa.Column("alert", sa.JSON, nullable=False),
        )
    existing = {ix["name"] for ix in sa.inspect(op.get_bind()).get_indexes("risk_alert_audit")}
    for name, columns in INDEXES.items():
        if name not in existing:
            op.create_index(name, "risk_alert_audit", columns)


def downgrade() -> None:
    op.drop_table("risk_alert_audit")
