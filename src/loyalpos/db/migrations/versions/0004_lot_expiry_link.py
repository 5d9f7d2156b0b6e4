"""lots record the expire entry that emptied them

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:45:00

The expiry job books one `expire` entry per member and run instead of one per
lot; each lot it empties keeps the points it lost and the entry that took them,
so the per-lot breakdown stays exact at a tenth of the ledger rows.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expired_points", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("expired_entry_id", Id, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.drop_column("expired_entry_id")
        batch_op.drop_column("expired_points")
