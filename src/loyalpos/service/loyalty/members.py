"""Members (会员): registration, look-up by every key a till may hold, identities,
member codes, and "buy first, join later" claims (先消费后建档)."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update
from sqlalchemy import text as text_clause
from sqlalchemy.exc import IntegrityError

from loyalpos.db.engine import write_many
from loyalpos.db.ledger_repo import lock_member
from loyalpos.db.tables import claims, inserted_id, member_identities, members
from loyalpos.domain import member_code
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.ledger import EntryKind
from loyalpos.domain.privacy import mask_phone
from loyalpos.service.base.brands import check_store, load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, emit
from loyalpos.service.loyalty.phones import normalise_phone
from loyalpos.service.loyalty.points import Source, announce_entry, credit

log = logging.getLogger(__name__)


class Provider(StrEnum):
    WECHAT = "wechat"
    ALIPAY = "alipay"


class IdentityKind(StrEnum):
    OPENID = "openid"
    UNIONID = "unionid"
    BUYER_ID = "buyer_id"


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    brand_id: int
    phone: str
    name: str
    birthday: date | None
    card_no: str
    tier: str
    points_balance: int
    referrer_id: int | None
    store_id: int | None
    created_at: datetime

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)


@dataclass(frozen=True, slots=True)
class Identity:
    provider: str
    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class ClaimResult:
    member_id: int
    points: int
    order_ref: str
    entry_id: int


def member_from_row(row: Any) -> Member:
    return Member(
        row.id,
        row.brand_id,
        row.phone,
        row.name,
        row.birthday,
        row.card_no,
        row.tier,
        int(row.points_balance),
        row.referrer_id,
        row.store_id,
        row.created_at,
    )


def _by(conn: Connection, brand_id: int, *where: Any) -> Member | None:
    row = conn.execute(select(members).where(members.c.brand_id == brand_id, *where)).first()
    return member_from_row(row) if row else None


def _not_found(what: str) -> NotFound:
    return NotFound(f"未找到会员 (no member with this {what})", code="member_not_found", key=what)


def load_member(conn: Connection, brand_id: int, member_id: int) -> Member:
    found = _by(conn, brand_id, members.c.id == member_id)
    if found is None:
        raise _not_found("id")
    return found


def _new_card_no(conn: Connection, brand_id: int) -> str:
    for _ in range(20):
        card = member_code.card_number_from(
            "8" + "".join(secrets.choice("0123456789") for _ in range(14))
        )
        if _by(conn, brand_id, members.c.card_no == card) is None:
            return card
    raise RuntimeError("could not find a free card number")


def _check_birthday(birthday: date | None, today: date) -> None:
    if birthday is not None and not (date(1900, 1, 1) <= birthday <= today):
        raise InvalidInput("生日不正确 (birthday is not a plausible date)", field="birthday")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput("姓名需为 1-100 个字符 (name must be 1-100 characters)", field="name")
    return name


def insert_member(
    conn: Connection,
    brand_id: int,
    *,
    phone: str,
    name: str,
    now: datetime,
    birthday: date | None = None,
    referrer_id: int | None = None,
    store_id: int | None = None,
    tier: str = "normal",
    card_no: str | None = None,
) -> Member:
    """Insert a member inside an open transaction (phone already normalised)."""
    if _by(conn, brand_id, members.c.phone == phone) is not None:
        raise Conflict(
            f"手机号 {mask_phone(phone)} 已是会员 (already a member)",
            code="member_exists",
            phone=mask_phone(phone),
        )
    if referrer_id is not None:
        load_member(conn, brand_id, referrer_id)
    if card_no is not None:
        if not member_code.is_card_number(card_no):
            raise InvalidInput("卡号校验失败 (card number fails its check digit)", field="card_no")
        if _by(conn, brand_id, members.c.card_no == card_no) is not None:
            raise Conflict("卡号已被使用 (card number already in use)", code="card_exists")
    check_store(conn, brand_id, store_id)
    member_id = inserted_id(
        conn.execute(
            insert(members).values(
                brand_id=brand_id,
                phone=phone,
                name=_check_name(name),
                birthday=birthday,
                referrer_id=referrer_id,
                card_no=card_no or _new_card_no(conn, brand_id),
                tier=tier,
                points_balance=0,
                store_id=store_id,
                created_at=now,
            )
        )
    )
    log.info("member %s registered in brand %s", member_id, brand_id)
    emit(
        conn,
        brand_id,
        EventType.MEMBER_CREATED,
        f"member:{member_id}",
        {"member_id": member_id, "store_id": store_id, "tier": tier},
        now,
    )
    return load_member(conn, brand_id, member_id)


def register(
    ctx: Context,
    brand_id: int,
    *,
    phone: str,
    name: str,
    birthday: date | None = None,
    referrer_id: int | None = None,
    store_id: int | None = None,
    identities: list[Identity] | None = None,
    claim_token: str | None = None,
    now: datetime | None = None,
) -> Member:
    """Register a member (会员注册); binds identities and an order claim atomically."""
    at = ctx.now(now)
    normalised = normalise_phone(phone, ctx.settings.default_region)

    def run(conn: Connection) -> Member:
        brand = load_brand(conn, brand_id)
        _check_birthday(birthday, brand.local_date(at))
        member = insert_member(
            conn,
            brand_id,
            phone=normalised,
            name=name,
            now=at,
            birthday=birthday,
            referrer_id=referrer_id,
            store_id=store_id,
        )
        for identity in identities or []:
            _bind(conn, brand_id, member.id, identity, at)
        if claim_token:
            _claim(conn, ctx, brand_id, member.id, claim_token, at)
        return load_member(conn, brand_id, member.id)

    try:
        return ctx.run(run)
    except IntegrityError:
        raise Conflict(
            f"手机号 {mask_phone(normalised)} 已是会员 (already a member)", code="member_exists"
        ) from None


def get(ctx: Context, brand_id: int, member_id: int) -> Member:
    with ctx.transaction(read_only=True) as conn:
        return load_member(conn, brand_id, member_id)


def by_phone(ctx: Context, brand_id: int, phone: str) -> Member:
    normalised = normalise_phone(phone, ctx.settings.default_region)
    with ctx.transaction(read_only=True) as conn:
        found = _by(conn, brand_id, members.c.phone == normalised)
    if found is None:
        raise _not_found("phone")
    return found


def checked_card_no(card_no: str) -> str:
    """A typed card number, trimmed, or a refusal when its check digit fails."""
    card_no = card_no.strip()
    if not member_code.is_card_number(card_no):
        raise InvalidInput(
            "卡号有误，请核对 (card number mistyped: check digit fails)",
            code="card_number_invalid",
            field="card_no",
        )
    return card_no


def by_card(ctx: Context, brand_id: int, card_no: str) -> Member:
    card_no = checked_card_no(card_no)
    with ctx.transaction(read_only=True) as conn:
        found = _by(conn, brand_id, members.c.card_no == card_no)
    if found is None:
        raise _not_found("card number")
    return found


def member_id_by_identity(conn: Connection, brand_id: int, identity: Identity) -> int | None:
    """The member an external id (openid, unionid, buyer id) is bound to, if any."""
    row = conn.execute(
        select(member_identities.c.member_id).where(
            member_identities.c.brand_id == brand_id,
            member_identities.c.provider == identity.provider,
            member_identities.c.kind == identity.kind,
            member_identities.c.value == identity.value,
        )
    ).first()
    return int(row.member_id) if row else None


def by_identity(ctx: Context, brand_id: int, identity: Identity) -> Member:
    with ctx.transaction(read_only=True) as conn:
        member_id = member_id_by_identity(conn, brand_id, identity)
        if member_id is None:
            raise _not_found(f"{identity.provider} {identity.kind}")
        return load_member(conn, brand_id, member_id)


def identities_of(ctx: Context, brand_id: int, member_id: int) -> list[Identity]:
    with ctx.transaction(read_only=True) as conn:
        load_member(conn, brand_id, member_id)
        rows = conn.execute(
            select(member_identities)
            .where(
                member_identities.c.brand_id == brand_id,
                member_identities.c.member_id == member_id,
            )
            .order_by(member_identities.c.id)
        )
        return [Identity(r.provider, r.kind, r.value) for r in rows]


def _check_identity(identity: Identity) -> None:
    if identity.provider not in set(Provider) or identity.kind not in set(IdentityKind):
        raise InvalidInput(
            "unknown identity provider or kind",
            field="provider",
            providers=[p.value for p in Provider],
            kinds=[k.value for k in IdentityKind],
        )
    if not identity.value or len(identity.value) > 128:
        raise InvalidInput("identity value must be 1-128 characters", field="value")


def _bind(
    conn: Connection, brand_id: int, member_id: int, identity: Identity, now: datetime
) -> None:
    _check_identity(identity)
    existing = conn.execute(
        select(member_identities.c.member_id).where(
            member_identities.c.brand_id == brand_id,
            member_identities.c.provider == identity.provider,
            member_identities.c.kind == identity.kind,
            member_identities.c.value == identity.value,
        )
    ).first()
    if existing is not None:
        if existing.member_id == member_id:
            return
        raise Conflict(
            "该账号已绑定其他会员 (this account is bound to another member)", code="identity_taken"
        )
    conn.execute(
        insert(member_identities).values(
            brand_id=brand_id,
            member_id=member_id,
            provider=identity.provider,
            kind=identity.kind,
            value=identity.value,
            created_at=now,
        )
    )


def bind_identity(
    ctx: Context,
    brand_id: int,
    member_id: int,
    identity: Identity,
    *,
    claim_token: str | None = None,
    now: datetime | None = None,
) -> Member:
    """Bind a WeChat / Alipay identity (a member may have several)."""
    at = ctx.now(now)

    def run(conn: Connection) -> Member:
        load_member(conn, brand_id, member_id)
        _bind(conn, brand_id, member_id, identity, at)
        if claim_token:
            _claim(conn, ctx, brand_id, member_id, claim_token, at)
        return load_member(conn, brand_id, member_id)

    return ctx.run(run)


# --- member codes ---------------------------------------------------------


def issue_code(
    ctx: Context, brand_id: int, member_id: int, *, now: datetime | None = None
) -> tuple[str, int]:
    """A fresh dynamic member code and the seconds it stays valid."""
    get(ctx, brand_id, member_id)
    key = member_code.brand_key(ctx.settings.secret, brand_id)
    issued = int(ctx.now(now).timestamp())
    return member_code.issue(key, member_id, issued), ctx.settings.member_code_ttl_seconds


def member_id_from_code(ctx: Context, brand_id: int, code: str, now: datetime) -> int:
    """The member id a dynamic code carries, verified against the brand's key at `now`."""
    key = member_code.brand_key(ctx.settings.secret, brand_id)
    return member_code.verify(key, code, int(now.timestamp()), ctx.settings.member_code_ttl_seconds)


