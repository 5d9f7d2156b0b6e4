"""The schema, as SQLAlchemy Core tables.

Every business row carries `brand_id` (the tenant) and every query filters on
it. The points ledger is `point_entries` (append-only) plus `point_draws` (which
lots each entry moved points in or out of); `point_lots` holds the derived,
updatable state (what is left of each credit and when it lapses), and
`members.points_balance` caches the sum so the till reads one row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import CursorResult

from loyalpos.db.types import UTCDateTime

# Integer primary keys that are BIGINT on PostgreSQL but the rowid alias on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

brands = Table(
    "brands",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(40), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="Asia/Shanghai"),
    Column("expiry_mode", String(16), nullable=False, server_default="none"),
    Column("expiry_months", Integer),
    Column("expiry_period", String(16)),
    Column("expiry_periods_later", Integer, nullable=False, server_default="0"),
    Column("birthday_extension_months", Integer, nullable=False, server_default="0"),
    Column("pending_days", Integer, nullable=False, server_default="0"),
    Column("allow_negative_balance", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime, nullable=False),
)

stores = Table(
    "stores",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("code", String(40), nullable=False),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("brand_id", "code"),
)

members = Table(
    "members",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("name", String(100), nullable=False),
    Column("birthday", Date),
    Column("referrer_id", Id, ForeignKey("members.id")),
    Column("card_no", String(16), nullable=False),
    Column("tier", String(40), nullable=False, server_default="normal"),
    Column("points_balance", BigInteger, nullable=False, server_default="0"),
    Column("birthday_extended_year", Integer),
    Column("store_id", Id, ForeignKey("stores.id")),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("brand_id", "phone"),
    UniqueConstraint("brand_id", "card_no"),
)

member_identities = Table(
    "member_identities",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False, index=True),
    Column("provider", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("value", String(128), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("brand_id", "provider", "kind", "value"),
)

point_lots = Table(
    "point_lots",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("original_points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("is_debt", Boolean, nullable=False, server_default=text("false")),
    Column("expires_on", Date),
    Column("available_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # What the expiry job took from this lot, and the member's `expire` entry
    # of that run (one entry per member and run; see ledger_repo.expire_due_lots).
    # No foreign key: it is written in the same statement that reads the entry,
    # and a checked reference would cost the job a trigger per lot.
    Column("expired_points", BigInteger, nullable=False, server_default="0"),
    Column("expired_entry_id", Id),
    CheckConstraint("is_debt OR remaining >= 0", name="remaining_not_negative"),
    CheckConstraint("NOT is_debt OR remaining <= 0", name="debt_not_positive"),
)
# Partial indexes: closed lots (remaining 0) are most rows and never read by
# bookings, so leaving them out keeps the indexes small and the expiry job's
# update from rewriting them.
_open = point_lots.c.remaining != 0
_positive = point_lots.c.remaining > 0
Index(
    "ix_point_lots_member_open",
    point_lots.c.member_id,
    point_lots.c.expires_on,
    point_lots.c.id,
    postgresql_where=_open,
    sqlite_where=_open,
)
Index(
    "ix_point_lots_member_available",
    point_lots.c.member_id,
    point_lots.c.available_at,
    postgresql_where=_positive,
    sqlite_where=_positive,
)
Index(
    "ix_point_lots_expiring",
    point_lots.c.expires_on,
    postgresql_where=point_lots.c.remaining > 0,
    sqlite_where=point_lots.c.remaining > 0,
)

point_entries = Table(
    "point_entries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id")),
    Column("kind", String(16), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("lot_id", Id, ForeignKey("point_lots.id")),
    Column("reverses_entry_id", Id, ForeignKey("point_entries.id")),
    Column("source_type", String(16), nullable=False),
    Column("source_ref", String(120)),
    Column("description", Text, nullable=False),
    Column("operator", String(80)),
    Column("reason", Text),
    Column("idempotency_key", String(120)),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("points <> 0", name="points_not_zero"),
)
Index("ix_point_entries_member_time", point_entries.c.member_id, point_entries.c.created_at)
_keyed = point_entries.c.idempotency_key.is_not(None)
Index(
    "uq_point_entries_idempotency_key",
    point_entries.c.brand_id,
    point_entries.c.idempotency_key,
    unique=True,
    postgresql_where=_keyed,
    sqlite_where=_keyed,
)
_reversal = point_entries.c.reverses_entry_id.is_not(None)
Index(
    "ix_point_entries_reverses",
    point_entries.c.reverses_entry_id,
    postgresql_where=_reversal,
    sqlite_where=_reversal,
)

point_draws = Table(
    "point_draws",
    metadata,
    Column("entry_id", Id, ForeignKey("point_entries.id"), primary_key=True),
    Column("lot_id", Id, ForeignKey("point_lots.id"), primary_key=True),
    # Negative: points taken out of the lot; positive: points put back in.
    Column("points", BigInteger, nullable=False),
)

claims = Table(
    "claims",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id")),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("order_ref", String(120), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("claimed_member_id", Id, ForeignKey("members.id")),
    Column("claimed_at", UTCDateTime),
    UniqueConstraint("brand_id", "order_ref"),
)

rule_sets = Table(
    "rule_sets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("document", Text, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("effective_from", UTCDateTime),
    Column("created_by", String(80)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_by", String(80)),
    Column("published_at", UTCDateTime),
    UniqueConstraint("brand_id", "version"),
    CheckConstraint("status IN ('draft', 'published')", name="status_known"),
)
Index("ix_rule_sets_in_force", rule_sets.c.brand_id, rule_sets.c.status, rule_sets.c.effective_from)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT produced."""
    key = result.inserted_primary_key
    assert key is not None and key[0] is not None
    return int(key[0])
