"""Incremental surveillance: the feed's cases per syndrome (classified by detection runs
from what arrived since the previous one) and a record of each run.

The first run after this migration classifies the whole feed, as does any run whose
syndrome definitions differ from the previous run's.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "syndrome_case",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("resource_key", sa.String(length=64), nullable=False),
        sa.Column("syndrome", sa.String(length=64), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.UniqueConstraint("resource_key", "syndrome"),
    )
    op.create_index("ix_syndrome_case_patient_key", "syndrome_case", ["patient_key"])
    op.create_index("ix_syndrome_case_syndrome_day", "syndrome_case", ["syndrome", "day"])
    op.create_table(
        "surveillance_run",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("through_day", sa.Date(), nullable=False),
        sa.Column("definitions", sa.String(length=64), nullable=False),
        sa.Column("incremental", sa.Boolean(), nullable=False),
        sa.Column("classified", sa.Integer(), nullable=False),
        sa.Column("series", sa.Integer(), nullable=False),
        sa.Column("signals", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("surveillance_run")
    op.drop_table("syndrome_case")
