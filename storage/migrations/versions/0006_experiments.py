"""Experiments on rules and the arm under which each card was produced (shown or withheld).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.String(length=128), primary_key=True),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_by", sa.String(length=256), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(), nullable=True),
    )
    op.create_index("ix_experiment_rule_id", "experiment", ["rule_id"])
    op.create_table(
        "experiment_assignment",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invocation_id", sa.Integer(), sa.ForeignKey("invocation.id"), nullable=False),
        sa.Column("experiment_id", sa.String(length=128), nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("rule_version", sa.String(length=32), nullable=False),
        sa.Column("card_uuid", sa.String(length=64), nullable=False),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("index_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )
    for column in ("invocation_id", "experiment_id", "patient_key", "card_uuid", "assigned_at"):
        op.create_index(f"ix_experiment_assignment_{column}", "experiment_assignment", [column])


def downgrade() -> None:
    op.drop_table("experiment_assignment")
    op.drop_table("experiment")
