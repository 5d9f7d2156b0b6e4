"""the product catalogue: products per brand and the brand's scale-label layouts

Revises: 0007
Create Date: 2026-12-05 03:00:00

`products`: what the cashier page rings up by code (service/catalogue): sku
unique in the brand, the barcode unique in the brand when set (a partial unique
index), `price_fen` per piece or per kilogram (`unit` 'kg').

`scale_layouts`: how the brand's scale labels are read (domain/scanning.py
`ScaleLayout`: flags and a pattern of one letter per digit), a table of their
own rather than a JSON column on brands, so that the catalogue context owns it.

The revision id is a plain string named once, `revision` below (not repeated in
this docstring): the merge that puts this beside another 0008 renumbers it there
and sets `down_revision` to that one, and nothing else names it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalpos.db.types

revision = "0008_catalogue"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("brand_id", Id, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), server_default="", nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("barcode", sa.String(length=64), nullable=True),
        sa.Column("unit", sa.String(length=8), server_default="piece", nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("updated_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("unit IN ('piece', 'kg')", name=op.f("ck_products_unit_known")),
        sa.CheckConstraint("price_fen >= 0", name=op.f("ck_products_price_not_negative")),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_products_brand_id_brands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("brand_id", "sku", name=op.f("uq_products_brand_id_sku")),
    )
    op.create_index(
        "uq_products_brand_barcode",
        "products",
        ["brand_id", "barcode"],
        unique=True,
        postgresql_where=sa.text("barcode IS NOT NULL"),
        sqlite_where=sa.text("barcode IS NOT NULL"),
    )
    op.create_index("ix_products_brand_name", "products", ["brand_id", "name"], unique=False)
    op.create_table(
        "scale_layouts",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("brand_id", Id, nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("flags", sa.String(length=200), nullable=False),
        sa.Column("pattern", sa.String(length=18), nullable=False),
        sa.Column("updated_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_scale_layouts_brand_id_brands")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scale_layouts")),
        sa.UniqueConstraint("brand_id", "name", name=op.f("uq_scale_layouts_brand_id_name")),
    )


def downgrade() -> None:
    op.drop_table("scale_layouts")
    op.drop_index("ix_products_brand_name", table_name="products")
    op.drop_index(
        "uq_products_brand_barcode",
        table_name="products",
        postgresql_where=sa.text("barcode IS NOT NULL"),
        sqlite_where=sa.text("barcode IS NOT NULL"),
    )
    op.drop_table("products")
