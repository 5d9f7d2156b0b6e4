"""Triggered campaigns end to end: checkout → outbox → worker → coupons, points, tags.

Every campaign fires at most once per order (first order: once per member; tier
upgrade: once per member and tier), however often the worker runs, crashes in
the middle, or sees the same event again.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from loyalpos.api.app import create_app
from loyalpos.db.tables import campaign_firings, coupons, member_tags, outbox, point_entries
from loyalpos.domain.errors import NotFound
from loyalpos.domain.pricing.model import CartLine, Options
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType
from loyalpos.service.events import campaigns, worker
from loyalpos.service.loyalty import members, points
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout
from loyalpos.service.till.checkout import CartRequest, MemberRef
from tests.conftest import Clock
from tests.integration.checkout_helpers import Shop, confirm_request, open_shop

RULES = """
points:
  earn:
    - {id: base, kind: base, points_per_yuan: 1}
coupons:
  - {id: mj100-20, name: 满100减20, kind: threshold, threshold_fen: 10000, amount_fen: 2000}
  - {id: cash5, name: 5元代金券, kind: cash, amount_fen: 500, valid_days: 30}
  - {id: latte, name: 拿铁兑换券, kind: item, sku: latte}
tiers:
  - {id: normal, name: 普通会员, min_spent_fen: 0}
  - {id: gold, name: 金卡, min_spent_fen: 50000}
campaigns:
  - {id: welcome, name: 首单礼, trigger: first_order, issue: [mj100-20], points: 100}
  - {id: big-spender, name: 满100送券, trigger: spend, min_paid_fen: 10000, issue: [cash5]}
  - {id: coffee-lover, name: 咖啡买赠, trigger: category, category: coffee, issue: [latte],
     stores: [A]}
  - {id: gold-gift, name: 升金卡礼, trigger: tier_upgrade, to_tier: gold, issue: [cash5],
     points: 500, tag: 金卡新贵}
  - {id: wake-up, name: 沉睡唤醒, trigger: reactivated, dormant_days: 30, points: 50,
     tag: 唤醒成功}
"""


def cart(store: int, member: int | None, *lines: tuple[str, str, int, int]) -> CartRequest:
    return CartRequest(
        store,
        tuple(CartLine(sku, cat, price, qty, sku) for sku, cat, price, qty in lines),
        MemberRef(member_id=member) if member is not None else None,
        Options(),
    )


def pay(ctx: Context, shop: Shop, order_no: str, c: CartRequest) -> dict[str, Any]:
    total = sum(line.unit_price * line.qty for line in c.lines)
    return checkout.confirm(ctx, shop.brand.id, confirm_request(order_no, c, total)).receipt


def count(ctx: Context, table: Any, *where: Any) -> int:
    with ctx.transaction(read_only=True) as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def campaign_coupons(ctx: Context, member: int) -> list[tuple[str, str | None]]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(coupons.c.template, coupons.c.source_ref)
            .where(coupons.c.member_id == member, coupons.c.source_type == "campaign")
            .order_by(coupons.c.id)
        )
        return [(r.template, r.source_ref) for r in rows]


def campaign_points(ctx: Context, member: int) -> list[tuple[str | None, int]]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(point_entries.c.source_ref, point_entries.c.points)
            .where(point_entries.c.member_id == member, point_entries.c.source_type == "campaign")
            .order_by(point_entries.c.id)
        )
        return [(r.source_ref, r.points) for r in rows]


def fired(ctx: Context) -> list[tuple[str, str]]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(campaign_firings.c.campaign, campaign_firings.c.event_key).order_by(
                campaign_firings.c.id
            )
        )
        return [(r.campaign, r.event_key) for r in rows]


def unprocessed(ctx: Context) -> int:
    return count(ctx, outbox, outbox.c.processed_at.is_(None))


def drain(ctx: Context) -> None:
    """Run the worker's dispatch (with the registered hooks) until nothing is left."""
    for _ in range(10):
        result = worker.dispatch_outbox(ctx)
        assert result.failed == ()
        if result.events == 0:
            return
    raise AssertionError("the outbox did not drain")


@pytest.fixture
def shop(ctx: Context) -> Shop:
    return open_shop(ctx, rules=RULES)


def test_campaigns_are_registered_for_the_events_they_react_to() -> None:
    """Importing the events package registers them; the worker only reads the registry."""
    reacting = {"order.paid", "tier.changed", "order.refunded"}
    for kind in EventType:
        assert (campaigns.handle in worker.REGISTRY.for_type(kind.value)) == (kind in reacting)