def by_code(ctx: Context, brand_id: int, code: str, *, now: datetime | None = None) -> Member:
    """The member behind a scanned dynamic code, or a clear reason it is refused."""
    member_id = member_id_from_code(ctx, brand_id, code, ctx.now(now))
    try:
        return get(ctx, brand_id, member_id)
    except NotFound:
        raise _not_found("member code") from None


# --- buy first, join later (先消费后建档) --------------------------------


def _token_hash(brand_id: int, token: str) -> str:
    normal = token.strip().upper().replace("-", "").replace(" ", "")
    return hashlib.sha256(f"{brand_id}:{normal}".encode()).hexdigest()


def create_claim(
    ctx: Context,
    brand_id: int,
    *,
    order_ref: str,
    points: int,
    store_id: int | None = None,
    description: str = "",
    now: datetime | None = None,
) -> str:
    """A claim token for an anonymous order's points, printed on the receipt.

    Only its hash is kept: the receipt is the bearer instrument.
    """
    at = ctx.now(now)
    try:
        with ctx.transaction() as conn:
            load_brand(conn, brand_id)
            check_store(conn, brand_id, store_id)
            return insert_claim(
                conn,
                brand_id,
                order_ref=order_ref,
                points=points,
                store_id=store_id,
                description=description,
                now=at,
                valid_days=ctx.settings.claim_valid_days,
            )
    except IntegrityError:
        raise Conflict(f"order {order_ref} already has a claim", code="claim_exists") from None


