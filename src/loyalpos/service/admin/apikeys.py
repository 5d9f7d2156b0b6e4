"""API keys (接口密钥): a cashier key acts for one store, an HQ key for the brand.

A key is `lp_<prefix>_<secret>`. Only a SHA-256 of the whole key is stored; the
prefix finds the row and the full key is shown once, when it is created.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from loyalpos.db.tables import api_keys, inserted_id
from loyalpos.domain.accounts import check_name
from loyalpos.domain.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from loyalpos.service.base.brands import check_store, load_brand
from loyalpos.service.base.context import Context

# A revoked key stops working within this many seconds in every server process.
KEY_CACHE_SECONDS = 2.0


class Scope(StrEnum):
    CASHIER = "cashier"
    HQ = "hq"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's brand, scope and (for a cashier) store."""

    key_id: int
    brand_id: int
    scope: Scope
    store_id: int | None

    def require_hq(self) -> None:
        if self.scope is not Scope.HQ:
            raise Forbidden("需要总部密钥 (this needs an HQ key)", code="hq_key_required")

    def require_store(self, store_id: int) -> None:
        """A cashier key acts for its own store only; an HQ key for any of the brand's."""
        if self.scope is Scope.CASHIER and self.store_id != store_id:
            raise Forbidden(
                "此密钥不能操作其他门店 (this key belongs to another store)",
                code="wrong_store",
                store_id=store_id,
            )


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    brand_id: int
    store_id: int | None
    scope: Scope
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    secret: str  # the full key, shown once


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _key(row: Any) -> ApiKey:
    return ApiKey(
        row.id,
        row.brand_id,
        row.store_id,
        Scope(row.scope),
        row.name,
        row.prefix,
        row.created_at,
        row.revoked_at,
    )


def insert_key(
    conn: Connection,
    brand_id: int,
    scope: Scope,
    name: str,
    now: datetime,
    *,
    store_id: int | None = None,
    raw: str | None = None,
) -> NewKey:
    """Create a key in an open transaction. `raw` lets the demo seed a known key."""
    load_brand(conn, brand_id)
    if scope is Scope.CASHIER and store_id is None:
        raise InvalidInput(
            "收银密钥需要门店 (a cashier key needs a store)", code="store_required", field="store"
        )
    if scope is Scope.HQ and store_id is not None:
        raise InvalidInput(
            "总部密钥不属于门店 (an HQ key has no store)", code="store_not_allowed", field="store"
        )
    check_store(conn, brand_id, store_id)
    if raw is None:
        raw = f"lp_{secrets.token_hex(6)}_{secrets.token_hex(24)}"  # 192 secret bits, no "_"
    prefix = parse_prefix(raw)
    if prefix is None:
        raise InvalidInput("malformed key", code="invalid_key")
    key_id = inserted_id(
        conn.execute(
            insert(api_keys).values(
                brand_id=brand_id,
                store_id=store_id,
                scope=scope.value,
                name=name,
                prefix=prefix,
                key_hash=_hash(raw),
                created_at=now,
            )
        )
    )
    row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
    return NewKey(_key(row), raw)


def create_key(
    ctx: Context,
    brand_id: int,
    scope: Scope,
    name: str,
    *,
    store_id: int | None = None,
    now: datetime | None = None,
) -> NewKey:
    """A new key (its secret in the answer, shown once); the name says who uses it."""
    at = ctx.now(now)
    label = check_name(name)
    return ctx.run(lambda conn: insert_key(conn, brand_id, scope, label, at, store_id=store_id))


def list_keys(ctx: Context, brand_id: int) -> list[ApiKey]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(api_keys).where(api_keys.c.brand_id == brand_id).order_by(api_keys.c.id)
        )
        return [_key(r) for r in rows]


def revoke_key(ctx: Context, brand_id: int, key_id: int, *, now: datetime | None = None) -> ApiKey:
    at = ctx.now(now)

    def run(conn: Connection) -> ApiKey:
        row = conn.execute(
            select(api_keys).where(api_keys.c.id == key_id, api_keys.c.brand_id == brand_id)
        ).first()
        if row is None:
            raise NotFound("密钥不存在 (API key not found)", code="key_not_found")
        if row.revoked_at is None:
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=at))
        ctx.forget(("api_key", row.prefix))
        return _key(conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one())

    return ctx.run(run)


def parse_prefix(raw: str) -> str | None:
    parts = raw.split("_")
    if len(parts) < 3 or parts[0] != "lp" or not parts[1] or len(raw) > 200:
        return None
    return f"lp_{parts[1]}"


def needs_lookup(ctx: Context, raw: str | None) -> bool:
    """Whether `authenticate(ctx, raw)` would read the database (a well-formed key
    that is not in the short per-process cache); otherwise it does no I/O."""
    prefix = parse_prefix(raw) if raw else None
    return prefix is not None and not ctx.recalls(("api_key", prefix))


def authenticate_cached(ctx: Context, raw: str) -> Principal | None:
    """The principal behind `raw` when telling needs no I/O (a hash and a
    compare against the short per-process cache), None when its key has to be
    read from the database (`authenticate`, off the event loop); Unauthorized
    for a key that is wrong without looking anything up."""
    if needs_lookup(ctx, raw):
        return None
    return authenticate(ctx, raw)


def authenticate(ctx: Context, raw: str | None) -> Principal:
    """The principal behind a raw key, or Unauthorized saying what is wrong."""
    if not raw:
        raise Unauthorized(
            "缺少接口密钥 (send the API key as 'Authorization: Bearer <key>')",
            code="api_key_required",
        )
    prefix = parse_prefix(raw)
    if prefix is None:
        raise Unauthorized("接口密钥格式错误 (malformed API key)", code="api_key_invalid")

    def load() -> Any:
        with ctx.transaction(read_only=True) as conn:
            return conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()

    row = ctx.remember(("api_key", prefix), KEY_CACHE_SECONDS, load)
    if row is None or not hmac.compare_digest(row.key_hash, _hash(raw)):
        raise Unauthorized("接口密钥无效 (unknown API key)", code="api_key_invalid")
    if row.revoked_at is not None:
        raise Unauthorized("接口密钥已作废 (this API key was revoked)", code="api_key_revoked")
    return Principal(row.id, row.brand_id, Scope(row.scope), row.store_id)
