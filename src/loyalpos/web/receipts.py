"""The receipt (小票) of an order, as a page to print on a thermal printer.

`GET /till/receipts/{order_no}?paper=58|80`: the signed-in cashier's store's
order, laid out for 58 mm or 80 mm paper (static/receipt.css; 58 mm when not
asked, since it also fits an 80 mm roll). The browser's print dialog prints it
(the 打印 button, not printed itself). An anonymous order that earned points
carries its claim code (先消费后建档) as text and as a QR code (`claim_uri`).
"""

from __future__ import annotations

from urllib.parse import urlencode

import segno
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from loyalpos.domain.errors import NotFound
from loyalpos.domain.money import yuan
from loyalpos.service.till import receipts
from loyalpos.web.render import ctx_of, gettext_for, page, problem_page, till_session

router = APIRouter(include_in_schema=False)

PAPERS = ("58", "80")  # roll widths in mm; receipt.css has a layout for each


def claim_uri(brand_code: str, token: str) -> str:
    """What the claim QR code says: `loyalpos:claim?brand=<brand code>&token=<code>`.

    A URI of its own scheme rather than a web address: no public URL of the
    member app is configured anywhere, and a scheme the brand's member app (or
    mini program) registers lets it read the code with its scanner, take the
    brand from it, and send the token to `POST /v1/members/{id}/claims` (or
    `claim_token` of `POST /v1/members` for a new member). Any other scanner
    shows the text, in which the printed code is plain to see. The token alone
    would not say which brand's app it is for."""
    return "loyalpos:claim?" + urlencode({"brand": brand_code, "token": token})


def claim_qr_svg(brand_code: str, token: str) -> Markup:
    """The claim QR as inline SVG, sized by the stylesheet (no width/height)."""
    qr = segno.make(claim_uri(brand_code, token), error="m")
    # segno writes only its own path data: nothing of the input reaches the markup.
    return Markup(qr.svg_inline(scale=1, border=4, omitsize=True, svgclass="qr"))


@router.get("/till/receipts/{order_no}")
def receipt_page(request: Request, order_no: str, paper: str = "58") -> Response:
    session = till_session(request)
    if session is None:
        return RedirectResponse("/till/sign-in", status_code=303)
    _ = gettext_for(request)
    if paper not in PAPERS:
        message = _("The paper width must be 58 or 80 (mm); this link asked for %(paper)s.") % {
            "paper": paper
        }
        return problem_page(request, 400, _("Unknown paper width"), message)
    person = session.staff
    try:
        found = receipts.receipt(ctx_of(request), person.brand_id, person.store_id, order_no)
    except NotFound:
        message = _("This store has no order with the number %(order_no)s.") % {
            "order_no": order_no
        }
        return problem_page(request, 404, _("Receipt not found"), message)
    qr = None
    if found.claim is not None and not found.claim.claimed:
        qr = claim_qr_svg(found.brand_code, found.claim.token)
    methods = {
        "cash": _("Cash"),
        "bank_card": _("Bank card"),
        "wechat": _("WeChat Pay"),
        "alipay": _("Alipay"),
        "stored_value": _("Stored value"),
        "other": _("Other"),
    }
    return page(
        request,
        "receipt.html",
        r=found,
        paper=paper,
        papers=PAPERS,
        qr=qr,
        methods=methods,
        yuan=yuan,
    )
