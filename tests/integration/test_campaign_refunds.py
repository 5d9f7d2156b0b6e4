"""Triggered campaigns and full refunds (issue 11, item 12), on SQLite and
PostgreSQL: an order refunded before the worker came to it fires nothing; an
order refunded after the firing has the firing's unused coupons voided and its
points reversed within what the member holds, by the worker, once.

Rules (`on_refund` per campaign): `welcome` and `big-spender` use the defaults
(skip, revoke); `loyal` turns both off; `eager` fires even for a refunded order
and then takes its gift back; `gold-gift` is a tier upgrade, which a refund
does not touch (the tier stays).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from loyalpos.api.app import create_app
from loyalpos.db import ledger_repo
from loyalpos.db.tables import campaign_firings, coupons, orders, outbox, point_entries
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.events import campaigns
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty import points
from loyalpos.service.till import checkout, refunds
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from tests.conftest import Clock
from tests.integration.checkout_helpers import Shop, confirm_request, open_shop
from tests.integration.ledger_helpers import invariant
from tests.integration.test_campaigns import cart, drain, pay

RULES = """
points:
  earn:
    - {id: base, kind: base, points_per_yuan: 1}
coupons:
  - {id: mj100-20, name: 满100减20, kind: threshold, threshold_fen: 10000, amount_fen: 2000}
  - {id: cash5, name: 5元代金券, kind: cash, amount_fen: 500, valid_days: 30}
tiers:
  - {id: normal, name: 普通会员, min_spent_fen: 0}
  - {id: gold, name: 金卡, min_spent_fen: 50000}
campaigns:
  - {id: welcome, name: 首单礼, trigger: first_order, issue: [mj100-20], points: 100, tag: 新客}
  - {id: big-spender, name: 满100送券, trigger: spend, min_paid_fen: 10000, issue: [cash5]}
  - {id: loyal, name: 满100送积分, trigger: spend, min_paid_fen: 10000, points: 30,
     on_refund: {skip_if_refunded: false, revoke_unused: false}}
  - {id: eager, name: 满100必送, trigger: spend, min_paid_fen: 10000, issue: [cash5],
     on_refund: {skip_if_refunded: false}}
  - {id: gold-gift, name: 升金卡礼, trigger: tier_upgrade, to_tier: gold, issue: [cash5],
     points: 500}
"""


@pytest.fixture
def shop(ctx: Context) -> Shop:
    return open_shop(ctx, rules=RULES)


def big_order(ctx: Context, shop: Shop, order_no: str, fen: int = 12000) -> dict[str, Any]:
    return pay(ctx, shop, order_no, cart(shop.store_a, shop.member, ("cake", "food", fen, 1)))


def refund(ctx: Context, shop: Shop, order_no: str, refund_no: str, qty: int = 0) -> Any:
    lines = (RefundLine(1, qty),) if qty else ()
    req = RefundRequest(shop.store_a, order_no, refund_no, "c01", lines)
    return refunds.refund(ctx, shop.brand.id, req).receipt


def firings(ctx: Context, shop: Shop) -> dict[str, campaigns.Firing]:
    found, _ = campaigns.firings(ctx, shop.brand.id)
    return {f.campaign: f for f in found}


def campaign_coupons(ctx: Context, shop: Shop) -> dict[str, list[str]]:
    """Campaign coupons of the member by campaign: their states, oldest first."""
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(coupons.c.source_ref, coupons.c.state)
            .where(coupons.c.member_id == shop.member, coupons.c.source_type == "campaign")
            .order_by(coupons.c.id)
        )
        out: dict[str, list[str]] = {}
        for r in rows:
            out.setdefault(r.source_ref, []).append(r.state)
        return out


def campaign_points(ctx: Context, shop: Shop) -> list[tuple[str, str | None, int, int | None]]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(
                point_entries.c.kind,
                point_entries.c.source_ref,
                point_entries.c.points,
                point_entries.c.reverses_entry_id,
            )
            .where(
                point_entries.c.member_id == shop.member,
                point_entries.c.source_type == "campaign",
            )
            .order_by(point_entries.c.id)
        )
        return [(r.kind, r.source_ref, r.points, r.reverses_entry_id) for r in rows]


def balance(ctx: Context, shop: Shop) -> int:
    total = points.balance(ctx, shop.brand.id, shop.member).total
    assert invariant(ctx, shop.member) == total
    return total


def statuses(ctx: Context, shop: Shop) -> dict[str, str]:
    return {c: f.status for c, f in firings(ctx, shop).items()}


def replay_all(ctx: Context) -> None:
    """Every event handled again, as after a worker's crash or an outbox replay."""
    with ctx.transaction() as conn:
        conn.execute(update(outbox).values(processed_at=None))
    drain(ctx)


