"""Shadow mode: candidates run silently beside the live rules and models, and per call what
each side produced.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "shadow_run",
        sa.Column("id", sa.String(length=128), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("candidate_version", sa.String(length=32), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=256), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_shadow_run_subject", "shadow_run", ["subject"])
    op.create_table(
        "shadow_comparison",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invocation_id", sa.Integer(), sa.ForeignKey("invocation.id"), nullable=False),
        sa.Column("shadow_id", sa.String(length=128), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("live_version", sa.String(length=32), nullable=False),
        sa.Column("candidate_version", sa.String(length=32), nullable=False),
        sa.Column("agreement", sa.String(length=16), nullable=False),
        sa.Column("changed", sa.Boolean(), nullable=False),
        sa.Column("live", sa.JSON(), nullable=False),
        sa.Column("shadow", sa.JSON(), nullable=False),
        sa.Column("compared_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("invocation_id", "shadow_id", "compared_at"):
        op.create_index(f"ix_shadow_comparison_{column}", "shadow_comparison", [column])


def downgrade() -> None:
    op.drop_table("shadow_comparison")
    op.drop_table("shadow_run")
