"""partial ledger indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:25:57.043825
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


OPEN = sa.text("remaining != 0")
POSITIVE = sa.text("remaining > 0")
KEYED = sa.text("idempotency_key IS NOT NULL")
REVERSAL = sa.text("reverses_entry_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("point_entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_point_entries_brand_id_idempotency_key", type_="unique")
        batch_op.create_index(
            "uq_point_entries_idempotency_key",
            ["brand_id", "idempotency_key"],
            unique=True,
            postgresql_where=KEYED,
            sqlite_where=KEYED,
        )
        batch_op.drop_index("ix_point_entries_reverses")
        batch_op.create_index(
            "ix_point_entries_reverses",
            ["reverses_entry_id"],
            postgresql_where=REVERSAL,
            sqlite_where=REVERSAL,
        )
    with op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_point_lots_member_open")
        batch_op.create_index(
            "ix_point_lots_member_open",
            ["member_id", "expires_on", "id"],
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )
        batch_op.drop_index("ix_point_lots_member_available")
        batch_op.create_index(
            "ix_point_lots_member_available",
            ["member_id", "available_at"],
            postgresql_where=POSITIVE,
            sqlite_where=POSITIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_point_lots_member_available")
        batch_op.create_index("ix_point_lots_member_available", ["member_id", "available_at"])
        batch_op.drop_index("ix_point_lots_member_open")
        batch_op.create_index("ix_point_lots_member_open", ["member_id", "expires_on"])
    with op.batch_alter_table("point_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_point_entries_reverses")
        batch_op.create_index("ix_point_entries_reverses", ["reverses_entry_id"])
        batch_op.drop_index("uq_point_entries_idempotency_key")
        batch_op.create_unique_constraint(
            "uq_point_entries_brand_id_idempotency_key", ["brand_id", "idempotency_key"]
        )