# --------------------------------------------------------------------------- timing 1


def test_an_order_refunded_before_the_worker_runs_fires_nothing(ctx: Context, shop: Shop) -> None:
    receipt = big_order(ctx, shop, "A-1")
    done = refund(ctx, shop, "A-1", "R-1")
    assert done["order_status"] == "refunded"
    start = balance(ctx, shop)
    drain(ctx)

    fired = firings(ctx, shop)
    assert statuses(ctx, shop) == {
        "welcome": "skipped",
        "big-spender": "skipped",
        "loyal": "fired",  # skip_if_refunded: false, revoke_unused: false
        "eager": "revoked",  # skip_if_refunded: false: fires, then takes it back at once
    }
    skipped = fired["welcome"]
    assert skipped.order_id == receipt["order_id"] and skipped.coupons == ()
    assert skipped.detail == {"reason": "order_refunded", "refund_id": done["refund_id"]}
    assert campaign_coupons(ctx, shop) == {"eager": ["voided"]}
    assert campaigns.tags(ctx, shop.brand.id, shop.member) == []
    assert campaign_points(ctx, shop) == [("earn", "loyal", 30, None)]
    assert balance(ctx, shop) == start + 30

    # Seen again (a replay of the outbox), nothing changes.
    before = (statuses(ctx, shop), campaign_coupons(ctx, shop), campaign_points(ctx, shop))
    replay_all(ctx)
    assert (statuses(ctx, shop), campaign_coupons(ctx, shop), campaign_points(ctx, shop)) == (
        before
    )


# --------------------------------------------------------------------------- timing 2


def test_a_refund_after_the_firing_takes_back_the_unused_gifts_once(
    ctx: Context, shop: Shop
) -> None:
    receipt = big_order(ctx, shop, "A-1")
    drain(ctx)
    assert set(statuses(ctx, shop).values()) == {"fired"}
    gifts = firings(ctx, shop)
    (welcome_coupon,) = gifts["welcome"].coupons
    assert gifts["welcome"].points_entry_id is not None
    assert balance(ctx, shop) == 1000 + 120 + 100 + 30

    done = refund(ctx, shop, "A-1", "R-1")
    # Nothing of the campaigns is taken back on the cashier's path ...
    assert campaign_coupons(ctx, shop) == {
        "welcome": ["issued"],
        "big-spender": ["issued"],
        "eager": ["issued"],
    }
    assert balance(ctx, shop) == 1000 + 100 + 30
    drain(ctx)  # ... but by the worker, from the refund's event.

    assert statuses(ctx, shop) == {
        "welcome": "revoked",
        "big-spender": "revoked",
        "loyal": "fired",
        "eager": "revoked",
    }
    assert campaign_coupons(ctx, shop) == {
        "welcome": ["voided"],
        "big-spender": ["voided"],
        "eager": ["voided"],
    }
    welcome = firings(ctx, shop)["welcome"]
    assert welcome.revoked_at is not None
    assert welcome.detail == {
        "reason": "order_refunded",
        "refund_id": done["refund_id"],
        "coupons_voided": [welcome_coupon],
        "coupons_kept": [],
        "points_reversed": 100,
        "points_kept": 0,
        "tag_kept": "新客",
    }
    # Append-only: the grant stays, a reversing entry points at it.
    assert campaign_points(ctx, shop) == [
        ("earn", "welcome", 100, None),
        ("earn", "loyal", 30, None),
        ("reverse", "welcome", -100, gifts["welcome"].points_entry_id),
    ]
    assert balance(ctx, shop) == 1000 + 30
    history = wallet.history(ctx, shop.brand.id, welcome_coupon)
    assert [h["event"] for h in history] == ["issued", "voided"]
    assert history[-1]["order_id"] == receipt["order_id"]
    assert history[-1]["refund_id"] == done["refund_id"]
    assert "已全额退款" in history[-1]["detail"] and "fully refunded" in history[-1]["detail"]
    # The tag stays (decision: tags describe the member, they are not value).
    assert [t.tag for t in campaigns.tags(ctx, shop.brand.id, shop.member)] == ["新客"]
    # Integrators hear of each voided coupon.
    with ctx.transaction(read_only=True) as conn:
        voided_events = conn.execute(
            select(outbox.c.subject).where(outbox.c.event_type == "coupon.voided")
        ).all()
    assert len(voided_events) == 3

    # Once: the same events again change nothing.
    before = (statuses(ctx, shop), campaign_coupons(ctx, shop), campaign_points(ctx, shop))
    replay_all(ctx)
    assert (statuses(ctx, shop), campaign_coupons(ctx, shop), campaign_points(ctx, shop)) == (
        before
    )
    assert balance(ctx, shop) == 1000 + 30


