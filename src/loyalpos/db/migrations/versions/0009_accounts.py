"""accounts: HQ users with roles, their sessions and sign-in attempts; store staff

Revision ID: 0009
Revises: 0008_catalogue
Create Date: 2026-12-05 02:54:36

`hq_users` (login name unique per brand, role, argon2 password hash, disabled)
and `hq_user_stores` (the stores a store manager looks after); `hq_sessions`
(server-side: only a SHA-256 of the token, a CSRF token, last seen for the idle
timeout, an absolute end, revoked); `login_attempts` (what sign-in throttling
counts, per login name and per client address); `store_staff` (工号 unique per
store, PIN hash, wrong PINs in a row and the lockout). All new tables; nothing
existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalpos.db.types

revision = "0009"
down_revision = "0008_catalogue"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hq_users",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("login", sa.String(length=40), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'operator', 'analyst', 'store_manager')",
            name=op.f("ck_hq_users_role_known"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_hq_users_brand_id_brands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hq_users")),
        sa.UniqueConstraint("brand_id", "login", name=op.f("uq_hq_users_brand_id_login")),
    )
    op.create_table(
        "login_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("login", sa.String(length=40), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ok', 'failed', 'throttled')", name=op.f("ck_login_attempts_outcome_known")
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_login_attempts_brand_id_brands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_login_attempts_address", ["brand_id", "address", "at"], unique=False
        )
        batch_op.create_index("ix_login_attempts_login", ["brand_id", "login", "at"], unique=False)

    op.create_table(
        "hq_sessions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_hq_sessions_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["hq_users.id"], name=op.f("fk_hq_sessions_user_id_hq_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hq_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_hq_sessions_token_hash")),
    )
    with op.batch_alter_table("hq_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_hq_sessions_user_id"), ["user_id"], unique=False)

    op.create_table(
        "hq_user_stores",
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_hq_user_stores_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_hq_user_stores_store_id_stores")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["hq_users.id"], name=op.f("fk_hq_user_stores_user_id_hq_users")
        ),
        sa.PrimaryKeyConstraint("user_id", "store_id", name=op.f("pk_hq_user_stores")),
    )
    op.create_table(
        "store_staff",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("pin_hash", sa.String(length=200), nullable=False),
        sa.Column("failed_pins", sa.Integer(), server_default="0", nullable=False),
        sa.Column("locked_until", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_store_staff_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_store_staff_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_staff")),
        sa.UniqueConstraint("store_id", "number", name=op.f("uq_store_staff_store_id_number")),
    )


def downgrade() -> None:
    op.drop_table("store_staff")
    op.drop_table("hq_user_stores")
    with op.batch_alter_table("hq_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hq_sessions_user_id"))

    op.drop_table("hq_sessions")
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_login")
        batch_op.drop_index("ix_login_attempts_address")

    op.drop_table("login_attempts")
    op.drop_table("hq_users")
