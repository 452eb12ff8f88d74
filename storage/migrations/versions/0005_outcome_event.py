"""Outcome events fed in after the fact (minimised FHIR resources); model promotion decisions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcome_event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("resource_key", sa.String(length=64), nullable=False, unique=True),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("resource_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("class_code", sa.String(length=32), nullable=True),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("unit", sa.String(length=64), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_outcome_event_patient_key", "outcome_event", ["patient_key"])
    op.create_index("ix_outcome_event_started_at", "outcome_event", ["started_at"])
    op.create_index("ix_outcome_event_received_at", "outcome_event", ["received_at"])
    op.create_table(
        "model_decision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("champion_version", sa.String(length=32), nullable=True),
        sa.Column("challenger_version", sa.String(length=32), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("decided_by", sa.String(length=256), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_model_decision_model_name", "model_decision", ["model_name"])
    op.create_index("ix_model_decision_decided_at", "model_decision", ["decided_at"])


def downgrade() -> None:
    op.drop_table("model_decision")
    op.drop_table("outcome_event")
