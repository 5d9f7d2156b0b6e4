"""`loyalpos simulate FILE`: one document in (rules, member, cart, options),
the quote out as JSON. HQ uses it to try a rule before publishing it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, ValidationError

from loyalpos import integers as whole
from loyalpos.domain.pricing import model as m
from loyalpos.domain.pricing.engine import quote
from loyalpos.rules import convert, documents
from loyalpos.rules.schema import Fen, Model, RuleSetDoc


class WalletCouponDoc(Model):
    id: Annotated[str, Field(min_length=1, max_length=64)]
    template: str
    expires_at: datetime | None = None
    valid_from: datetime | None = None


Uses = Annotated[int, whole.count(ge=0)]
Balance = Annotated[int, whole.points(ge=0)]


class UsageDoc(Model):
    day: Uses = 0
    week: Uses = 0
    month: Uses = 0


class MemberDoc(Model):
    tier: str | None = None
    points: Balance = 0
    first_order: StrictBool = False
    wallet: Annotated[list[WalletCouponDoc], Field(max_length=1000)] = []
    usage: dict[str, UsageDoc] = {}


class LineDoc(Model):
    sku: Annotated[str, Field(min_length=1, max_length=64)]
    category: str = ""
    name: str = ""
    unit_price_fen: Fen
    qty: Annotated[int, whole.count(ge=1, le=10_000)]


class CartDoc(Model):
    store: str
    time: datetime = Field(description="the store's local time, e.g. 2024-06-08T12:00")
    lines: Annotated[list[LineDoc], Field(min_length=1, max_length=500)]


class BudgetDoc(Model):
    uses: Uses | None = None
    discount_fen: Annotated[int, whole.fen(ge=0)] | None = None


class OptionsDoc(Model):
    points: Annotated[
        Literal["none", "max"] | int, whole.WordOrWhole(("none", "max"), whole.points(ge=0))
    ] = "none"
    strategy: Literal["max_saving", "earliest_expiry"] = "max_saving"
    force: list[str] = []
    exclude: list[str] = []
    skip_all: StrictBool = False
    budgets: dict[str, BudgetDoc] = {}


class SimulationDoc(Model):
    rules: RuleSetDoc
    member: MemberDoc = MemberDoc()
    cart: CartDoc
    options: OptionsDoc = OptionsDoc()


def _naive(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=None) if t is not None else None


def to_domain(doc: SimulationDoc) -> tuple[m.MemberContext, m.Cart, m.Options]:
    member = m.MemberContext(
        tier=doc.member.tier,
        points=doc.member.points,
        first_order=doc.member.first_order,
        wallet=tuple(
            m.WalletCoupon(c.id, c.template, _naive(c.expires_at), _naive(c.valid_from))
            for c in doc.member.wallet
        ),
        usage={k: m.Usage(u.day, u.week, u.month) for k, u in doc.member.usage.items()},
    )
    cart = m.Cart(
        doc.cart.store,
        doc.cart.time.replace(tzinfo=None),
        tuple(
            m.CartLine(x.sku, x.category, x.unit_price_fen, x.qty, x.name) for x in doc.cart.lines
        ),
    )
    o = doc.options
    points: m.PointsRequest | int = (
        m.PointsRequest(o.points) if isinstance(o.points, str) else o.points
    )
    options = m.Options(
        points=points,
        strategy=m.Strategy(o.strategy),
        force=tuple(o.force),
        exclude=tuple(o.exclude),
        skip_all=o.skip_all,
        budgets={k: m.Remaining(b.uses, b.discount_fen) for k, b in o.budgets.items()},
    )
    return member, cart, options


def points_rules_json(rules: tuple[m.PointsRule, ...]) -> list[dict[str, Any]]:
    """The earning rules behind a quote's points, as the quote, the receipt and
    the points history show them."""
    return [
        {
            "rule": r.rule,
            "kind": r.kind,
            "description": r.description,
            "factor": r.factor,
            "points": r.points,
            "paid_fen": r.paid,
            "zh": r.zh,
            "en": r.en,
        }
        for r in rules
    ]


def applied_json(q: m.Quote) -> list[dict[str, Any]]:
    return [
        {
            "coupon_id": a.coupon_id,
            "benefit": a.benefit,
            "name": a.name,
            "kind": a.kind,
            "saving_fen": a.saving,
        }
        for a in q.applied
    ]


def lines_json(q: m.Quote) -> list[dict[str, Any]]:
    return [
        {
            "sku": x.sku,
            "qty": x.qty,
            "subtotal_fen": x.subtotal,
            "discount_fen": x.discount,
            "points_offset_fen": x.points_offset,
            "payable_fen": x.payable,
            "points_earned": x.points_earned,
        }
        for x in q.lines
    ]


def quote_json(q: m.Quote) -> dict[str, Any]:
    return {
        "subtotal_fen": q.subtotal,
        "discount_fen": q.discount,
        "points_redeemed": q.points_redeemed,
        "points_offset_fen": q.points_offset,
        "rounding_fen": q.rounding,
        "payable_fen": q.payable,
        "points_earned": q.points_earned,
        "applied": applied_json(q),
        "unusable": [
            {
                "coupon_id": u.coupon_id,
                "template": u.template,
                "name": u.name,
                "reason_code": u.reason_code,
                "message": u.message_zh,
                "message_en": u.message_en,
                "detail": u.detail,
            }
            for u in q.unusable
        ],
        "lines": lines_json(q),
        "points_rules": points_rules_json(q.points_rules),
        "explanation": [
            {"code": n.code, "zh": n.zh, "en": n.en, "detail": n.detail} for n in q.explanation
        ],
        "debug": dict(q.debug),
    }


def simulate(data: Any) -> dict[str, Any]:
    """Validate a simulation document and price it. The document limits
    (rules/documents.py) come first, for a body the API has parsed as well."""
    documents.check_shape(data)
    try:
        doc = SimulationDoc.model_validate(data)
    except ValidationError as exc:
        raise convert.validation_problem(exc, code="invalid_simulation") from None
    member, cart, options = to_domain(doc)
    return quote_json(quote(convert.rule_set(doc.rules), member, cart, options))


def simulate_text(text: str) -> dict[str, Any]:
    return simulate(convert.load_text(text))