def test_used_coupons_and_spent_points_stay_and_the_balance_never_goes_negative(
    ctx: Context, clock: Clock, shop: Shop
) -> None:
    big_order(ctx, shop, "A-1")
    drain(ctx)
    (welcome_coupon,) = firings(ctx, shop)["welcome"].coupons
    # The welcome coupon is used on a second order (100 元 - 20 = 80 元, 80 points) ...
    clock.advance(minutes=5)
    second = cart(shop.store_a, shop.member, ("tea", "food", 10000, 1))
    checkout.confirm(
        ctx, shop.brand.id, confirm_request("A-2", second, 8000, coupon_ids=(welcome_coupon,))
    )
    # ... and most points are spent in the points mall.
    held = balance(ctx, shop)
    assert held == 1000 + 120 + 100 + 30 + 80
    points.spend(ctx, shop.brand.id, shop.member, held - 150, points.Source("mall", "gift"))
    refund(ctx, shop, "A-1", "R-1")  # takes back the order's own 120 points
    assert balance(ctx, shop) == 30
    drain(ctx)

    welcome = firings(ctx, shop)["welcome"]
    assert welcome.status == "revoked"
    assert welcome.detail is not None
    assert welcome.detail["coupons_voided"] == []
    assert welcome.detail["coupons_kept"] == [{"coupon_id": welcome_coupon, "state": "used"}]
    assert (welcome.detail["points_reversed"], welcome.detail["points_kept"]) == (30, 70)
    assert campaign_coupons(ctx, shop)["welcome"] == ["used"]
    assert campaign_coupons(ctx, shop)["big-spender"] == ["voided"]
    assert balance(ctx, shop) == 0


def test_a_brand_that_allows_a_negative_balance_reverses_everything(
    ctx: Context, clock: Clock
) -> None:
    shop = open_shop(ctx, negative=True, rules=RULES)
    big_order(ctx, shop, "A-1")
    drain(ctx)
    points.spend(ctx, shop.brand.id, shop.member, 1000 + 120 + 100, points.Source("mall", "x"))
    refund(ctx, shop, "A-1", "R-1")
    assert balance(ctx, shop) == 30 - 120
    drain(ctx)
    welcome = firings(ctx, shop)["welcome"]
    assert welcome.detail is not None
    assert (welcome.detail["points_reversed"], welcome.detail["points_kept"]) == (100, 0)
    assert balance(ctx, shop) == 30 - 120 - 100


def test_a_partial_refund_revokes_nothing_until_the_order_is_fully_refunded(
    ctx: Context, shop: Shop
) -> None:
    pay(ctx, shop, "A-1", cart(shop.store_a, shop.member, ("cake", "food", 6000, 2)))
    drain(ctx)
    refund(ctx, shop, "A-1", "R-1", qty=1)
    drain(ctx)
    assert set(statuses(ctx, shop).values()) == {"fired"}
    assert campaign_coupons(ctx, shop)["welcome"] == ["issued"]
    refund(ctx, shop, "A-1", "R-2", qty=1)
    drain(ctx)
    assert statuses(ctx, shop)["welcome"] == "revoked"
    assert campaign_coupons(ctx, shop)["welcome"] == ["voided"]


