"""The console's rules part over HTTP in process (tests/e2e/test_console_rules.py
drives it in a browser): versions and their difference, a draft's coupon
template and promotion forms with the rule set's refusals next to the field, a
cart tried as the till prices it, publishing, YAML import and export, and who
may do what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.domain.pricing import model as m
from loyalpos.service.admin import demo
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout
from tests.conftest import Clock

PROMO = {
    "id": "ten-off-50",
    "name": "满50减10",
    "kind": "threshold",
    "threshold_fen": "5000",
    "amount_fen": "1000",
}


@pytest.fixture
def app_ctx(ctx: Context) -> Iterator[tuple[TestClient, Context]]:
    demo.seed(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c, ctx


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _sign_in(c: TestClient, login: str) -> str:
    page = c.get("/console/sign-in")
    form = {"csrf": _csrf(page.text), "brand": "demo", "login": login}
    c.post("/console/sign-in", data={**form, "password": "demo-password"})
    return _csrf(c.get("/console").text)


def _new_draft(c: TestClient, csrf: str) -> int:
    answer = c.post("/console/rules/drafts", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def _brand(ctx: Context) -> int:
    return brands.brand_by_code(ctx, "demo").id


def test_versions_list_who_published_what_and_when(app_ctx: tuple[TestClient, Context]) -> None:
    c, ctx = app_ctx
    _sign_in(c, "analyst")
    page = c.get("/console/rules")
    assert page.status_code == 200
    assert 'data-version="1"' in page.text and "已发布" in page.text
    assert "规则" in page.text and "版本历史" in page.text
    assert "new-draft" not in page.text  # an analyst reads only
    one = c.get("/console/rules/1")
    assert one.status_code == 200 and "满减" in one.text or "优惠券模板" in one.text
    yaml = c.get("/console/rules/1/export")
    assert yaml.status_code == 200 and "attachment" in yaml.headers["content-disposition"]
    assert rulesets.export_yaml(ctx, _brand(ctx), 1) == yaml.text


def test_an_operator_adds_a_promotion_refused_first_then_tried_and_published(
    app_ctx: tuple[TestClient, Context], clock: Clock
) -> None:
    c, ctx = app_ctx
    csrf = _sign_in(c, "operator")
    version = _new_draft(c, csrf)
    draft = c.get(f"/console/rules/{version}")
    assert "草稿" in draft.text and "publish-form" in draft.text
    form = c.get(f"/console/rules/{version}/promotions/new")
    assert form.status_code == 200 and 'name="threshold_fen"' in form.text
    # a bad field: the message, in Chinese, next to it, and nothing saved
    bad = c.post(
        f"/console/rules/{version}/promotions",
        data={"csrf": csrf, **PROMO, "threshold_fen": "-5"},
    )
    assert bad.status_code == 400
    assert 'id="threshold_fen-error"' in bad.text and "不能小于 0" in bad.text
    assert 'value="-5"' in bad.text
    # a whole-template refusal lands next to its field too
    bad = c.post(
        f"/console/rules/{version}/promotions",
        data={"csrf": csrf, **PROMO, "amount_fen": "9000"},
    )
    assert bad.status_code == 400 and 'id="amount_fen-error"' in bad.text
    assert "减免金额不能超过门槛" in bad.text
    before = rulesets.get(ctx, _brand(ctx), 1).document.promotions
    assert rulesets.get(ctx, _brand(ctx), version).document.promotions == before
    saved = c.post(
        f"/console/rules/{version}/promotions",
        data={"csrf": csrf, **PROMO},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    doc = rulesets.get(ctx, _brand(ctx), version).document
    assert [p.id for p in doc.promotions][-1] == "ten-off-50"
    # changing it keeps one promotion with this id
    edit = c.get(f"/console/rules/{version}/promotions/ten-off-50")
    assert 'value="5000"' in edit.text
    c.post(
        f"/console/rules/{version}/promotions",
        data={"csrf": csrf, **PROMO, "replaces": "ten-off-50", "amount_fen": "1200"},
    )
    doc = rulesets.get(ctx, _brand(ctx), version).document
    assert [p.amount_fen for p in doc.promotions if p.id == "ten-off-50"] == [1200]

    # try a cart: the till's quote of the draft, not of the version in force
    tried = c.get(
        f"/console/rules/{version}/try",
        params={"store": "SH001", "lines": "cake 6000 1 bakery"},
    )
    assert tried.status_code == 200, tried.text
    assert 'id="tried"' in tried.text and "满50减10" in tried.text
    lines = (m.CartLine("cake", "bakery", 6000, 1),)
    sh = next(s.id for s in brands.list_stores(ctx, _brand(ctx)) if s.code == "SH001")
    req = checkout.CartRequest(sh, lines)
    till = checkout.quote(ctx, _brand(ctx), req).as_json()
    draft_quote = checkout.quote_with_rules(
        ctx, _brand(ctx), req, rulesets.trial(rulesets.get(ctx, _brand(ctx), version))
    ).as_json()
    assert f"¥{draft_quote['payable_fen'] / 100:.2f}" in tried.text
    assert "ten-off-50" not in [a["benefit"] for a in till["applied"]]
    assert "ten-off-50" in [a["benefit"] for a in draft_quote["applied"]]
    bad_cart = c.get(
        f"/console/rules/{version}/try", params={"store": "SH001", "lines": "latte x 2"}
    )
    assert bad_cart.status_code == 400 and 'id="lines-error"' in bad_cart.text

    # publish in an hour (the brand's time): the till applies it from then on
    zone = brands.get_brand(ctx, _brand(ctx)).timezone
    start = (clock.now + timedelta(hours=1)).astimezone(ZoneInfo(zone))
    bad = c.post(f"/console/rules/{version}/publish", data={"csrf": csrf, "effective_from": "soon"})
    assert bad.status_code == 400 and 'id="effective_from-error"' in bad.text
    done = c.post(
        f"/console/rules/{version}/publish",
        data={"csrf": csrf, "effective_from": start.strftime("%Y-%m-%dT%H:%M")},
        follow_redirects=False,
    )
    assert done.status_code == 303
    published = rulesets.get(ctx, _brand(ctx), version)
    assert published.published_by == "operator" and published.effective_from is not None
    assert "ten-off-50" not in [
        a["benefit"] for a in checkout.quote(ctx, _brand(ctx), req).as_json()["applied"]
    ]
    clock.advance(hours=1, minutes=1)
    after = checkout.quote(ctx, _brand(ctx), req).as_json()
    assert "ten-off-50" in [a["benefit"] for a in after["applied"]]
    csrf = _sign_in(c, "operator")  # an hour idle signed the console out
    history = c.get("/console/rules")
    assert f'data-version="{version}"' in history.text and "operator" in history.text
    # the difference between the two versions
    diff = c.get("/console/rules/compare", params={"old": 1, "new": version})
    assert diff.status_code == 200 and "+  name: 满50减10" in diff.text
    # a published version is not changed by a form
    again = c.post(f"/console/rules/{version}/promotions", data={"csrf": csrf, **PROMO})
    assert again.status_code == 409


def test_a_coupon_template_with_scope_validity_and_budget(
    app_ctx: tuple[TestClient, Context],
) -> None:
    c, ctx = app_ctx
    csrf = _sign_in(c, "admin")
    version = _new_draft(c, csrf)
    form = {
        "csrf": csrf,
        "id": "coffee-88",
        "name": "咖啡88折",
        "kind": "percent",
        "percent": "88",
        "cap_fen": "2000",
        "scope_categories": "coffee, tea",
        "scope_exclude_skus": "beans",
        "valid_from": "2024-01-01T00:00",
        "valid_to": "2023-12-31T00:00",
        "limits_total_uses": "1000",
        "limits_per_member_day": "1",
        "with_points": "on",
        "return_policy": "threshold_broken",
    }
    bad = c.post(f"/console/rules/{version}/coupons", data=form)
    assert bad.status_code == 400 and 'id="valid_to-error"' in bad.text
    assert "必须晚于开始时间" in bad.text
    nopct = c.post(f"/console/rules/{version}/coupons", data={**form, "percent": ""})
    assert 'id="percent-error"' in nopct.text
    ok = c.post(
        f"/console/rules/{version}/coupons",
        data={**form, "valid_to": "2024-12-31T23:59"},
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    coupon = rulesets.get(ctx, _brand(ctx), version).document.coupons[-1]
    assert coupon.id == "coffee-88" and coupon.scope.categories == ["coffee", "tea"]
    assert coupon.limits.total_uses == 1000 and coupon.with_points
    assert coupon.return_policy == "threshold_broken"
    dup = c.post(f"/console/rules/{version}/coupons", data={**form, "valid_to": ""})
    assert dup.status_code == 400 and 'id="id-error"' in dup.text
    # a time window: weekdays, dates and hours of the store's day
    windowed = {
        **form,
        "id": "lunch",
        "valid_to": "2024-12-31T23:59",
        "scope_weekdays": "1, 3, 5",
        "scope_dates": "2024-06-18",
        "scope_hours": "25:00-14:00",
    }
    bad = c.post(f"/console/rules/{version}/coupons", data=windowed)
    assert bad.status_code == 400 and 'id="scope_hours-error"' in bad.text
    assert "10:00-14:00" in bad.text
    fixed = {**windowed, "scope_hours": "11:00-14:00"}
    ok = c.post(f"/console/rules/{version}/coupons", data=fixed, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    lunch = rulesets.get(ctx, _brand(ctx), version).document.coupons[-1]
    assert lunch.scope.weekdays == [1, 3, 5] and lunch.scope.hours == ["11:00-14:00"]
    assert [d.isoformat() for d in lunch.scope.dates] == ["2024-06-18"]
    edit = c.get(f"/console/rules/{version}/coupons/lunch")
    assert 'value="1, 3, 5"' in edit.text and 'value="11:00-14:00"' in edit.text


def test_yaml_import_makes_a_draft_and_errors_are_shown(
    app_ctx: tuple[TestClient, Context],
) -> None:
    c, ctx = app_ctx
    csrf = _sign_in(c, "operator")
    text = c.get("/console/rules/1/export").text
    answer = c.post(
        "/console/rules/import",
        data={"csrf": csrf, "comment": "再导入"},
        files={"file": ("rules.yaml", text.encode(), "application/yaml")},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    v = int(answer.headers["location"].rsplit("/", 1)[1])
    got = rulesets.get(ctx, _brand(ctx), v)
    assert got.comment == "再导入" and got.document == rulesets.get(ctx, _brand(ctx), 1).document
    wrong = c.post(
        "/console/rules/import",
        data={"csrf": csrf},
        files={"file": ("r.yaml", b"coupons:\n  - id: x\n    kind: cash\n", "application/yaml")},
    )
    assert wrong.status_code == 400 and 'id="file-error"' in wrong.text
    assert "coupons.0" in wrong.text
    empty = c.post("/console/rules/import", data={"csrf": csrf})
    assert empty.status_code == 400 and 'id="file-error"' in empty.text


def _refused(answer: httpx.Response) -> bool:
    return answer.status_code == 403 and "没有权限" in answer.text


def test_an_analyst_reads_but_every_write_is_refused(app_ctx: tuple[TestClient, Context]) -> None:
    c, ctx = app_ctx
    version = rulesets.draft_from(ctx, _brand(ctx)).version
    csrf = _sign_in(c, "analyst")
    assert c.get(f"/console/rules/{version}").status_code == 200
    assert "publish-form" not in c.get(f"/console/rules/{version}").text
    assert (
        c.get(
            f"/console/rules/{version}/try", params={"store": "SH001", "lines": "a 100 1"}
        ).status_code
        == 200
    )
    assert _refused(c.post("/console/rules/drafts", data={"csrf": csrf}))
    assert _refused(c.get(f"/console/rules/{version}/coupons/new"))
    assert _refused(c.post(f"/console/rules/{version}/coupons", data={"csrf": csrf, **PROMO}))
    assert _refused(
        c.post(
            f"/console/rules/{version}/publish",
            data={"csrf": csrf, "effective_from": "2024-01-01T00:00"},
        )
    )
    assert _refused(c.post("/console/rules/import", data={"csrf": csrf}))
    assert len(rulesets.versions(ctx, _brand(ctx))) == version
    assert rulesets.get(ctx, _brand(ctx), version).status is rulesets.Status.DRAFT


def test_a_store_manager_is_refused_and_a_form_without_its_token_too(
    app_ctx: tuple[TestClient, Context],
) -> None:
    c, ctx = app_ctx
    _sign_in(c, "manager.sh001")
    assert _refused(c.get("/console/rules"))
    assert "/console/rules" not in c.get("/console").text
    c.cookies.clear()
    _sign_in(c, "operator")
    assert c.post("/console/rules/drafts", data={"csrf": "forged"}).status_code == 403
    assert len(rulesets.versions(ctx, _brand(ctx))) == 1


def test_a_recent_orders_cart_is_picked_and_priced_for_its_member(
    app_ctx: tuple[TestClient, Context],
) -> None:
    c, ctx = app_ctx
    brand = _brand(ctx)
    sh = next(s.id for s in brands.list_stores(ctx, brand) if s.code == "SH001")
    member = checkout.MemberRef(phone="13800138000")
    cart = checkout.CartRequest(sh, (m.CartLine("latte", "coffee", 3200, 2),), member)
    q = checkout.quote(ctx, brand, cart)
    tender = checkout.Tender("cash", q.priced.quote.payable)
    checkout.confirm(ctx, brand, checkout.ConfirmRequest("R-1", cart, (tender,), "1001", "T1"))
    _sign_in(c, "analyst")
    page = c.get("/console/rules/1")
    assert 'data-order="R-1"' in page.text and "138****8000" in page.text
    link = re.search(r'href="(/console/rules/1/try\?[^"]+)"', page.text)
    assert link, page.text
    tried = c.get(link.group(1).replace("&amp;", "&"))
    assert tried.status_code == 200 and 'id="tried"' in tried.text
    assert "latte 3200 2 coffee" in tried.text
    assert f"¥{q.priced.quote.payable / 100:.2f}" in tried.text


def test_the_other_parts_forms_earning_tiers_campaigns_offset_rounding_stacking(
    app_ctx: tuple[TestClient, Context],
) -> None:
    c, ctx = app_ctx
    csrf = _sign_in(c, "operator")
    v = _new_draft(c, csrf)
    page = c.get(f"/console/rules/{v}")
    assert "积分规则" in page.text and f"/console/rules/{v}/parts/offset" in page.text

    def post(part: str, **form: str) -> httpx.Response:
        return c.post(f"/console/rules/{v}/parts/{part}", data={"csrf": csrf, **form})

    def doc() -> Any:
        return rulesets.get(ctx, _brand(ctx), v).document

    # an earning rule: a bad multiplier next to its field, then a good one
    assert c.get(f"/console/rules/{v}/parts/earn").status_code == 200
    form = {"id": "tea-x2", "kind": "category_rate", "scope_categories": "tea"}
    bad = post("earn", **form, multiplier="0")
    assert bad.status_code == 400 and 'id="multiplier-error"' in bad.text
    assert "必须大于 0" in bad.text
    one = post("earn", **form)  # no rate at all: said at the top
    assert one.status_code == 400 and "请只填写一个比例" in one.text
    assert post("earn", **form, multiplier="2").status_code == 200  # followed: the draft
    assert [r.id for r in doc().points.earn][-1] == "tea-x2"
    edit = c.get(f"/console/rules/{v}/parts/earn", params={"item": "tea-x2"})
    assert 'value="2"' in edit.text and 'value="tea"' in edit.text

    # a tier, a campaign issuing an unknown template refused, then a known one
    bad = post("tiers", id="platinum", name="铂金", min_spent_fen="x")
    assert bad.status_code == 400, bad.text[-3000:]
    assert post("tiers", id="platinum", name="铂金", min_spent_fen="900000").status_code == 200
    assert doc().tiers[-1].min_spent_fen == 900000
    bad = post("campaigns", id="welcome", trigger="first_order", issue="nope")
    assert bad.status_code == 400 and "要发放的优惠券模板不存在" in bad.text
    coupon = doc().coupons[0].id
    ok = post("campaigns", id="welcome", trigger="first_order", issue=coupon, points="50")
    assert ok.status_code == 200 and doc().campaigns[-1].points == 50

    # the single settings
    bad = post("offset", enabled="on", points_per_yuan="300", step="100")
    assert bad.status_code == 400 and "步长必须折合整分" in bad.text
    assert (
        post(
            "offset", enabled="on", points_per_yuan="100", step="100", cap_percent="50"
        ).status_code
        == 200
    )
    offset = doc().points.offset
    assert offset is not None and offset.cap_percent == 50
    assert post("change_rounding", default="fen", stores="SH001=jiao").status_code == 200
    assert doc().change_rounding.stores == {"SH001": "jiao"}
    bad = post("change_rounding", default="fen", stores="SH001=yuan")
    assert bad.status_code == 400 and 'id="stores-error"' in bad.text
    ok = post(
        "stacking", max_coupons="3", threshold_base="original", forbidden_pairs="threshold, percent"
    )
    assert ok.status_code == 200 and doc().stacking.forbidden_pairs == [["threshold", "percent"]]
    assert post("member_prices", tiers="silver=95").status_code == 200
    assert doc().member_prices.tiers == {"silver": 95}
    prices = "latte: gold=2800, silver=3000; beans: gold=9000"
    assert post("member_prices", tiers="silver=95", items=prices).status_code == 200
    assert doc().member_prices.items == {
        "latte": {"gold": 2800, "silver": 3000},
        "beans": {"gold": 9000},
    }
    shown = c.get(f"/console/rules/{v}/parts/member_prices")
    assert "latte: gold=2800, silver=3000; beans: gold=9000" in shown.text
    bad = post("member_prices", items="latte: gold=cheap")
    assert bad.status_code == 400 and 'id="items-error"' in bad.text
    # an analyst is refused the forms
    c.cookies.clear()
    csrf = _sign_in(c, "analyst")
    assert _refused(c.get(f"/console/rules/{v}/parts/tiers"))
    assert _refused(post("tiers", id="x", min_spent_fen="1"))
