"""cashiers' sessions at the till

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 03:30:00

`staff_sessions`: the till's sign-in page keeps a cashier's session on the
server, as `hq_sessions` does for HQ users (only a SHA-256 of the token, a CSRF
token, last seen for the idle timeout, an absolute end, revoked). A new table;
nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalpos.db.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("staff_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_staff_sessions_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["store_staff.id"], name=op.f("fk_staff_sessions_staff_id_store_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_staff_id"), ["staff_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_staff_id"))
    op.drop_table("staff_sessions")