def test_a_tier_upgrade_gift_stays_after_a_refund(ctx: Context, shop: Shop) -> None:
    big_order(ctx, shop, "A-1", fen=60000)
    drain(ctx)
    assert statuses(ctx, shop)["gold-gift"] == "fired"
    refund(ctx, shop, "A-1", "R-1")
    drain(ctx)
    gold = firings(ctx, shop)["gold-gift"]
    assert (gold.status, gold.order_id) == ("fired", None)
    assert campaign_coupons(ctx, shop)["gold-gift"] == ["issued"]
    assert statuses(ctx, shop)["welcome"] == "revoked"


def test_a_coupon_locked_by_a_quote_is_voided_and_the_till_must_ask_again(
    ctx: Context, clock: Clock, shop: Shop
) -> None:
    big_order(ctx, shop, "A-1")
    drain(ctx)
    (cash5,) = firings(ctx, shop)["big-spender"].coupons
    with ctx.transaction() as conn:
        assert wallet.lock(conn, [cash5], 999, clock.now.replace(year=2099), clock.now)
    refund(ctx, shop, "A-1", "R-1")
    drain(ctx)
    assert campaign_coupons(ctx, shop)["big-spender"] == ["voided"]


def test_the_firings_log_shows_what_was_skipped_and_revoked(ctx: Context, shop: Shop) -> None:
    big_order(ctx, shop, "A-1")
    drain(ctx)
    refund(ctx, shop, "A-1", "R-1")
    drain(ctx)
    hq = apikeys.create_key(ctx, shop.brand.id, Scope.HQ, "hq").secret
    with TestClient(create_app(ctx)) as api:
        r = api.get(
            "/v1/campaigns/firings",
            params={"campaign": "welcome"},
            headers={"Authorization": f"Bearer {hq}"},
        )
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item["status"] == "revoked" and item["revoked_at"]
    assert item["order_id"] == 1 and len(item["coupon_ids"]) == 1
    assert item["detail"]["points_reversed"] == 100
    assert item["detail"]["coupons_voided"] == item["coupon_ids"]


def test_a_firing_row_without_gifts_recorded_is_revoked_harmlessly(
    ctx: Context, shop: Shop
) -> None:
    """Firings from before migration 0006 have no order: never revoked. One with
    an order but no gifts recorded revokes nothing and says so."""
    big_order(ctx, shop, "A-1")
    drain(ctx)
    with ctx.transaction() as conn:
        conn.execute(
            update(campaign_firings)
            .where(campaign_firings.c.campaign == "welcome")
            .values(order_id=None)
        )
        conn.execute(
            update(campaign_firings)
            .where(campaign_firings.c.campaign == "big-spender")
            .values(coupon_ids=None, points_entry_id=None)
        )
    refund(ctx, shop, "A-1", "R-1")
    drain(ctx)
    assert statuses(ctx, shop)["welcome"] == "fired"
    assert campaign_coupons(ctx, shop)["welcome"] == ["issued"]
    spender = firings(ctx, shop)["big-spender"]
    assert spender.status == "revoked"
    assert spender.detail is not None and spender.detail["coupons_voided"] == []
    assert campaign_coupons(ctx, shop)["big-spender"] == ["issued"]


def test_a_refund_in_flight_while_the_worker_fires_is_seen_after_the_member_lock(
    ctx: Context, shop: Shop
) -> None:
    """The worker reads the order's state only once it holds the member's lock,
    which a refund holds until it commits: a refund committing while the worker
    waits is seen, and the campaign is skipped, not fired and left standing."""
    receipt = big_order(ctx, shop, "A-1")
    locked = threading.Event()
    release = threading.Event()

    def refund_in_flight() -> None:
        # What a refund does, as far as the worker can tell: the member's lock,
        # the order's new state, commit.
        with ctx.transaction() as conn:
            ledger_repo.lock_member(conn, shop.brand.id, shop.member)
            locked.set()
            release.wait(10)
            conn.execute(
                update(orders).where(orders.c.id == receipt["order_id"]).values(status="refunded")
            )

    refunding = threading.Thread(target=refund_in_flight)
    refunding.start()
    assert locked.wait(10)
    working = threading.Thread(target=drain, args=(ctx,))
    working.start()
    working.join(0.5)  # the worker now waits for the member
    release.set()
    refunding.join(10)
    working.join(30)
    assert not working.is_alive()
    assert statuses(ctx, shop)["welcome"] == "skipped"
    assert "welcome" not in campaign_coupons(ctx, shop)