def test_each_trigger_fires_once_through_the_worker(ctx: Context, clock: Clock, shop: Shop) -> None:
    m = shop.member
    # First order, over 100 元, with a coffee, at store A.
    pay(
        ctx,
        shop,
        "A-1",
        cart(shop.store_a, m, ("latte", "coffee", 2800, 1), ("cake", "food", 8000, 1)),
    )
    drain(ctx)
    drain(ctx)  # nothing left: a second pass does nothing
    first = [("welcome", f"member:{m}"), ("big-spender", "order:1"), ("coffee-lover", "order:1")]
    assert fired(ctx) == first
    assert campaign_coupons(ctx, m) == [
        ("mj100-20", "welcome"),
        ("cash5", "big-spender"),
        ("latte", "coffee-lover"),
    ]
    assert campaign_points(ctx, m) == [("welcome", 100)]

    # A second order: not the first any more; coffee at store B does not count;
    # 420 元 takes the member to gold.
    clock.advance(days=1)
    receipt = pay(ctx, shop, "B-1", cart(shop.store_b, m, ("latte", "coffee", 42000, 1)))
    assert receipt["tier"] == "gold"
    drain(ctx)
    # (Two events, tier.changed and order.paid: their order is the checkout's.)
    assert sorted(fired(ctx)[3:]) == [("big-spender", "order:2"), ("gold-gift", f"tier:{m}:gold")]
    assert sorted(campaign_coupons(ctx, m)[3:]) == [
        ("cash5", "big-spender"),
        ("cash5", "gold-gift"),
    ]
    assert campaign_points(ctx, m)[1:] == [("gold-gift", 500)]
    assert [t.tag for t in campaigns.tags(ctx, shop.brand.id, m)] == ["金卡新贵"]

    # Back after 40 days without a purchase: 唤醒成功.
    clock.advance(days=40)
    pay(ctx, shop, "A-2", cart(shop.store_a, m, ("cake", "food", 1000, 1)))
    drain(ctx)
    assert fired(ctx)[5:] == [("wake-up", "order:3")]
    assert campaign_points(ctx, m)[2:] == [("wake-up", 50)]
    tags = campaigns.tags(ctx, shop.brand.id, m)
    assert [(t.tag, t.source) for t in tags] == [
        ("金卡新贵", "campaign:gold-gift"),
        ("唤醒成功", "campaign:wake-up"),
    ]
    # The bonus points are available at once (not pending).
    bal = points.balance(ctx, shop.brand.id, m)
    assert bal.pending == 0

    # Dormant again and back again: a second 唤醒 fires (another order), the
    # tag stays single.
    clock.advance(days=31)
    pay(ctx, shop, "A-3", cart(shop.store_a, m, ("cake", "food", 1000, 1)))
    drain(ctx)
    assert fired(ctx)[6:] == [("wake-up", "order:4")]
    assert [t.tag for t in campaigns.tags(ctx, shop.brand.id, m)] == ["金卡新贵", "唤醒成功"]
    assert unprocessed(ctx) == 0


def test_anonymous_orders_fire_nothing(ctx: Context, shop: Shop) -> None:
    pay(ctx, shop, "A-1", cart(shop.store_a, None, ("latte", "coffee", 20000, 1)))
    drain(ctx)
    assert fired(ctx) == []
    assert count(ctx, coupons, coupons.c.source_type == "campaign") == 0


def effects(ctx: Context, member: int) -> tuple[Any, ...]:
    return (
        fired(ctx),
        campaign_coupons(ctx, member),
        campaign_points(ctx, member),
        [t.tag for t in campaigns.tags(ctx, 1, member)],
    )


def test_a_crash_after_firing_rolls_everything_back_and_the_retry_fires_once(
    ctx: Context, clock: Clock, shop: Shop
) -> None:
    m = shop.member
    pay(ctx, shop, "A-1", cart(shop.store_a, m, ("latte", "coffee", 60000, 1)))
    before = unprocessed(ctx)

    def crash(_: Any, conn: Any, event: worker.OutboxEvent, now: Any) -> None:
        if event.event_type in ("order.paid", "tier.changed"):
            # The campaign hook has fired by now, inside this transaction.
            with conn.begin_nested():
                assert conn.execute(select(func.count()).select_from(campaign_firings)).scalar()
            raise RuntimeError("worker died")

    result = worker.dispatch_outbox(ctx, handlers=[campaigns.handle, crash])
    assert len(result.failed) == 2  # order.paid and tier.changed
    assert unprocessed(ctx) == 2 and before > 2
    assert effects(ctx, m) == ([], [], [], [])

    # The retry (a healthy worker) fires everything once; more passes add nothing.
    drain(ctx)
    drain(ctx)
    once = effects(ctx, m)
    assert sorted(once[0]) == [
        ("big-spender", "order:1"),
        ("coffee-lover", "order:1"),
        ("gold-gift", f"tier:{m}:gold"),
        ("welcome", f"member:{m}"),
    ]
    assert sorted(once[1]) == [
        ("cash5", "big-spender"),
        ("cash5", "gold-gift"),
        ("latte", "coffee-lover"),
        ("mj100-20", "welcome"),
    ]
    assert sorted(once[2]) == [("gold-gift", 500), ("welcome", 100)]
    assert once[3] == ["金卡新贵"]

    # The same events seen again (e.g. a replay from the outbox): nothing doubles.
    with ctx.transaction() as conn:
        conn.execute(update(outbox).values(processed_at=None))
    drain(ctx)
    assert effects(ctx, m) == once


