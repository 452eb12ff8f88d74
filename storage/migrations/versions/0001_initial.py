"""Invocations, issued cards and feedback.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invocation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("hook_instance", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("user_reference", sa.String(length=256), nullable=True),
        sa.Column("fhir_server", sa.String(length=2048), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("card_count", sa.Integer(), nullable=False),
        sa.Column("prefetch_provided", sa.JSON(), nullable=False),
        sa.Column("prefetch_fetched", sa.JSON(), nullable=False),
        sa.Column("prefetch_unavailable", sa.JSON(), nullable=False),
        sa.Column("records_skipped", sa.Integer(), nullable=False),
    )
    op.create_index("ix_invocation_hook_instance", "invocation", ["hook_instance"])
    op.create_index("ix_invocation_service_id", "invocation", ["service_id"])
    op.create_index("ix_invocation_patient_key", "invocation", ["patient_key"])
    op.create_index("ix_invocation_received_at", "invocation", ["received_at"])

    op.create_table(
        "issued_card",
        sa.Column("uuid", sa.String(length=64), primary_key=True),
        sa.Column("invocation_id", sa.Integer(), sa.ForeignKey("invocation.id"), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("rule_version", sa.String(length=32), nullable=False),
        sa.Column("indicator", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=256), nullable=False),
        sa.Column("card", sa.JSON(), nullable=False),
        sa.Column("suggestion_uuids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_issued_card_invocation_id", "issued_card", ["invocation_id"])
    op.create_index("ix_issued_card_rule_id", "issued_card", ["rule_id"])

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False, unique=True),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("card_uuid", sa.String(length=256), nullable=False),
        sa.Column(
            "issued_card_uuid",
            sa.String(length=64),
            sa.ForeignKey("issued_card.uuid"),
            nullable=True,
        ),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_reason_system", sa.String(length=2048), nullable=True),
        sa.Column("override_reason_code", sa.String(length=256), nullable=True),
        sa.Column("override_reason_display", sa.String(length=1024), nullable=True),
        sa.Column("user_comment", sa.String(), nullable=True),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
    )
    op.create_index("ix_feedback_service_id", "feedback", ["service_id"])
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_issued_card_uuid", "feedback", ["issued_card_uuid"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("issued_card")
    op.drop_table("invocation")
