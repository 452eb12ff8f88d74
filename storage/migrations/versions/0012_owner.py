"""Tenancy: every invocation, card, feedback item, prediction and outcome names the CDS
client that owns it. Rows stored before this migration belong to no client ("") and are
read only by informaticians (or with authentication off). Cards are indexed by the time
they were shown, which every analytics window filters on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TABLES = ("invocation", "issued_card", "feedback", "prediction", "outcome_event")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(
            table,
            sa.Column("owner", sa.String(length=512), nullable=False, server_default=""),
        )
        op.create_index(f"ix_{table}_owner", table, ["owner"])
    op.create_index("ix_issued_card_created_at", "issued_card", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_issued_card_created_at", table_name="issued_card")
    for table in _TABLES:
        op.drop_index(f"ix_{table}_owner", table_name=table)
        # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of invocation would trip the
        # foreign keys of the tables that reference it.
        op.execute(f"ALTER TABLE {table} DROP COLUMN owner")
