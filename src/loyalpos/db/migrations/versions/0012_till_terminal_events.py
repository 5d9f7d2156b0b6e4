"""till sessions know their terminal; the till's overrides are recorded

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 21:40:00

`staff_sessions.terminal`: the till a cashier signed in at, so the cashier page
(issue 13) knows it on every request; NULL for sessions started before.

`till_events`: what a till overrode (a sale without the member identification
the brand requires, an unknown item at a typed price, benefits declined,
another coupon forced), with who, where and why, for the reports per store and
local day (hence the index on brand, store, time). A new table; nothing
existing changes but the added nullable column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalpos.db.types

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("terminal", sa.String(length=32), nullable=True))
    op.create_table(
        "till_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("staff_number", sa.String(length=64), nullable=False),
        sa.Column("terminal", sa.String(length=64), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_till_events_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_till_events_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["store_staff.id"], name=op.f("fk_till_events_staff_id_store_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_till_events")),
    )
    with op.batch_alter_table("till_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_till_events_report", ["brand_id", "store_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("till_events", schema=None) as batch_op:
        batch_op.drop_index("ix_till_events_report")
    op.drop_table("till_events")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_column("terminal")