def new_claim_token() -> str:
    """A claim token as the receipt shows it: 8 characters in two groups of 4."""
    raw = secrets.token_bytes(8)
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    token = "".join(alphabet[b % len(alphabet)] for b in raw)
    return token[:4] + "-" + token[4:]


# `inline`: no RETURNING of the new id (not read), so that a confirm can send it
# with the rest of its writes (db.engine.deferred).
_INSERT_CLAIM = insert(claims).inline()


def insert_claim(
    conn: Connection,
    brand_id: int,
    *,
    order_ref: str,
    points: int,
    store_id: int | None,
    description: str,
    now: datetime,
    valid_days: int,
    token: str | None = None,
) -> str:
    """Create a claim in an open transaction; returns the token (shown once):
    `token` if given (from `new_claim_token`), else a new one. Reads no result."""
    if points <= 0:
        raise InvalidInput("claim points must be positive", field="points")
    token = token or new_claim_token()
    write_many(
        conn,
        _INSERT_CLAIM,
        [
            {
                "brand_id": brand_id,
                "store_id": store_id,
                "token_hash": _token_hash(brand_id, token),
                "order_ref": order_ref,
                "points": points,
                "description": description
                or f"订单 {order_ref} 补积分 (points of order {order_ref})",
                "created_at": now,
                "expires_at": now + timedelta(days=valid_days),
            }
        ],
    )
    return token


