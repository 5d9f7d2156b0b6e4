"""Brands (品牌) and their stores (门店), and each brand's points policy."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db.tables import brands, inserted_id, stores
from loyalpos.domain.calendar import Period
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service.base.context import Context


@dataclass(frozen=True, slots=True)
class Brand:
    id: int
    code: str
    name: str
    timezone: str
    policy: ExpiryPolicy
    pending_days: int
    allow_negative_balance: bool

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()


@dataclass(frozen=True, slots=True)
class Store:
    id: int
    brand_id: int
    code: str
    name: str
    timezone: str | None
    city: str | None = None
    format: str | None = None


# 业态: what kind of place a store is, for the reports to compare like with like.
STORE_FORMATS: dict[str, str] = {
    "mall": "购物中心",
    "street": "街边店",
    "community": "社区店",
    "office": "写字楼",
    "transit": "交通枢纽",
    "campus": "校园",
    "other": "其他",
}
STORE_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
NAME_MAX, CITY_MAX = 200, 64


def _store(r: Any) -> Store:
    return Store(r.id, r.brand_id, r.code, r.name, r.timezone, r.city, r.format)


def checked_store_fields(
    code: str, name: str, city: str | None, format: str | None, timezone: str | None
) -> tuple[str, str, str | None, str | None, str | None]:
    """A store's fields as kept, or InvalidInput naming the field (`field`)."""
    code, name = code.strip(), name.strip()
    if not STORE_CODE.fullmatch(code):
        raise InvalidInput(
            "门店代码为 1-40 位字母、数字、- 或 _ (store code: 1-40 letters, digits, - or _)",
            code="bad_store_code",
            field="code",
        )
    if not name or len(name) > NAME_MAX or not name.isprintable():
        raise InvalidInput(
            f"门店名称须为 1-{NAME_MAX} 个字符 (store name: 1-{NAME_MAX} printable characters)",
            code="bad_store_name",
            field="name",
        )
    city = (city or "").strip() or None
    if city is not None and (len(city) > CITY_MAX or not city.isprintable()):
        raise InvalidInput(
            f"城市最多 {CITY_MAX} 个字符 (city: at most {CITY_MAX} printable characters)",
            code="bad_city",
            field="city",
        )
    format = (format or "").strip() or None
    if format is not None and format not in STORE_FORMATS:
        raise InvalidInput(
            f"未知业态 {format} (format is one of {', '.join(STORE_FORMATS)})",
            code="bad_store_format",
            field="format",
        )
    timezone = (timezone or "").strip() or None
    if timezone is not None:
        check_timezone(timezone)
    return code, name, city, format, timezone


def _brand(row: Any, prefix: str = "") -> Brand:
    """From a SQLAlchemy Row or a named tuple (db.engine.read_first): by attribute."""

    def m(name: str) -> Any:
        return getattr(row, prefix + name)

    period = m("expiry_period")
    policy = ExpiryPolicy(
        mode=ExpiryMode(m("expiry_mode")),
        months=m("expiry_months"),
        period=Period(period) if period else None,
        periods_later=m("expiry_periods_later"),
        birthday_extension_months=m("birthday_extension_months"),
    )
    return Brand(
        m("id"),
        m("code"),
        m("name"),
        m("timezone"),
        policy,
        m("pending_days"),
        bool(m("allow_negative_balance")),
    )


BRAND_PREFIX = "brand__"
# The brand's columns labelled `brand__...`, to ride along in another statement
# (the checkout reads them with the member's row lock): see `brand_from_row`.
BRAND_COLUMNS = tuple(c.label(BRAND_PREFIX + c.name) for c in brands.c if c.name != "created_at")


def brand_from_row(row: Any) -> Brand:
    """The brand from a row that selected `BRAND_COLUMNS`."""
    return _brand(row, BRAND_PREFIX)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="timezone") from None
    return name


def _policy_values(policy: ExpiryPolicy) -> dict[str, Any]:
    return {
        "expiry_mode": policy.mode.value,
        "expiry_months": policy.months,
        "expiry_period": policy.period.value if policy.period else None,
        "expiry_periods_later": policy.periods_later,
        "birthday_extension_months": policy.birthday_extension_months,
    }


def load_brand(conn: Connection, brand_id: int) -> Brand:
    row = conn.execute(select(brands).where(brands.c.id == brand_id)).first()
    if row is None:
        raise NotFound(f"brand {brand_id} not found", code="brand_not_found")
    return _brand(row)


BRAND_TTL = 30.0


def cached_brand(ctx: Context, conn: Connection, brand_id: int) -> Brand:
    """The brand from a short per-process cache (like stores), for the till's reads.

    Its id, code and time zone never change; its points policy may be up to
    `BRAND_TTL` seconds old in another process, so whatever books points uses a
    brand read in its own transaction (`load_brand`, or `BRAND_COLUMNS` read with
    the member's lock), never this one.
    """
    return ctx.remember(("brand", brand_id), BRAND_TTL, lambda: load_brand(conn, brand_id))


def get_brand(ctx: Context, brand_id: int) -> Brand:
    with ctx.transaction(read_only=True) as conn:
        return load_brand(conn, brand_id)


def brand_by_code(ctx: Context, code: str) -> Brand:
    with ctx.transaction(read_only=True) as conn:
        row = conn.execute(select(brands).where(brands.c.code == code)).first()
    if row is None:
        raise NotFound(f"品牌 {code} 不存在 (brand {code!r} not found)", code="brand_not_found")
    return _brand(row)


