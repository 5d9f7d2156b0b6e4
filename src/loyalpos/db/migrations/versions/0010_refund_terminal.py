"""refunds keep the till they were made at

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 03:25:00

`refunds.terminal`: orders and held carts record the cashier and the terminal;
refunds recorded the cashier only. NULL for refunds booked before, or sent
without one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terminal", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_column("terminal")
