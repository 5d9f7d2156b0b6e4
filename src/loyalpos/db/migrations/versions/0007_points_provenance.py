"""orders keep the earning rules that produced their points

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 22:30:00

`orders.points_rules`: the earning rules and multipliers behind the order's
points (base rate, tier and time multipliers, a coupon's multiplier, bonuses),
as the JSON the receipt shows, written by the order's own INSERT; the points
history shows it next to the order's entries. NULL for orders booked before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("points_rules", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("points_rules")