def list_brands(ctx: Context) -> list[Brand]:
    with ctx.transaction(read_only=True) as conn:
        return [_brand(r) for r in conn.execute(select(brands).order_by(brands.c.id))]


def create_brand(
    ctx: Context,
    code: str,
    name: str,
    *,
    timezone: str = "Asia/Shanghai",
    policy: ExpiryPolicy | None = None,
    pending_days: int = 0,
    allow_negative_balance: bool = False,
    now: datetime | None = None,
) -> Brand:
    if not code or len(code) > 40:
        raise InvalidInput("brand code must be 1-40 characters", field="code")
    if not 0 <= pending_days <= 365:
        raise InvalidInput("pending days must be between 0 and 365", field="pending_days")
    values = {
        "code": code,
        "name": name,
        "timezone": check_timezone(timezone),
        "pending_days": pending_days,
        "allow_negative_balance": allow_negative_balance,
        "created_at": ctx.now(now),
        **_policy_values(policy or ExpiryPolicy()),
    }
    try:
        with ctx.transaction() as conn:
            brand_id = inserted_id(conn.execute(insert(brands).values(**values)))
            return load_brand(conn, brand_id)
    except IntegrityError:
        raise Conflict(f"brand {code!r} already exists", code="brand_exists") from None


def set_points_policy(
    ctx: Context,
    brand_id: int,
    policy: ExpiryPolicy,
    *,
    pending_days: int | None = None,
    allow_negative_balance: bool | None = None,
) -> Brand:
    """Change how future points expire. Lots already open keep their dates."""
    values = _policy_values(policy)
    if pending_days is not None:
        values["pending_days"] = pending_days
    if allow_negative_balance is not None:
        values["allow_negative_balance"] = allow_negative_balance
    with ctx.transaction() as conn:
        load_brand(conn, brand_id)
        conn.execute(update(brands).where(brands.c.id == brand_id).values(**values))
        brand = load_brand(conn, brand_id)
    ctx.forget(("brand", brand_id))
    return brand


def create_store(
    ctx: Context,
    brand_id: int,
    code: str,
    name: str,
    *,
    timezone: str | None = None,
    city: str | None = None,
    format: str | None = None,
    now: datetime | None = None,
) -> Store:
    code, name, city, format, timezone = checked_store_fields(code, name, city, format, timezone)
    try:
        with ctx.transaction() as conn:
            load_brand(conn, brand_id)
            store_id = inserted_id(
                conn.execute(
                    insert(stores).values(
                        brand_id=brand_id,
                        code=code,
                        name=name,
                        timezone=timezone,
                        city=city,
                        format=format,
                        created_at=ctx.now(now),
                    )
                )
            )
    except IntegrityError:
        raise Conflict(
            f"门店代码 {code} 已存在 (store {code!r} already exists)",
            code="store_exists",
            field="code",
        ) from None
    return Store(store_id, brand_id, code, name, timezone, city, format)


def update_store(
    ctx: Context,
    brand_id: int,
    store_id: int,
    *,
    name: str,
    city: str | None,
    format: str | None,
    timezone: str | None,
) -> Store:
    """Change a store's name, city, format and time zone (its code stays: tills,
    keys and exports name the store by it)."""

    def run(conn: Connection) -> Store:
        found = store_in_brand(conn, brand_id, store_id)
        _, new_name, new_city, new_format, new_zone = checked_store_fields(
            found.code, name, city, format, timezone
        )
        conn.execute(
            update(stores)
            .where(stores.c.id == store_id, stores.c.brand_id == brand_id)
            .values(name=new_name, city=new_city, format=new_format, timezone=new_zone)
        )
        return Store(found.id, brand_id, found.code, new_name, new_zone, new_city, new_format)

    return ctx.run(run)


def list_stores(ctx: Context, brand_id: int) -> list[Store]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(stores).where(stores.c.brand_id == brand_id).order_by(stores.c.id)
        )
        return [_store(r) for r in rows]


def store_in_brand(conn: Connection, brand_id: int, store_id: int) -> Store:
    """The store a caller named, resolved within the caller's brand: the one way
    every endpoint that takes a store id reads it. Another brand's store and a
    store that does not exist get the same 404, so the answer tells a caller
    nothing about other brands' ids (and a foreign key never answers 500)."""
    row = conn.execute(
        select(stores).where(stores.c.id == store_id, stores.c.brand_id == brand_id)
    ).first()
    if row is None:
        raise NotFound(
            f"门店 {store_id} 不存在 (store {store_id} not found)",
            code="store_not_found",
            store_id=store_id,
        )
    return _store(row)


def check_store(conn: Connection, brand_id: int, store_id: int | None) -> None:
    """A store id from the caller, if any, must belong to the caller's brand."""
    if store_id is not None:
        store_in_brand(conn, brand_id, store_id)


def store_by_code(ctx: Context, brand_id: int, code: str) -> Store:
    """A store of the brand by its code (the command line names stores by code)."""
    with ctx.transaction(read_only=True) as conn:
        row = conn.execute(
            select(stores).where(stores.c.brand_id == brand_id, stores.c.code == code)
        ).first()
    if row is None:
        raise NotFound(f"门店 {code} 不存在 (store {code!r} not found)", code="store_not_found")
    return _store(row)
