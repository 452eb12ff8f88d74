"""Model predictions with their feature vectors and, once their window has closed, labels.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("invocation_id", sa.Integer(), sa.ForeignKey("invocation.id"), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=False),
        sa.Column("risk", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("contributions", sa.JSON(), nullable=False),
        sa.Column("card_uuid", sa.String(length=64), nullable=True),
        sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prediction_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=True),
        sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_prediction_invocation_id", "prediction", ["invocation_id"])
    op.create_index("ix_prediction_patient_key", "prediction", ["patient_key"])
    op.create_index("ix_prediction_model_name", "prediction", ["model_name"])
    op.create_index("ix_prediction_predicted_at", "prediction", ["predicted_at"])
    op.create_index("ix_prediction_prediction_time", "prediction", ["prediction_time"])


def downgrade() -> None:
    op.drop_table("prediction")
