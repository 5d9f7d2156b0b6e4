"""initial schema: brands, stores, members, points ledger, claims

Revision ID: 0001
Revises:
Create Date: 2026-11-23 12:16:10.253398
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalpos.db.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "brands",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="Asia/Shanghai", nullable=False),
        sa.Column("expiry_mode", sa.String(length=16), server_default="none", nullable=False),
        sa.Column("expiry_months", sa.Integer(), nullable=True),
        sa.Column("expiry_period", sa.String(length=16), nullable=True),
        sa.Column("expiry_periods_later", sa.Integer(), server_default="0", nullable=False),
        sa.Column("birthday_extension_months", sa.Integer(), server_default="0", nullable=False),
        sa.Column("pending_days", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "allow_negative_balance",
            sa.Boolean(),
            server_default=sa.text("(false)"),
            nullable=False,
        ),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brands")),
        sa.UniqueConstraint("code", name=op.f("uq_brands_code")),
    )
    op.create_table(
        "stores",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_stores_brand_id_brands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stores")),
        sa.UniqueConstraint("brand_id", "code", name=op.f("uq_stores_brand_id_code")),
    )
    op.create_table(
        "members",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column(
            "referrer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("card_no", sa.String(length=16), nullable=False),
        sa.Column("tier", sa.String(length=40), server_default="normal", nullable=False),
        sa.Column("points_balance", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("birthday_extended_year", sa.Integer(), nullable=True),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_members_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["referrer_id"], ["members.id"], name=op.f("fk_members_referrer_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_members_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("brand_id", "card_no", name=op.f("uq_members_brand_id_card_no")),
        sa.UniqueConstraint("brand_id", "phone", name=op.f("uq_members_brand_id_phone")),
    )
    op.create_table(
        "claims",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("order_ref", sa.String(length=120), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "claimed_member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("claimed_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_claims_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["claimed_member_id"], ["members.id"], name=op.f("fk_claims_claimed_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_claims_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_claims")),
        sa.UniqueConstraint("brand_id", "order_ref", name=op.f("uq_claims_brand_id_order_ref")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_claims_token_hash")),
    )
    op.create_table(
        "member_identities",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_member_identities_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_member_identities_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_identities")),
        sa.UniqueConstraint(
            "brand_id",
            "provider",
            "kind",
            "value",
            name=op.f("uq_member_identities_brand_id_provider_kind_value"),
        ),
    )
    with op.batch_alter_table("member_identities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_member_identities_member_id"), ["member_id"], unique=False
        )

    op.create_table(
        "point_lots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("original_points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("is_debt", sa.Boolean(), server_default=sa.text("(false)"), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("available_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT is_debt OR remaining <= 0", name=op.f("ck_point_lots_debt_not_positive")
        ),
        sa.CheckConstraint(
            "is_debt OR remaining >= 0", name=op.f("ck_point_lots_remaining_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_point_lots_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_point_lots_member_id_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_lots")),
    )
    with op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_point_lots_expiring",
            ["expires_on"],
            unique=False,
            postgresql_where=sa.text("remaining > 0"),
            sqlite_where=sa.text("remaining > 0"),
        )
        batch_op.create_index(
            "ix_point_lots_member_open", ["member_id", "expires_on"], unique=False
        )
        batch_op.create_index(
            "ix_point_lots_member_available", ["member_id", "available_at"], unique=False
        )

    op.create_table(
        "point_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("brand_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("store_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "reverses_entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=120), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("operator", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=120), nullable=True),
        sa.Column("created_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("points <> 0", name=op.f("ck_point_entries_points_not_zero")),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_point_entries_brand_id_brands")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_point_entries_lot_id_point_lots")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.id"], name=op.f("fk_point_entries_member_id_members")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_entry_id"],
            ["point_entries.id"],
            name=op.f("fk_point_entries_reverses_entry_id_point_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_point_entries_store_id_stores")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_entries")),
        sa.UniqueConstraint(
            "brand_id", "idempotency_key", name=op.f("uq_point_entries_brand_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("point_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_point_entries_member_time", ["member_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_point_entries_reverses", ["reverses_entry_id"], unique=False)

    op.create_table(
        "point_draws",
        sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["point_entries.id"], name=op.f("fk_point_draws_entry_id_point_entries")
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["point_lots.id"], name=op.f("fk_point_draws_lot_id_point_lots")
        ),
        sa.PrimaryKeyConstraint("entry_id", "lot_id", name=op.f("pk_point_draws")),
    )


def downgrade() -> None:
    op.drop_table("point_draws")
    with op.batch_alter_table("point_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_point_entries_reverses")
        batch_op.drop_index("ix_point_entries_member_time")

    op.drop_table("point_entries")
    with op.batch_alter_table("point_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_point_lots_member_available")
        batch_op.drop_index("ix_point_lots_member_open")
        batch_op.drop_index(
            "ix_point_lots_expiring",
            postgresql_where=sa.text("remaining > 0"),
            sqlite_where=sa.text("remaining > 0"),
        )

    op.drop_table("point_lots")
    with op.batch_alter_table("member_identities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_member_identities_member_id"))

    op.drop_table("member_identities")
    op.drop_table("claims")
    op.drop_table("members")
    op.drop_table("stores")
    op.drop_table("brands")
