"""events hardening: subscriptions start at the outbox's high-water mark; campaign
firings record their order, what they gave, and a revocation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:50:00

A webhook subscription receives only events with an outbox id above
`after_event_id` (the highest id when it was made). Existing subscriptions get
the highest id of the events still unprocessed that were written before them,
so the backlog waiting at upgrade time is judged by the same rule; 0 when none
is (everything still queued is newer than them).

A campaign firing records its status (fired / skipped / revoked), the order an
order trigger fired for, the coupons and points entry it gave, and what a full
refund of the order took back. Firings made before this revision have no order
or gifts recorded and are never revoked.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import loyalpos.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("after_event_id", Id, nullable=False, server_default="0"))
    op.execute(
        """
        UPDATE webhook_subscriptions SET after_event_id = COALESCE(
            (SELECT MAX(o.id) FROM outbox o
             WHERE o.processed_at IS NULL
               AND o.brand_id = webhook_subscriptions.brand_id
               AND o.created_at < webhook_subscriptions.created_at),
            0)
        """
    )

    with op.batch_alter_table("campaign_firings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), nullable=False, server_default="fired")
        )
        batch_op.add_column(sa.Column("order_id", Id, nullable=True))
        batch_op.add_column(sa.Column("coupon_ids", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("points_entry_id", Id, nullable=True))
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("revoked_at", loyalpos.db.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaign_firings_order_id_orders"), "orders", ["order_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_campaign_firings_points_entry_id_point_entries"),
            "point_entries",
            ["points_entry_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_campaign_firings_status_known"),
            "status IN ('fired', 'skipped', 'revoked')",
        )
        batch_op.create_index(
            "ix_campaign_firings_order",
            ["order_id"],
            unique=False,
            postgresql_where=sa.text("order_id IS NOT NULL"),
            sqlite_where=sa.text("order_id IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("campaign_firings", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_campaign_firings_order",
            postgresql_where=sa.text("order_id IS NOT NULL"),
            sqlite_where=sa.text("order_id IS NOT NULL"),
        )
        batch_op.drop_constraint(batch_op.f("ck_campaign_firings_status_known"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_campaign_firings_points_entry_id_point_entries"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_campaign_firings_order_id_orders"), type_="foreignkey"
        )
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("detail")
        batch_op.drop_column("points_entry_id")
        batch_op.drop_column("coupon_ids")
        batch_op.drop_column("order_id")
        batch_op.drop_column("status")
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("after_event_id")
