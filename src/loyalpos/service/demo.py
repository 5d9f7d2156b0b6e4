"""A demo brand for the quick start: two stores, a few members with points."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from loyalpos.domain.errors import NotFound
from loyalpos.domain.expiry import ExpiryMode, ExpiryPolicy
from loyalpos.service import brands, members, points, rulesets
from loyalpos.service.context import Context
from loyalpos.service.members import Identity

DEMO_CODE = "demo"

_MEMBERS = [
    ("13800138000", "张伟", "1990-05-20", 1200),
    ("13912345678", "李娜", "1988-11-03", 5600),
    ("13700001111", "王芳", None, 300),
    ("18612340000", "刘洋", "1995-01-15", 0),
    ("15000002222", "陈静", "1979-07-30", 10000),
]


def seed(ctx: Context) -> brands.Brand:
    """Create the demo brand unless it exists; returns it either way."""
    try:
        return brands.brand_by_code(ctx, DEMO_CODE)
    except NotFound:
        pass
    from datetime import date

    brand = brands.create_brand(
        ctx,
        DEMO_CODE,
        "演示咖啡 Demo Coffee",
        policy=ExpiryPolicy(ExpiryMode.ROLLING, months=12, birthday_extension_months=3),
    )
    store_a = brands.create_store(ctx, brand.id, "SH001", "上海南京西路店")
    brands.create_store(ctx, brand.id, "BJ001", "北京三里屯店")
    now = ctx.now()
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
    return brand
