"""Override suppression kept within a client: each stored override names the client whose
clinician overrode the card, and the hot-path lookup is indexed by it. Overrides stored
before this migration take the owner of their feedback item.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "card_override",
        sa.Column("owner", sa.String(length=512), nullable=False, server_default=""),
    )
    op.execute(
        "UPDATE card_override SET owner = "
        "(SELECT feedback.owner FROM feedback WHERE feedback.id = card_override.feedback_id)"
    )
    op.drop_index("ix_card_override_lookup", table_name="card_override")
    op.create_index(
        "ix_card_override_lookup",
        "card_override",
        ["owner", "patient_key", "rule_id", "overridden_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_card_override_lookup", table_name="card_override")
    op.create_index(
        "ix_card_override_lookup", "card_override", ["patient_key", "rule_id", "overridden_at"]
    )
    op.execute("ALTER TABLE card_override DROP COLUMN owner")
