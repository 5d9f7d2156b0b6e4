"""orders are searched across a brand's stores (the HQ console)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 22:40:00

The console's order search lists a brand's orders newest first and finds one by
its number without naming the store: `ix_orders_brand_time` (brand_id,
ordered_at) and `ix_orders_brand_order_no` (brand_id, order_no). By store and by
member the existing (store_id, ordered_at) and (member_id, ordered_at) serve.

"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_orders_brand_time", "orders", ["brand_id", "ordered_at"])
    op.create_index("ix_orders_brand_order_no", "orders", ["brand_id", "order_no"])


def downgrade() -> None:
    op.drop_index("ix_orders_brand_order_no", table_name="orders")
    op.drop_index("ix_orders_brand_time", table_name="orders")
