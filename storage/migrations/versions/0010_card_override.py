"""Overrides keyed by patient and rule, so that the alert-burden lookup of a call reads only
that patient's overrides instead of every card the patient was shown; filled from the
feedback already stored.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "card_override",
        sa.Column("feedback_id", sa.Integer(), sa.ForeignKey("feedback.id"), primary_key=True),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_card_override_lookup", "card_override", ["patient_key", "rule_id", "overridden_at"]
    )
    op.execute(
        "INSERT INTO card_override (feedback_id, patient_key, rule_id, fingerprint, overridden_at) "
        "SELECT feedback.id, issued_card.patient_key, issued_card.rule_id, "
        "issued_card.fingerprint, feedback.outcome_timestamp "
        "FROM feedback JOIN issued_card ON feedback.issued_card_uuid = issued_card.uuid "
        "WHERE feedback.outcome = 'overridden'"
    )


def downgrade() -> None:
    op.drop_table("card_override")
