"""The console's members part over HTTP in process (tests/e2e/test_console_members.py
drives it in a browser): search, the member 360 page, a points adjustment (its
reason required, a take-away beyond the balance refused next to the field), a
coupon to one member and to a CSV list, once per list; who may do what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from loyalpos.api.app import create_app
from loyalpos.db.tables import coupons
from loyalpos.service.admin import demo
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.events import campaigns, worker
from loyalpos.service.loyalty import members, points
from loyalpos.service.till import checkout
from tests.integration.checkout_helpers import cart, confirm_request

ZHANG = "13800138000"  # 张伟, 1200 points
LI = "13912345678"  # 李娜


@pytest.fixture
def app_ctx(ctx: Context) -> Iterator[tuple[TestClient, Context, int]]:
    brand = demo.seed(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c, ctx, brand.id


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _sign_in(c: TestClient, login: str) -> str:
    page = c.get("/console/sign-in")
    form = {"csrf": _csrf(page.text), "brand": "demo", "login": login, "password": "demo-password"}
    assert c.post("/console/sign-in", data=form, follow_redirects=False).status_code == 303
    return _csrf(c.get("/console").text)


def _coupon_count(ctx: Context, member_id: int, template: str) -> int:
    with ctx.transaction(read_only=True) as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(coupons)
                .where(coupons.c.member_id == member_id, coupons.c.template == template)
            ).scalar_one()
        )


def test_search_by_phone_card_and_name_prefix(app_ctx: tuple[TestClient, Context, int]) -> None:
    c, ctx, brand_id = app_ctx
    _sign_in(c, "operator")
    zhang = members.by_phone(ctx, brand_id, ZHANG)
    by_phone = c.get(f"/console/members?q={ZHANG}")
    assert by_phone.status_code == 200
    assert f'href="/console/members/{zhang.id}"' in by_phone.text
    by_card = c.get(f"/console/members?q={zhang.card_no}")
    assert f'data-id="{zhang.id}"' in by_card.text
    by_name = c.get("/console/members?q=张")
    assert f'data-id="{zhang.id}"' in by_name.text and "李娜" not in by_name.text
    nobody = c.get("/console/members?q=%25")  # a LIKE wildcard is a plain character
    assert "没有匹配的会员" in nobody.text
    assert "会员" in c.get("/console").text  # the menu shows the part


def test_member_360_shows_lots_ledger_coupons_and_tier(
    app_ctx: tuple[TestClient, Context, int],
) -> None:
    c, ctx, brand_id = app_ctx
    _sign_in(c, "operator")
    li = members.by_phone(ctx, brand_id, LI)
    lapse = date(2031, 3, 31)
    source = points.Source("operator", None, "补偿", operator="test", reason="补偿")
    points.adjust(ctx, brand_id, li.id, 250, source, expires_on=lapse)
    page = c.get(f"/console/members/{li.id}")
    assert page.status_code == 200
    text = page.text
    assert "李娜" in text and li.card_no in text
    assert "demo-openid-2" in text  # identities
    assert "2031-03-31" in text and ">250<" in text  # the lot and its lapse date
    assert ">5850<" in text  # the balance: 5600 + 250
    assert "距离银卡还需消费" in text  # tier progress
    assert "补偿" in text and "人工调整" in text  # the ledger with who and why
    assert "88折券" in text and 'data-state="issued"' in text  # coupons and states
    missing = c.get("/console/members/999999")
    assert missing.status_code == 404 and "未找到会员" in missing.text


def test_an_adjustment_needs_a_reason_and_cannot_overdraw(
    app_ctx: tuple[TestClient, Context, int],
) -> None:
    c, ctx, brand_id = app_ctx
    csrf = _sign_in(c, "operator")
    zhang = members.by_phone(ctx, brand_id, ZHANG)
    path = f"/console/members/{zhang.id}/points"
    no_reason = c.post(path, data={"csrf": csrf, "points": "100", "reason": " "})
    assert no_reason.status_code == 400
    assert 'id="reason-error"' in no_reason.text and "请填写调整积分的原因" in no_reason.text
    too_much = c.post(path, data={"csrf": csrf, "points": "-5000", "reason": "纠错"})
    assert too_much.status_code == 400
    assert 'id="points-error"' in too_much.text and "积分不足" in too_much.text
    not_a_number = c.post(path, data={"csrf": csrf, "points": "1.5", "reason": "纠错"})
    assert not_a_number.status_code == 400 and 'id="points-error"' in not_a_number.text
    assert points.balance(ctx, brand_id, zhang.id).total == 1200  # nothing booked
    done = c.post(path, data={"csrf": csrf, "points": "-200", "reason": "纠错"})
    assert done.status_code == 200 and "积分已调整" in done.text
    assert points.balance(ctx, brand_id, zhang.id).total == 1000
    entry = points.history(ctx, brand_id, zhang.id, limit=1)[0]
    assert entry.operator == "operator" and entry.reason == "纠错"
    forged = c.post(path, data={"csrf": "made-up", "points": "100", "reason": "x"})
    assert forged.status_code == 403
    assert points.balance(ctx, brand_id, zhang.id).total == 1000


def test_one_coupon_to_a_member_once_per_form(app_ctx: tuple[TestClient, Context, int]) -> None:
    c, ctx, brand_id = app_ctx
    csrf = _sign_in(c, "operator")
    zhang = members.by_phone(ctx, brand_id, ZHANG)
    path = f"/console/members/{zhang.id}/coupons"
    unknown = c.post(path, data={"csrf": csrf, "template": "nope", "nonce": "n1"})
    assert unknown.status_code == 400 and 'id="template-error"' in unknown.text
    form = {"csrf": csrf, "template": "cash10", "nonce": "n2"}
    assert "券已发放" in c.post(path, data=form).text
    assert "未重复发放" in c.post(path, data=form).text  # the same form posted twice
    assert _coupon_count(ctx, zhang.id, "cash10") == 1


def test_a_csv_list_issued_twice_issues_once(app_ctx: tuple[TestClient, Context, int]) -> None:
    c, ctx, brand_id = app_ctx
    csrf = _sign_in(c, "operator")
    zhang = members.by_phone(ctx, brand_id, ZHANG)
    li = members.by_phone(ctx, brand_id, LI)
    body = f"phone\n{ZHANG}\n{li.id}\n{ZHANG}\n19900000000\nhello\n".encode()

    def upload() -> str:
        answer = c.post(
            "/console/members/issue",
            data={"csrf": csrf, "template": "free-latte"},
            files={"file": ("list.csv", body, "text/csv")},
        )
        assert answer.status_code == 200, answer.text
        return answer.text

    def figure(text: str, name: str) -> int:
        found = re.search(rf'id="{name}">(\d+)<', text)
        assert found, text
        return int(found.group(1))

    first = upload()
    assert figure(first, "issued") == 2 and figure(first, "skipped") == 0
    assert figure(first, "duplicates") == 1 and figure(first, "rejected") == 2
    assert "既不是手机号也不是会员编号" in first and "本品牌没有此手机号或编号的会员" in first
    second = upload()
    assert figure(second, "issued") == 0 and figure(second, "skipped") == 2
    assert _coupon_count(ctx, zhang.id, "free-latte") == 1
    assert _coupon_count(ctx, li.id, "free-latte") == 1
    no_file = c.post("/console/members/issue", data={"csrf": csrf, "template": "free-latte"})
    assert no_file.status_code == 400 and 'id="file-error"' in no_file.text
    empty = c.post(
        "/console/members/issue",
        data={"csrf": csrf, "template": ""},
        files={"file": ("list.csv", b"", "text/csv")},
    )
    assert empty.status_code == 400 and 'id="template-error"' in empty.text


@pytest.mark.parametrize("login", ["analyst", "manager.sh001"])
def test_analysts_and_store_managers_are_denied(
    app_ctx: tuple[TestClient, Context, int], login: str
) -> None:
    c, ctx, brand_id = app_ctx
    csrf = _sign_in(c, login)
    zhang = members.by_phone(ctx, brand_id, ZHANG)
    assert 'href="/console/members"' not in c.get("/console").text
    for path in ("/console/members", f"/console/members/{zhang.id}", "/console/members/issue"):
        answer = c.get(path)
        assert answer.status_code == 403 and "没有权限" in answer.text
    refused = c.post(
        f"/console/members/{zhang.id}/points", data={"csrf": csrf, "points": "9", "reason": "x"}
    )
    assert refused.status_code == 403
    assert points.balance(ctx, brand_id, zhang.id).total == 1200
    upload = c.post(
        "/console/members/issue",
        data={"csrf": csrf, "template": "cash10"},
        files={"file": ("l.csv", ZHANG.encode(), "text/csv")},
    )
    assert upload.status_code == 403 and _coupon_count(ctx, zhang.id, "cash10") == 0


def test_member_360_lists_orders_firings_and_tags(
    app_ctx: tuple[TestClient, Context, int],
) -> None:
    c, ctx, brand_id = app_ctx
    _sign_in(c, "operator")
    liu = members.by_phone(ctx, brand_id, "18612340000")  # 刘洋, no orders yet
    store = next(s for s in brands.list_stores(ctx, brand_id) if s.code == "SH001")
    order = cart(store.id, liu.id, ("latte", 3200, 1))
    checkout.confirm(ctx, brand_id, confirm_request("CM-0001", order, 3200))
    for _ in range(5):  # the first order's campaign (welcome-gift) fires from the outbox
        if worker.dispatch_outbox(ctx).events == 0:
            break
    ctx.run(lambda conn: campaigns.add_tag(conn, brand_id, liu.id, "咖啡控", "test", ctx.now()))
    text = c.get(f"/console/members/{liu.id}").text
    assert '<span class="tag" title="test">咖啡控</span>' in text
    assert "CM-0001" in text and "¥32.00" in text and "已收款" in text
    assert f'href="/console/orders/{store.id}/CM-0001"' in text
    assert "首单礼" in text and "已触发" in text  # the firing (welcome-gift)
    assert "满100减15" in text  # the coupon it gave
