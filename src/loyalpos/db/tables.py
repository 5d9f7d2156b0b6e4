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
    Column("city", String(64)),  # 城市, free text (migration 0013)
    Column("format", String(32)),  # 业态: a code of service/base/brands.STORE_FORMATS
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
    # Growth (成长值): what the member has paid, net of refunds; moves the tier.
    Column("spent_fen", BigInteger, nullable=False, server_default="0"),
    Column("orders_count", Integer, nullable=False, server_default="0"),
    Column("last_order_at", UTCDateTime),
    UniqueConstraint("brand_id", "phone"),
    UniqueConstraint("brand_id", "card_no"),
)
# The console's search by name prefix (service/loyalty/members.search): on
# PostgreSQL text_pattern_ops, so that LIKE 'prefix%' whatever the collation.
Index(
    "ix_members_brand_name",
    members.c.brand_id,
    members.c.name,
    postgresql_ops={"name": "text_pattern_ops"},
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


# --- Checkout (issue 4) -----------------------------------------------------

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    # Set for a cashier key (one store's orders); NULL for an HQ key.
    Column("store_id", Id, ForeignKey("stores.id")),
    Column("scope", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    # The key's public first part, how it is found; only the hash of the whole is kept.
    Column("prefix", String(24), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    CheckConstraint("scope IN ('cashier', 'hq')", name="scope_known"),
    CheckConstraint("(scope = 'cashier') = (store_id IS NOT NULL)", name="cashier_has_store"),
)

# -- accounts (账号): HQ users, their sessions and sign-in attempts; store staff ----

hq_users = Table(
    "hq_users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    # Lower case (domain/accounts.normal_login), unique within the brand.
    Column("login", String(40), nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    # argon2id, in the PHC string format (parameters and salt included).
    Column("password_hash", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    UniqueConstraint("brand_id", "login"),
    CheckConstraint("role IN ('admin', 'operator', 'analyst', 'store_manager')", name="role_known"),
)

# The stores a store manager looks after (none for the other roles).
hq_user_stores = Table(
    "hq_user_stores",
    metadata,
    Column("user_id", Id, ForeignKey("hq_users.id"), primary_key=True),
    Column("store_id", Id, ForeignKey("stores.id"), primary_key=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
)

hq_sessions = Table(
    "hq_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("user_id", Id, ForeignKey("hq_users.id"), nullable=False, index=True),
    # SHA-256 of the session token: the token itself is only in the browser.
    Column("token_hash", String(64), nullable=False, unique=True),
    # The session's CSRF token, sent back by every state-changing form and fetch.
    Column("csrf_token", String(64), nullable=False),
    Column("address", String(64)),
    Column("created_at", UTCDateTime, nullable=False),
    # Idle timeout: settings.session_idle_minutes after this; refreshed at most
    # once a minute, so a busy page is not a write per request.
    Column("last_seen_at", UTCDateTime, nullable=False),
    # The absolute end, however busy the session is.
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    # The login name tried (lower case, cut to 40), whether or not it exists.
    Column("login", String(40), nullable=False),
    Column("address", String(64)),
    Column("at", UTCDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),
    CheckConstraint("outcome IN ('ok', 'failed', 'throttled')", name="outcome_known"),
)
Index(
    "ix_login_attempts_login",
    login_attempts.c.brand_id,
    login_attempts.c.login,
    login_attempts.c.at,
)
Index(
    "ix_login_attempts_address",
    login_attempts.c.brand_id,
    login_attempts.c.address,
    login_attempts.c.at,
)

store_staff = Table(
    "store_staff",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    # 工号, what the cashier types at the till with the PIN.
    Column("number", String(16), nullable=False),
    Column("name", String(100), nullable=False),
    Column("pin_hash", String(200), nullable=False),
    # Wrong PINs in a row, and the lockout they led to (domain/accounts.py).
    Column("failed_pins", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
    UniqueConstraint("store_id", "number"),
)

# A till's signed-in cashier (service/admin/staff.py): the same rules as
# hq_sessions, per staff member and store.
staff_sessions = Table(
    "staff_sessions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("staff_id", Id, ForeignKey("store_staff.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
    # The till the cashier signed in at (what the page sends); NULL before 0012.
    Column("terminal", String(32)),
)

coupons = Table(
    "coupons",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("template", String(64), nullable=False),
    # issued -> locked (a quote reserved it) -> used -> returned (by a refund);
    # expired and voided end it. A lock past `locked_until` is free again.
    Column("state", String(16), nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("valid_from", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("source_type", String(16), nullable=False),
    Column("source_ref", String(120)),
    Column("reservation_id", Id),
    Column("locked_until", UTCDateTime),
    Column("order_id", Id),
    Column("used_at", UTCDateTime),
    CheckConstraint(
        "state IN ('issued', 'locked', 'used', 'returned', 'expired', 'voided')",
        name="state_known",
    ),
)
Index("ix_coupons_member_state", coupons.c.member_id, coupons.c.state)

coupon_events = Table(
    "coupon_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("coupon_id", Id, ForeignKey("coupons.id"), nullable=False, index=True),
    Column("event", String(16), nullable=False),
    Column("order_id", Id),
    Column("refund_id", Id),
    Column("store_id", Id, ForeignKey("stores.id")),
    Column("detail", Text, nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("token", String(40), nullable=False, unique=True),
    Column("points", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("released_at", UTCDateTime),
)
_live = reservations.c.released_at.is_(None)
Index(
    "ix_reservations_member_live",
    reservations.c.member_id,
    reservations.c.expires_at,
    postgresql_where=_live,
    sqlite_where=_live,
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("order_no", String(64), nullable=False),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("status", String(24), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("points_redeemed", BigInteger, nullable=False),
    Column("points_offset", BigInteger, nullable=False),
    Column("rounding", BigInteger, nullable=False),
    Column("payable", BigInteger, nullable=False),
    Column("points_earned", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    Column("cashier", String(64), nullable=False),
    Column("terminal", String(64), nullable=False),
    Column("payer", String(160)),
    Column("late", Boolean, nullable=False, server_default=text("false")),
    Column("exceptions", Text, nullable=False, server_default="[]"),
    # The earning rules behind points_earned, as the receipt shows them (JSON);
    # NULL for orders booked before they were kept.
    Column("points_rules", Text),
    Column("claim_token", String(16)),
    Column("earn_entry_id", Id),
    Column("spend_entry_id", Id),
    # The answer the POS got, replayed verbatim on a repeated call.
    Column("response", Text, nullable=False),
    Column("ordered_at", UTCDateTime, nullable=False),
    Column("booked_at", UTCDateTime, nullable=False),
    UniqueConstraint("store_id", "order_no"),
    CheckConstraint("status IN ('paid', 'partially_refunded', 'refunded')", name="status_known"),
)
Index("ix_orders_store_time", orders.c.store_id, orders.c.ordered_at)
Index("ix_orders_member_time", orders.c.member_id, orders.c.ordered_at)
# The console's order search across a brand's stores (migration 0015).
Index("ix_orders_brand_time", orders.c.brand_id, orders.c.ordered_at)
Index("ix_orders_brand_order_no", orders.c.brand_id, orders.c.order_no)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", Id, ForeignKey("orders.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(64), nullable=False),
    Column("category", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("qty", Integer, nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("discount", BigInteger, nullable=False),
    Column("points_offset", BigInteger, nullable=False),
    Column("payable", BigInteger, nullable=False),
    Column("points_earned", BigInteger, nullable=False),
    Column("points_redeemed", BigInteger, nullable=False),
    Column("refunded_qty", Integer, nullable=False, server_default="0"),
)

order_benefits = Table(
    "order_benefits",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False, index=True),
    Column("coupon_id", Id, ForeignKey("coupons.id")),
    Column("benefit", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("saving", BigInteger, nullable=False),
)

order_tenders = Table(
    "order_tenders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False, index=True),
    Column("method", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("reference", String(128)),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False, index=True),
    Column("refund_no", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("deduction", BigInteger, nullable=False),
    Column("points_reversed", BigInteger, nullable=False),
    Column("points_returned", BigInteger, nullable=False),
    Column("cashier", String(64), nullable=False),
    # The till the refund was made at; NULL for refunds booked before it was kept
    # or sent without one.
    Column("terminal", String(64)),
    Column("response", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("store_id", "refund_no"),
)

refund_lines = Table(
    "refund_lines",
    metadata,
    Column("refund_id", Id, ForeignKey("refunds.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("qty", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("points_reversed", BigInteger, nullable=False),
    Column("points_returned", BigInteger, nullable=False),
)

held_carts = Table(
    "held_carts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("reason", String(40), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    # The parked request (cart, member, overrides) as JSON, resumed as it was.
    Column("payload", Text, nullable=False),
    Column("cashier", String(64), nullable=False),
    Column("terminal", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    CheckConstraint("status IN ('held', 'resumed', 'cancelled', 'expired')", name="status_known"),
)
Index("ix_held_carts_store_status", held_carts.c.store_id, held_carts.c.status)

# What a till overrode (service/till/till_events.py): a sale without the member
# identification the brand requires, an unknown item at a typed price, benefits
# declined, another coupon forced. Append-only; counted by reports per store and
# local day. `detail` is a small JSON object as text.
till_events = Table(
    "till_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("store_id", Id, ForeignKey("stores.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("staff_id", Id, ForeignKey("store_staff.id")),
    Column("staff_number", String(64), nullable=False),
    Column("terminal", String(64), nullable=False),
    Column("order_no", String(64)),
    Column("reason", Text, nullable=False, server_default=""),
    Column("detail", Text, nullable=False, server_default="{}"),
    Column("created_at", UTCDateTime, nullable=False),
)
Index(
    "ix_till_events_report",
    till_events.c.brand_id,
    till_events.c.store_id,
    till_events.c.created_at,
)

# The brand's product catalogue (商品), what the cashier page rings up by code.
# `price_fen` is per piece, or per kilogram when `unit` is 'kg' (weighed goods,
# priced by a scale label's weight); the barcode is unique in the brand when set.
products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False, server_default=""),
    Column("price_fen", BigInteger, nullable=False),
    Column("barcode", String(64)),
    Column("unit", String(8), nullable=False, server_default="piece"),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("brand_id", "sku"),
    CheckConstraint("unit IN ('piece', 'kg')", name="unit_known"),
    CheckConstraint("price_fen >= 0", name="price_not_negative"),
)
_with_barcode = products.c.barcode.is_not(None)
Index(
    "uq_products_brand_barcode",
    products.c.brand_id,
    products.c.barcode,
    unique=True,
    postgresql_where=_with_barcode,
    sqlite_where=_with_barcode,
)
Index("ix_products_brand_name", products.c.brand_id, products.c.name)

# How the brand's scale labels are read (domain/scanning.py `ScaleLayout`): a
# small table rather than a column of brands, so the catalogue context owns it.
scale_layouts = Table(
    "scale_layouts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("name", String(40), nullable=False),
    # The flags, comma-separated ("21,22"), and one letter per digit ("FFIIIIIVPPPPC").
    Column("flags", String(200), nullable=False),
    Column("pattern", String(18), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("brand_id", "name"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("event_type", String(40), nullable=False),
    # The event's own key (order id, member id ...), part of its payload too.
    Column("subject", String(120), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("processed_at", UTCDateTime),
)
_unprocessed = outbox.c.processed_at.is_(None)
Index(
    "ix_outbox_unprocessed",
    outbox.c.id,
    postgresql_where=_unprocessed,
    sqlite_where=_unprocessed,
)

webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("url", String(500), nullable=False),
    # JSON list of event types; ["*"] for all.
    Column("event_types", Text, nullable=False),
    Column("secret", String(80), nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UTCDateTime, nullable=False),
    # The highest outbox id visible when it was made: it receives only events
    # with a higher id (service/events/webhooks.py `subscribe`).
    Column("after_event_id", Id, nullable=False, server_default="0"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("subscription_id", Id, ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("outbox_id", Id, ForeignKey("outbox.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("subscription_id", "outbox_id"),
    CheckConstraint("status IN ('pending', 'delivered', 'dead')", name="status_known"),
)
Index(
    "ix_webhook_deliveries_due", webhook_deliveries.c.status, webhook_deliveries.c.next_attempt_at
)

campaign_firings = Table(
    "campaign_firings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("campaign", String(64), nullable=False),
    # What it fired for (the order, or the member for once-per-member triggers).
    Column("event_key", String(120), nullable=False),
    Column("member_id", Id, ForeignKey("members.id")),
    Column("created_at", UTCDateTime, nullable=False),
    # fired -> revoked (its order was fully refunded later); skipped: the order
    # was fully refunded before the worker came to it, nothing was given.
    Column("status", String(16), nullable=False, server_default="fired"),
    # The order an order trigger fired for; what the firing gave (JSON list of
    # coupon ids, the points entry), so that a refund can take back exactly that.
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("coupon_ids", Text),
    Column("points_entry_id", Id, ForeignKey("point_entries.id")),
    # Why it was skipped or what was revoked (JSON), and when.
    Column("detail", Text),
    Column("revoked_at", UTCDateTime),
    UniqueConstraint("brand_id", "campaign", "event_key"),
    CheckConstraint("status IN ('fired', 'skipped', 'revoked')", name="status_known"),
)
# A member's firings, for the member 360 page (migration 0014).
Index("ix_campaign_firings_member", campaign_firings.c.member_id, campaign_firings.c.id)
_for_order = campaign_firings.c.order_id.is_not(None)
Index(
    "ix_campaign_firings_order",
    campaign_firings.c.order_id,
    postgresql_where=_for_order,
    sqlite_where=_for_order,
)

member_tags = Table(
    "member_tags",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("brand_id", Id, ForeignKey("brands.id"), nullable=False),
    Column("member_id", Id, ForeignKey("members.id"), nullable=False),
    Column("tag", String(40), nullable=False),
    Column("source", String(120), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("member_id", "tag"),
)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key an INSERT produced."""
    key = result.inserted_primary_key
    assert key is not None and key[0] is not None
    return int(key[0])
