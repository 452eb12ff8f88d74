"""Card inputs and fingerprints (explanations, alert-burden control); site rule settings with audit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issued_card") as batch:
        batch.add_column(
            sa.Column("patient_key", sa.String(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(
            sa.Column("fingerprint", sa.String(length=64), nullable=False, server_default="")
        )
        batch.create_index("ix_issued_card_patient_key", ["patient_key"])
    op.create_table(
        "rule_setting",
        sa.Column("rule_id", sa.String(length=128), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("thresholds", sa.JSON(), nullable=False),
        sa.Column("suppression_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
    )
    op.create_table(
        "rule_setting_change",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=256), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
    )
    op.create_index("ix_rule_setting_change_rule_id", "rule_setting_change", ["rule_id"])


def downgrade() -> None:
    op.drop_table("rule_setting_change")
    op.drop_table("rule_setting")
    with op.batch_alter_table("issued_card") as batch:
        batch.drop_index("ix_issued_card_patient_key")
        batch.drop_column("fingerprint")
        batch.drop_column("inputs")
        batch.drop_column("patient_key")
