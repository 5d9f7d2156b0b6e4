"""A demo brand for the quick start: two stores, a few members with points, a
small product catalogue (demo_catalogue.csv: the skus and categories of
demo_rules.yaml, with barcodes, and loose cookies sold by weight through scale
labels), well-known API keys (an HQ key, a cashier key per store) for trying the
API, and well-known accounts (an HQ user per role, a cashier per store) for the
pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Connection, select

from loyalpos.db.tables import hq_users, store_staff
from loyalpos.domain.accounts import Role
from loyalpos.domain.errors import NotFound
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.domain.scanning import ScaleLayout
from loyalpos.service.admin import accounts, apikeys, staff
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.catalogue import importer as catalogue_import
from loyalpos.service.catalogue import products as catalogue
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty import members, points
from loyalpos.service.loyalty.members import Identity
from loyalpos.service.rulebook import rulesets

DEMO_CODE = "demo"

_MEMBERS = [
    ("13800138000", "张伟", "1990-05-20", 1200),
    ("13912345678", "李娜", "1988-11-03", 5600),
    ("13700001111", "王芳", None, 300),
    ("18612340000", "刘洋", "1995-01-15", 0),
    ("15000002222", "陈静", "1979-07-30", 10000),
]

# Demo coupons by member's phone.
_WALLETS = {"13912345678": ["pct88", "mj100-15", "cash10"], "15000002222": ["free-latte"]}

# Public on purpose (README, docs/api.md): they open the demo brand and nothing
# else. (name, scope, store code, key)
DEMO_KEYS: list[tuple[str, Scope, str | None, str]] = [
    ("demo HQ", Scope.HQ, None, "lp_demohq_publicdemokey"),
    ("demo cashier SH001", Scope.CASHIER, "SH001", "lp_demosh001_publicdemokey"),
    ("demo cashier BJ001", Scope.CASHIER, "BJ001", "lp_demobj001_publicdemokey"),
]

# The demo's scale labels (docs/catalogue.md): EAN-13 with the price (flag 21) or
# the weight (flag 22) inside, and the 18-digit labels of a Chinese scale (flag 20:
# price and weight). The loose cookies' PLU is 00101 (their barcode).
DEMO_LAYOUTS = [
    ScaleLayout("ean13-price", ("21",), "FFIIIIIPPPPPC"),
    ScaleLayout("ean13-weight", ("22",), "FFIIIIIWWWWWC"),
    ScaleLayout("scale18", ("20",), "FFIIIIIPPPPPWWWWWC"),
]


# Public on purpose like the keys (README, docs/accounts.md). Their argon2id hashes
# are made in advance: seeding costs no hashing, and `demo_accounts` tells an
# account still on its demo password (its hash is this one) from one given a new
# password since, by comparing strings.
DEMO_PASSWORD = "demo-password"
_DEMO_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$QDJn9jZF9pN96VEY1SFyJg$"
    "PIJA6j9IZROsyzgRA9iAX/F0BJrMuIeHuBcwmIgsp0w"
)
DEMO_PIN = "1234"
_DEMO_PIN_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$oGM5MCzP+555lbnGOHRfOw$"
    "fGzCu7Wkfb54thNgBfjTCJXAtvP/M0syJxL8P/xPLrY"
)

# HQ users, one per role: (login, display name, role, store codes looked after).
DEMO_USERS: list[tuple[str, str, Role, tuple[str, ...]]] = [
    ("admin", "演示管理员 (demo admin)", Role.ADMIN, ()),
    ("operator", "演示运营 (demo operator)", Role.OPERATOR, ()),
    ("analyst", "演示分析师 (demo analyst)", Role.ANALYST, ()),
    ("manager.sh001", "上海南京西路店店长 (demo SH001 manager)", Role.STORE_MANAGER, ("SH001",)),
]
# Cashiers: (store code, staff number, name).
DEMO_STAFF: list[tuple[str, str, str]] = [
    ("SH001", "1001", "收银员小王 (demo cashier)"),
    ("BJ001", "2001", "收银员小李 (demo cashier)"),
]


@dataclass(frozen=True, slots=True)
class DemoAccounts:
    """What `demo` and `serve` print: (login, role, password) of each demo user,
    (store code, staff number, PIN) of each demo cashier."""

    users: list[tuple[str, str, str]]
    staff: list[tuple[str, str, str]]


def seed(ctx: Context) -> brands.Brand:
    """Create the demo brand unless it exists, and its demo keys and accounts
    unless they exist (never in production, where a published key or password
    must not open anything), and its catalogue unless it has products or layouts
    (a demo database made before the catalogue gets it; one the operator changed
    is left alone); returns the brand either way."""
    try:
        brand = brands.brand_by_code(ctx, DEMO_CODE)
    except NotFound:
        brand = _seed_brand(ctx)
    _seed_catalogue(ctx, brand.id)
    if ctx.settings.env != "production":
        _seed_keys(ctx, brand.id)
        _seed_accounts(ctx, brand.id)
    return brand


def demo_accounts(ctx: Context, brand_id: int) -> DemoAccounts:
    """The demo users and cashiers present, enabled and still on their demo
    password or PIN, to print (one disabled or given a new one is left out)."""
    stores = {s.id: s.code for s in brands.list_stores(ctx, brand_id)}
    with ctx.transaction(read_only=True) as conn:
        users = {
            r.login: r.role
            for r in conn.execute(
                select(hq_users.c.login, hq_users.c.role).where(
                    hq_users.c.brand_id == brand_id,
                    hq_users.c.disabled_at.is_(None),
                    hq_users.c.password_hash == _DEMO_PASSWORD_HASH,
                )
            )
        }
        cashiers = {
            (stores.get(r.store_id), r.number)
            for r in conn.execute(
                select(store_staff.c.store_id, store_staff.c.number).where(
                    store_staff.c.brand_id == brand_id,
                    store_staff.c.disabled_at.is_(None),
                    store_staff.c.pin_hash == _DEMO_PIN_HASH,
                )
            )
        }
    return DemoAccounts(
        [(login, users[login], DEMO_PASSWORD) for login, *_ in DEMO_USERS if login in users],
        [
            (store, number, DEMO_PIN)
            for store, number, _ in DEMO_STAFF
            if (store, number) in cashiers
        ],
    )


def _seed_accounts(ctx: Context, brand_id: int) -> None:
    """Insert the demo users and cashiers whose login or number is not taken; one
    disabled or given a new password stays so."""
    stores = {s.code: s.id for s in brands.list_stores(ctx, brand_id)}
    taken = {u.login for u in accounts.list_users(ctx, brand_id)}
    staffed = {(p.store_id, p.number) for p in staff.list_staff(ctx, brand_id)}
    now = ctx.now()
    for login, name, role, codes in DEMO_USERS:
        if login in taken or any(c not in stores for c in codes):
            continue
        ids = frozenset(stores[c] for c in codes)
        accounts.insert_user(ctx, brand_id, login, name, role, _DEMO_PASSWORD_HASH, ids, now)
    for code, number, name in DEMO_STAFF:
        if code not in stores or (stores[code], number) in staffed:
            continue
        staff.insert_staff(ctx, brand_id, stores[code], number, name, _DEMO_PIN_HASH, now)


def demo_keys(ctx: Context, brand_id: int) -> list[tuple[str, str]]:
    """(name, key) of the demo keys present and not revoked, to print."""
    live = {k.prefix for k in apikeys.list_keys(ctx, brand_id) if k.revoked_at is None}
    return [(name, raw) for name, _, _, raw in DEMO_KEYS if apikeys.parse_prefix(raw) in live]


def _seed_catalogue(ctx: Context, brand_id: int) -> None:
    if catalogue.search(ctx, brand_id, limit=1, include_inactive=True):
        return
    if catalogue.layouts(ctx, brand_id):
        return
    text = (Path(__file__).parent / "demo_catalogue.csv").read_text(encoding="utf-8")
    report = catalogue_import.import_products(ctx, brand_id, text)
    assert report.committed, report.rejected
    catalogue.set_layouts(ctx, brand_id, DEMO_LAYOUTS)


def _seed_keys(ctx: Context, brand_id: int) -> None:
    """Insert the demo keys whose prefix is not taken; a revoked one stays revoked."""
    taken = {k.prefix for k in apikeys.list_keys(ctx, brand_id)}
    stores = {s.code: s.id for s in brands.list_stores(ctx, brand_id)}
    now = ctx.now()

    def run(conn: Connection) -> None:
        for name, scope, store, raw in DEMO_KEYS:
            if apikeys.parse_prefix(raw) in taken or (store is not None and store not in stores):
                continue
            store_id = stores[store] if store is not None else None
            apikeys.insert_key(conn, brand_id, scope, name, now, store_id=store_id, raw=raw)

    ctx.run(run)


def _seed_brand(ctx: Context) -> brands.Brand:
    from datetime import date

    brand = brands.create_brand(
        ctx,
        DEMO_CODE,
        "演示咖啡 Demo Coffee",
        policy=ExpiryPolicy(ExpiryMode.ROLLING, months=12, birthday_extension_months=3),
    )
    store_a = brands.create_store(
        ctx, brand.id, "SH001", "上海南京西路店", city="上海", format="street"
    )
    brands.create_store(ctx, brand.id, "BJ001", "北京三里屯店", city="北京", format="mall")
    now = ctx.now()
    ids: dict[str, int] = {}
    for i, (phone, name, birthday, balance) in enumerate(_MEMBERS):
        member = members.register(
            ctx,
            brand.id,
            phone=phone,
            name=name,
            birthday=date.fromisoformat(birthday) if birthday else None,
            store_id=store_a.id,
            identities=[Identity("wechat", "openid", f"demo-openid-{i + 1}")],
            now=now - timedelta(days=30),
        )
        ids[phone] = member.id
        if balance:
            points.earn(
                ctx,
                brand.id,
                member.id,
                balance,
                points.Source(
                    "order", f"DEMO-{i + 1:04d}", "演示订单积分 (demo order)", store_id=store_a.id
                ),
                now=now - timedelta(days=20),
            )
    rules = rulesets.save_draft(
        ctx,
        brand.id,
        (Path(__file__).parent / "demo_rules.yaml").read_text(encoding="utf-8"),
        author="demo",
        comment="demo rules",
    )
    rulesets.publish(
        ctx, brand.id, rules.version, effective_from=now - timedelta(days=30), by="demo"
    )
    # Coupons in two wallets, so that the till shows a plan to choose from and a
    # coupon to switch to (李娜: three that do not all stack; 陈静: a free latte).
    for phone, templates in _WALLETS.items():
        for template in templates:
            wallet.issue_to_member(
                ctx, brand.id, ids[phone], template, source_ref="demo", now=now - timedelta(days=1)
            )
    return brand
