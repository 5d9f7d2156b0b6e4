"""stores have a city and a format (业态)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 22:30:00

`stores.city` (free text, e.g. 上海) and `stores.format` (a code of
service/base/brands.py STORE_FORMATS: mall, street, community, office, transit,
other), kept by the HQ console and read by the reports to come. NULL until set.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("city", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("format", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_column("format")
        batch_op.drop_column("city")
