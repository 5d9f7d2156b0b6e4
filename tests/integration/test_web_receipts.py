"""The receipt print view (GET /till/receipts/{order_no}) over HTTP in process,
on orders booked through the checkout service at the demo brand."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import segno
from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.domain.pricing.model import CartLine, Options
from loyalpos.service.admin import demo
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.events import worker
from loyalpos.service.loyalty import coupons, members, points
from loyalpos.service.till import checkout, receipts, refunds
from loyalpos.service.till.checkout import CartRequest, ConfirmRequest, MemberRef, Tender
from loyalpos.service.till.refunds import RefundLine, RefundRequest
from loyalpos.web.receipts import claim_qr_svg, claim_uri


@dataclass(frozen=True)
class Demo:
    brand: brands.Brand
    sh001: int
    bj001: int


@pytest.fixture
def shop(ctx: Context) -> Demo:
    brand = demo.seed(ctx)
    stores = {s.code: s.id for s in brands.list_stores(ctx, brand.id)}
    return Demo(brand, stores["SH001"], stores["BJ001"])


@pytest.fixture
def client(ctx: Context, shop: Demo) -> Iterator[TestClient]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c


def _sign_in(client: TestClient) -> None:
    page = client.get("/till/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    form = {"csrf": found.group(1), "brand": "demo", "store": "SH001", "number": "1001"}
    answer = client.post("/till/sign-in", data={**form, "pin": "1234"}, follow_redirects=False)
    assert answer.status_code == 303


def _book(
    ctx: Context,
    shop: Demo,
    order_no: str,
    lines: list[tuple[str, str, int, int, str]],
    *,
    member: int | None = None,
    points_used: int = 0,
    store: int | None = None,
    cash: int = 0,
) -> dict[str, Any]:
    """Quote, then confirm what the quote chose, paid by WeChat Pay (after `cash`)."""
    cart = CartRequest(
        store or shop.sh001,
        tuple(
            CartLine(sku, category, price, qty, name) for sku, category, price, qty, name in lines
        ),
        MemberRef(member_id=member) if member is not None else None,
        Options(points=points_used) if points_used else Options(),
    )
    q = checkout.quote(ctx, shop.brand.id, cart).priced.quote
    req = ConfirmRequest(
        order_no=order_no,
        cart=cart,
        tenders=((Tender("cash", cash),) if cash else ())
        + (Tender("wechat", q.payable - cash, f"wx-{order_no}"),),
        cashier="1001",
        terminal="T1",
        coupon_ids=tuple(int(a.coupon_id) for a in q.applied if a.coupon_id is not None),
        points=q.points_redeemed,
    )
    return checkout.confirm(ctx, shop.brand.id, req).receipt


LATTES = [("latte", "coffee", 3200, 2, "拿铁")]


def _member_order(ctx: Context, shop: Demo) -> tuple[int, dict[str, Any]]:
    member = members.register(ctx, shop.brand.id, phone="13611112345", name="赵六").id
    points.earn(ctx, shop.brand.id, member, 1000, points.Source("import", "opening"))
    booked = _book(ctx, shop, "R-1001", LATTES, member=member, points_used=500)
    worker.dispatch_outbox(ctx)  # the after-purchase campaigns (首单礼 gives 满100减15)
    return member, booked


def test_a_member_orders_receipt_has_lines_benefits_points_and_new_coupons(
    ctx: Context, shop: Demo, client: TestClient
) -> None:
    member, booked = _member_order(ctx, shop)
    # The second latte is half price (第二杯半价); 500 points take ¥5 off.
    assert booked["discount_fen"] == 1600 and booked["points_offset_fen"] == 500
    assert booked["payable_fen"] == 4300
    earned = booked["points_earned"]
    assert earned > 0
    # Points given after the order do not change what its receipt says.
    points.earn(ctx, shop.brand.id, member, 7, points.Source("import", "later"))

    r = receipts.receipt(ctx, shop.brand.id, shop.sh001, "R-1001")
    assert (r.subtotal, r.discount, r.points_offset, r.rounding, r.payable) == (
        6400,
        1600,
        500,
        0,
        4300,
    )
    assert [(x.name, x.qty, x.unit_price, x.subtotal, x.discount) for x in r.lines] == [
        ("拿铁", 2, 3200, 6400, 1600)
    ]
    assert [(b.name, b.saving) for b in r.benefits] == [("第二杯半价", 1600)]
    assert [(t.method, t.amount) for t in r.tenders] == [("wechat", 4300)]
    assert r.member is not None and r.member.phone_masked == "136****2345"
    assert r.member.points_balance_after == 1000 - 500 + earned
    assert (r.points_earned, r.points_redeemed) == (earned, 500)
    assert [(c.name, c.campaign) for c in r.new_coupons] == [("满100减15", "首单礼")]
    assert r.ordered_at.isoformat() == "2024-01-01T12:00:00+08:00"  # 04:00 UTC in Shanghai
    assert r.cashier_name == "收银员小王 (demo cashier)" and r.claim is None

    _sign_in(client)
    page = client.get("/till/receipts/R-1001")
    assert page.status_code == 200
    text = page.text
    assert "演示咖啡 Demo Coffee" in text and "上海南京西路店" in text
    assert "2024-01-01 12:00:00" in text
    assert "拿铁" in text and "64.00" in text and "-16.00" in text
    assert "第二杯半价" in text
    assert "积分抵扣（500 积分）" in text and "-5.00" in text
    assert "¥43.00" in text and "微信支付" in text
    assert "赵六" in text and "136****2345" in text and "13611112345" not in text
    assert f"+{earned}<" in text
    assert f'<span class="balance">{1000 - 500 + earned}</span>' in text
    assert "本单获赠优惠券" in text and "满100减15" in text and "首单礼" in text
    assert "<svg" not in text  # a member's order has nothing to claim
    assert '<button type="button" data-print autofocus>打印</button>' in text
    script = re.search(r'src="(/static/[0-9a-f]+/receipt\.js)"', text)
    assert script and "window.print()" in client.get(script.group(1)).text
    english = client.get("/till/receipts/R-1001?lang=en").text
    assert "Points balance" in english and "WeChat Pay" in english and ">Print<" in english


def test_a_coupon_the_rounding_and_two_tenders_are_on_the_receipt(
    ctx: Context, shop: Demo, client: TestClient
) -> None:
    zhang = members.by_phone(ctx, shop.brand.id, "13800138000")  # a demo member, 1200 points
    coupon = coupons.issue_to_member(ctx, shop.brand.id, zhang.id, "cash10").id
    lines = [("latte", "coffee", 3200, 1, "拿铁"), ("croissant", "bakery", 1855, 1, "牛角包")]
    booked = _book(ctx, shop, "R-5001", lines, member=zhang.id, cash=1500)
    # 50.55 less the ¥10 voucher is 40.55; the demo's 抹零 (jiao) takes the 0.55 off.
    assert (booked["payable_fen"], booked["rounding_fen"]) == (4000, 55)
    r = receipts.receipt(ctx, shop.brand.id, shop.sh001, "R-5001")
    assert [(b.name, b.saving, b.coupon_id) for b in r.benefits] == [
        ("10元代金券", 1000, coupon),
        ("抹零", 55, None),
    ]
    assert (r.subtotal, r.discount, r.rounding, r.payable) == (5055, 1055, 55, 4000)
    assert sum(x.discount for x in r.lines) == r.discount
    assert [(t.method, t.amount) for t in r.tenders] == [("cash", 1500), ("wechat", 2500)]
    assert r.member is not None
    assert r.member.points_balance_after == 1200 + booked["points_earned"]
    _sign_in(client)
    text = client.get("/till/receipts/R-5001").text
    assert "10元代金券" in text and "-10.00" in text
    assert "抹零" in text and "-0.55" in text and "-10.55" in text and "¥40.00" in text
    english = client.get("/till/receipts/R-5001?lang=en").text
    assert "<span>Rounding</span><span>-0.55</span>" in english
    assert "现金" in text and "15.00" in text and "25.00" in text


def test_an_anonymous_orders_receipt_has_the_claim_code_and_its_qr(
    ctx: Context, shop: Demo, client: TestClient
) -> None:
    booked = _book(ctx, shop, "R-2001", [("americano", "coffee", 2800, 1, "美式咖啡")])
    token = booked["claim_token"]
    assert token and booked["member_id"] is None
    r = receipts.receipt(ctx, shop.brand.id, shop.sh001, "R-2001")
    assert r.claim is not None and r.claim.token == token and not r.claim.claimed
    assert r.claim.points > 0 and r.member is None

    _sign_in(client)
    text = client.get("/till/receipts/R-2001").text
    assert f'<strong class="token">{token}</strong>' in text
    assert f"扫码领取本单 {r.claim.points} 积分" in text
    svg = re.search(r'<figure class="qr-code"[^>]*>(<svg.*?</svg>)</figure>', text, re.S)
    assert svg, text
    # The QR is the one of the claim URI: the same symbol segno draws for it.
    assert claim_uri("demo", token) == f"loyalpos:claim?brand=demo&token={token}"
    assert svg.group(1) == str(claim_qr_svg("demo", token))
    assert segno.make(claim_uri("demo", token), error="m").designator == "3-M"

    # Once claimed, the reprint says so and has no QR to scan.
    members.register(ctx, shop.brand.id, phone="13622223333", name="钱七", claim_token=token)
    again = client.get("/till/receipts/R-2001").text
    assert "本单积分已领取" in again and "<svg" not in again


def test_a_refunded_order_says_so(ctx: Context, shop: Demo, client: TestClient) -> None:
    lines = [("latte", "coffee", 3200, 1, "拿铁"), ("croissant", "bakery", 1800, 1, "牛角包")]
    _book(ctx, shop, "R-6001", lines)
    req = RefundRequest(shop.sh001, "R-6001", "RF-1", "1001", (RefundLine(2, 1),))
    refunds.refund(ctx, shop.brand.id, req)
    r = receipts.receipt(ctx, shop.brand.id, shop.sh001, "R-6001")
    assert (r.status, r.refunded) == ("partially_refunded", 1800)
    _sign_in(client)
    assert "部分退款：¥18.00" in client.get("/till/receipts/R-6001").text
    refunds.refund(
        ctx, shop.brand.id, RefundRequest(shop.sh001, "R-6001", "RF-2", "1001", (RefundLine(1, 1),))
    )
    assert ">已退款<" in client.get("/till/receipts/R-6001").text


def test_another_stores_order_and_an_unknown_one_are_404(
    ctx: Context, shop: Demo, client: TestClient
) -> None:
    _book(ctx, shop, "BJ-1", LATTES, store=shop.bj001)
    _sign_in(client)  # a cashier of SH001
    for order_no in ("BJ-1", "NO-SUCH"):
        answer = client.get(f"/till/receipts/{order_no}")
        assert answer.status_code == 404
        assert f"本店没有单号为 {order_no} 的订单" in answer.text
    english = client.get("/till/receipts/BJ-1?lang=en")
    assert "This store has no order with the number BJ-1." in english.text


def test_without_a_signed_in_cashier_it_redirects_to_sign_in(
    ctx: Context, shop: Demo, client: TestClient
) -> None:
    _book(ctx, shop, "R-3001", LATTES)
    answer = client.get("/till/receipts/R-3001", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/till/sign-in"


def test_paper_58_and_80_select_different_widths_and_others_are_400(
    ctx: Context, shop: Demo, client: TestClient
) -> None:
    _book(ctx, shop, "R-4001", LATTES)
    _sign_in(client)
    default = client.get("/till/receipts/R-4001").text
    narrow = client.get("/till/receipts/R-4001?paper=58").text
    wide = client.get("/till/receipts/R-4001?paper=80").text
    assert 'class="receipt paper-58"' in narrow and 'class="receipt paper-58"' in default
    assert 'class="receipt paper-80"' in wide
    css_url = re.search(r'href="(/static/[0-9a-f]+/receipt\.css)"', wide)
    assert css_url
    css = client.get(css_url.group(1)).text
    assert re.search(r"\.receipt\.paper-58 \{ width: 58mm; page: paper58;", css)
    assert re.search(r"\.receipt\.paper-80 \{ width: 80mm; page: paper80;", css)
    assert "@page paper58 { size: 58mm 297mm" in css and "@page paper80 { size: 80mm 297mm" in css
    assert re.search(r"@media print \{\s*\.no-print \{ display: none; \}", css)
    bad = client.get("/till/receipts/R-4001?paper=76")
    assert bad.status_code == 400
    assert "纸宽只能是 58 或 80（毫米），此链接要的是 76" in bad.text
