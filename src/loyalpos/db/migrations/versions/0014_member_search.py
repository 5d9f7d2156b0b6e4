"""members are found by name prefix; a member's campaign firings by member

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 22:40:00

The HQ console's member search (service/loyalty/members.search) finds members
by phone and card number (unique keys already) and by the start of the name:
`ix_members_brand_name` (brand_id, name), with text_pattern_ops on PostgreSQL
so that `name LIKE 'prefix%'` uses it whatever the database's collation. The
member 360 page lists a member's firings: `ix_campaign_firings_member`.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_members_brand_name",
        "members",
        ["brand_id", "name"],
        unique=False,
        postgresql_ops={"name": "text_pattern_ops"},
    )
    op.create_index(
        "ix_campaign_firings_member", "campaign_firings", ["member_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_campaign_firings_member", table_name="campaign_firings")
    op.drop_index("ix_members_brand_name", table_name="members")