def _claim(
    conn: Connection, ctx: Context, brand_id: int, member_id: int, token: str, now: datetime
) -> ClaimResult:
    row = conn.execute(
        select(claims).where(
            claims.c.brand_id == brand_id, claims.c.token_hash == _token_hash(brand_id, token)
        )
    ).first()
    if row is None:
        raise NotFound("小票积分码无效 (claim code not found)", code="claim_not_found")
    if row.expires_at <= now:
        raise Conflict(
            "小票积分码已过期 (claim code expired)",
            code="claim_expired",
            expired_at=row.expires_at.isoformat(),
        )
    taken = conn.execute(
        update(claims)
        .where(claims.c.id == row.id, claims.c.claimed_member_id.is_(None))
        .values(claimed_member_id=member_id, claimed_at=now)
    ).rowcount
    if taken != 1:
        raise Conflict(
            "小票积分已领取 (these points were already claimed)", code="claim_already_used"
        )
    lock_member(conn, brand_id, member_id)
    brand = load_brand(conn, brand_id)
    entry_id = credit(
        conn,
        brand,
        member_id,
        int(row.points),
        EntryKind.EARN,
        Source("claim", row.order_ref, row.description, store_id=row.store_id),
        now,
    )
    announce_entry(conn, brand_id, entry_id)
    return ClaimResult(member_id, int(row.points), row.order_ref, entry_id)


def claim(
    ctx: Context, brand_id: int, member_id: int, token: str, *, now: datetime | None = None
) -> ClaimResult:
    """An existing member takes an anonymous order's points, once."""
    at = ctx.now(now)

    def run(conn: Connection) -> ClaimResult:
        load_member(conn, brand_id, member_id)
        return _claim(conn, ctx, brand_id, member_id, token, at)

    return ctx.run(run)


# --- HQ search (the console's member search) ---------------------------------------

SEARCH_LIMIT = 50