def test_a_repeat_of_the_events_through_the_hook_never_fires_twice(
    ctx: Context, clock: Clock, shop: Shop
) -> None:
    m = shop.member
    pay(ctx, shop, "A-1", cart(shop.store_a, m, ("latte", "coffee", 60000, 1)))
    twice = [campaigns.handle, campaigns.handle]
    assert worker.dispatch_outbox(ctx, handlers=twice).failed == ()
    assert count(ctx, campaign_firings) == 4
    assert len(campaign_coupons(ctx, m)) == 4
    assert count(ctx, member_tags) == 1


def test_campaigns_follow_the_rules_in_force_at_the_order_time(
    ctx: Context, clock: Clock, shop: Shop
) -> None:
    m = shop.member
    ordered = clock.now
    clock.advance(hours=1)
    # A new version without campaigns takes over after the order was made.
    draft = rulesets.save_draft(ctx, shop.brand.id, RULES.split("campaigns:")[0])
    rulesets.publish(ctx, shop.brand.id, draft.version, effective_from=clock.now)
    clock.advance(hours=1)
    c = cart(shop.store_a, m, ("cake", "food", 12000, 1))
    late = confirm_request("A-1", c, 12000, ordered_at=ordered)
    checkout.confirm(ctx, shop.brand.id, late, late=True)
    pay(ctx, shop, "A-2", cart(shop.store_a, m, ("cake", "food", 12000, 1)))
    drain(ctx)
    # The late order was made under the old rules: it fires; the new one not.
    assert fired(ctx) == [("welcome", f"member:{m}"), ("big-spender", "order:1")]


def test_a_member_of_another_brand_is_not_found(ctx: Context, shop: Shop) -> None:
    with pytest.raises(NotFound):
        campaigns.tags(ctx, shop.brand.id + 1, shop.member)


def test_the_read_api(ctx: Context, clock: Clock, shop: Shop) -> None:
    m = shop.member
    pay(ctx, shop, "A-1", cart(shop.store_a, m, ("latte", "coffee", 60000, 1)))
    drain(ctx)
    hq = apikeys.create_key(ctx, shop.brand.id, Scope.HQ, "hq").secret
    till = apikeys.create_key(
        ctx, shop.brand.id, Scope.CASHIER, "till", store_id=shop.store_a
    ).secret
    other = members.register(ctx, shop.brand.id, phone="13900139000", name="李四").id
    with TestClient(create_app(ctx)) as client:

        def get(url: str, key: str, **params: Any) -> Any:
            return client.get(url, headers={"Authorization": f"Bearer {key}"}, params=params)

        tags = get(f"/v1/members/{m}/tags", till)
        assert tags.status_code == 200, tags.text
        assert tags.json()["member_id"] == m
        assert [(t["tag"], t["source"]) for t in tags.json()["tags"]] == [
            ("金卡新贵", "campaign:gold-gift")
        ]
        assert get(f"/v1/members/{other}/tags", hq).json()["tags"] == []
        assert get("/v1/members/999999/tags", hq).status_code == 404

        page = get("/v1/campaigns/firings", hq)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["total"] == 4
        items = body["items"]
        assert [f["id"] for f in items] == sorted((f["id"] for f in items), reverse=True)
        assert sorted((f["campaign"], f["event_key"], f["member_id"]) for f in items) == [
            ("big-spender", "order:1", m),
            ("coffee-lover", "order:1", m),
            ("gold-gift", f"tier:{m}:gold", m),
            ("welcome", f"member:{m}", m),
        ]

        only = get("/v1/campaigns/firings", hq, campaign="welcome").json()
        assert only["total"] == 1 and only["items"][0]["event_key"] == f"member:{m}"

        first = get("/v1/campaigns/firings", hq, limit=3).json()
        assert len(first["items"]) == 3 and first["next_before_id"] is not None
        rest = get("/v1/campaigns/firings", hq, limit=3, before_id=first["next_before_id"]).json()
        assert [f["id"] for f in rest["items"]] == [items[-1]["id"]]
        assert rest["next_before_id"] is None

        assert get("/v1/campaigns/firings", till).status_code == 403
        assert client.get("/v1/campaigns/firings").status_code == 401
