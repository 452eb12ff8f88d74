"""Sex, race and ethnicity beside each served prediction, for fairness audits of the served
model (never a feature). Predictions stored before this migration have none (NULL).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_COLUMNS = (("sex", 32), ("race", 64), ("ethnicity", 64))


def upgrade() -> None:
    for name, length in _COLUMNS:
        op.add_column("prediction", sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    for name, _ in _COLUMNS:
        op.execute(f"ALTER TABLE prediction DROP COLUMN {name}")
