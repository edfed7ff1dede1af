"""Index on event time alone: analysts' time-range queries over every entity and category.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_event_ts", "risk_alert_audit", ["event_ts"])


def downgrade() -> None:
    op.drop_index("ix_audit_event_ts", table_name="risk_alert_audit")