def _name_prefix(conn: Connection, prefix: str) -> Any:
    """`name` starts with `prefix`, as the index ix_members_brand_name can answer:
    LIKE on PostgreSQL (a text_pattern_ops index), a binary range on SQLite."""
    if conn.dialect.name == "postgresql":
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return members.c.name.like(escaped + "%", escape="\\")
    return and_(members.c.name >= prefix, members.c.name < prefix + "\U0010ffff")


def search(ctx: Context, brand_id: int, text: str, *, limit: int = SEARCH_LIMIT) -> list[Member]:
    """Members whose phone or card number is `text` exactly, then those whose name
    starts with it, at most `limit` (1 to 200); every read is an indexed one."""
    if not 1 <= limit <= 200:
        raise InvalidInput("limit must be between 1 and 200", field="limit")
    text = text.strip()[:100]
    if not text:
        return []
    keys: list[Any] = []
    try:
        keys.append(members.c.phone == normalise_phone(text, ctx.settings.default_region))
    except InvalidInput:
        pass
    if member_code.is_card_number(text):
        keys.append(members.c.card_no == text)
    found: dict[int, Member] = {}
    with ctx.transaction(read_only=True) as conn:
        for key in keys:
            m = _by(conn, brand_id, key)
            if m is not None:
                found.setdefault(m.id, m)
        query = select(members).where(members.c.brand_id == brand_id, _name_prefix(conn, text))
        if conn.dialect.name == "postgresql":
            ordered = query.order_by(text_clause("name USING ~<~"), members.c.id)
        else:
            ordered = query.order_by(members.c.name, members.c.id)
        for row in conn.execute(ordered.limit(limit)):
            found.setdefault(int(row.id), member_from_row(row))
    return list(found.values())[:limit]


@dataclass(frozen=True, slots=True)
class Standing:
    """A member's tier and growth (成长值) and the way to the next tier, as the
    rules in force count it: for the member 360 page."""

    tier: str
    tier_name: str
    spent_fen: int
    orders_count: int
    last_order_at: datetime | None
    next_tier: str | None  # None: at the top
    next_tier_name: str | None
    next_min_spent_fen: int | None
    shortfall_fen: int | None


def standing(
    ctx: Context, brand_id: int, member_id: int, *, now: datetime | None = None
) -> Standing:
    from loyalpos.domain.checkout import Tier, progress
    from loyalpos.service.rulebook.rulesets import rules_at

    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        row = conn.execute(
            select(
                members.c.tier, members.c.spent_fen, members.c.orders_count, members.c.last_order_at
            ).where(members.c.brand_id == brand_id, members.c.id == member_id)
        ).first()
        if row is None:
            raise _not_found("id")
        rule_tiers = rules_at(conn, ctx, brand_id, at).document.tiers  # none before rules
    tiers = [Tier(t.id, t.name or t.id, t.min_spent_fen) for t in rule_tiers]
    names = {t.id: t.name for t in tiers}
    spent = int(row.spent_fen)
    step = progress(tiers, spent)
    minimum = {t.id: t.min_spent for t in tiers}
    return Standing(
        tier=str(row.tier),
        tier_name=names.get(str(row.tier), str(row.tier)),
        spent_fen=spent,
        orders_count=int(row.orders_count),
        last_order_at=row.last_order_at,
        next_tier=None if step is None else step.next_tier,
        next_tier_name=None if step is None else names.get(step.next_tier, step.next_tier),
        next_min_spent_fen=None if step is None else minimum.get(step.next_tier),
        shortfall_fen=None if step is None else step.shortfall,
    )


def tier_names(ctx: Context, brand_id: int, *, now: datetime | None = None) -> dict[str, str]:
    """Tier id -> its name in the rules in force ({} when no rules are)."""
    from loyalpos.service.rulebook.rulesets import rules_at

    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        doc = rules_at(conn, ctx, brand_id, at).document
    return {t.id: t.name or t.id for t in doc.tiers}
