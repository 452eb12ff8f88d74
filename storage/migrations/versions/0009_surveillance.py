"""Population surveillance: coded Observation values and patients' coarse area and birth
year in the feed, and the signals detected from it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outcome_event") as table:
        table.add_column(sa.Column("value_codes", sa.JSON(), nullable=False, server_default="[]"))
        table.add_column(sa.Column("area", sa.String(length=16), nullable=True))
        table.add_column(sa.Column("birth_year", sa.Integer(), nullable=True))
    op.create_table(
        "surveillance_signal",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("syndrome", sa.String(length=64), nullable=False),
        sa.Column("area", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("observed", sa.Float(), nullable=False),
        sa.Column("expected", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("syndrome", "area", "day", "method"),
    )
    for column in ("syndrome", "area", "day"):
        op.create_index(f"ix_surveillance_signal_{column}", "surveillance_signal", [column])


def downgrade() -> None:
    op.drop_table("surveillance_signal")
    with op.batch_alter_table("outcome_event") as table:
        table.drop_column("birth_year")
        table.drop_column("area")
        table.drop_column("value_codes")
