"""From the validated document to the engine's domain classes, and back to text."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import yaml
from pydantic import ValidationError

from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.pricing import rules as d
from loyalpos.rules import documents
from loyalpos.rules import schema as s


def _frac(value: Decimal) -> Fraction:
    return Fraction(value)


def _hundredths(percent: Decimal) -> int:
    return int(percent * 100)


def scope(doc: s.ScopeDoc) -> d.Scope:
    return d.Scope(
        stores=frozenset(doc.stores),
        exclude_stores=frozenset(doc.exclude_stores),
        categories=frozenset(doc.categories),
        exclude_categories=frozenset(doc.exclude_categories),
        skus=frozenset(doc.skus),
        exclude_skus=frozenset(doc.exclude_skus),
        tiers=frozenset(doc.tiers),
        window=d.TimeWindow(
            weekdays=frozenset(doc.weekdays),
            dates=frozenset(doc.dates),
            hours=tuple(s.parse_hours(h) for h in doc.hours),
        ),
    )


def _rate(points_per_yuan: Decimal | None, yuan_per_point: Decimal | None) -> Fraction:
    """Points per 分."""
    if points_per_yuan is not None:
        return _frac(points_per_yuan) / 100
    assert yuan_per_point is not None
    return 1 / (_frac(yuan_per_point) * 100)


def earn_rule(doc: s.EarnDoc) -> d.EarnRule:
    common: dict[str, Any] = {
        "id": doc.id,
        "kind": d.EarnKind(doc.kind),
        "scope": scope(doc.scope),
        "description": doc.description,
    }
    if isinstance(doc, s.BaseEarn):
        return d.EarnRule(**common, rate=_rate(doc.points_per_yuan, doc.yuan_per_point))
    if isinstance(doc, s.TierMultiplierEarn):
        return d.EarnRule(
            **common, tier_multipliers={t: _frac(m) for t, m in doc.multipliers.items()}
        )
    if isinstance(doc, s.CategoryRateEarn):
        if doc.multiplier is not None:
            return d.EarnRule(**common, multiplier=_frac(doc.multiplier))
        return d.EarnRule(**common, rate=_rate(doc.points_per_yuan, doc.yuan_per_point))
    if isinstance(doc, s.TimeMultiplierEarn):
        return d.EarnRule(**common, multiplier=_frac(doc.multiplier))
    if isinstance(doc, s.ThresholdBonusEarn):
        return d.EarnRule(**common, steps=tuple((x.spend_fen, x.points) for x in doc.steps))
    if isinstance(doc, s.FirstOrderEarn):
        return d.EarnRule(**common, points=doc.points)
    return d.EarnRule(**common)


def benefit(doc: s.BenefitDoc, promotion: bool) -> d.Benefit:
    limits = doc.limits
    return d.Benefit(
        id=doc.id,
        name=doc.name or doc.id,
        kind=d.Kind(doc.kind),
        scope=scope(doc.scope),
        promotion=promotion,
        threshold=doc.threshold_fen,
        threshold_items=doc.threshold_items,
        amount=doc.amount_fen,
        step=doc.step_fen,
        cap=doc.cap_fen,
        percent=_hundredths(doc.percent) if doc.percent is not None else 10000,
        sku=doc.sku,
        price=doc.price_fen,
        bundle=tuple(doc.bundle),
        nth=doc.nth,
        nth_group=d.NthGroup(doc.nth_group),
        n=doc.n,
        threshold_base=d.ThresholdBase(doc.threshold_base) if doc.threshold_base else None,
        exclusive=doc.exclusive,
        with_points=doc.with_points,
        max_per_order=doc.max_per_order,
        priority=doc.priority,
        points_multiplier=_frac(doc.points_multiplier) if doc.points_multiplier else None,
        valid_from=doc.valid_from.replace(tzinfo=None) if doc.valid_from else None,
        valid_to=doc.valid_to.replace(tzinfo=None) if doc.valid_to else None,
        member_limit=d.MemberLimit(
            limits.per_member_day, limits.per_member_week, limits.per_member_month
        ),
        return_policy=d.ReturnPolicy(doc.return_policy),
    )


def rule_set(doc: s.RuleSetDoc) -> d.RuleSet:
    st = doc.stacking
    offset = doc.points.offset
    return d.RuleSet(
        earn=tuple(earn_rule(r) for r in doc.points.earn),
        points_rounding=d.PointsRounding(doc.points.rounding),
        benefits=tuple(
            [benefit(b, False) for b in doc.coupons] + [benefit(b, True) for b in doc.promotions]
        ),
        stacking=d.Stacking(
            max_coupons=st.max_coupons,
            threshold_base=d.ThresholdBase(st.threshold_base),
            exclusive_groups=tuple(frozenset(g) for g in st.exclusive_groups),
            forbidden_pairs=tuple((p[0], p[1]) for p in st.forbidden_pairs),
            order=tuple(d.Kind(k) for k in st.order) if st.order else d.Stacking().order,
        ),
        points_offset=d.PointsOffset(
            enabled=offset.enabled,
            points_per_unit=offset.points_per_yuan,
            unit_fen=100,
            cap_percent=_hundredths(offset.cap_percent),
            min_points=offset.min_points,
            step=offset.step,
        )
        if offset
        else d.PointsOffset(),
        member_prices=d.MemberPrices(
            item_prices={sku: dict(p) for sku, p in doc.member_prices.items.items()},
            tier_percent={t: _hundredths(p) for t, p in doc.member_prices.tiers.items()},
            scope=scope(doc.member_prices.scope),
        ),
        change_rounding=d.ChangeRounding(doc.change_rounding.default),
        store_change_rounding={
            k: d.ChangeRounding(v) for k, v in doc.change_rounding.stores.items()
        },
        tier_names={t.id: t.name or t.id for t in doc.tiers},
    )


def validation_problem(
    exc: ValidationError, prefix: str = "", code: str = "invalid_rules"
) -> InvalidInput:
    """The first pydantic error as an `InvalidInput` naming the field, all in detail."""
    problems = [
        {"field": ".".join(str(p) for p in (prefix, *e["loc"]) if p != ""), "message": e["msg"]}
        for e in exc.errors()
    ]
    first = problems[0]
    return InvalidInput(
        f"校验失败 (validation failed): {first['field']}: {first['message']}",
        code=code,
        field=first["field"],
        errors=problems,
    )


def parse_rule_set(data: Any) -> s.RuleSetDoc:
    """A rule set from plain data (a loaded file, a JSON body), within the
    document limits (rules/documents.py) before it is validated."""
    documents.check_shape(data)
    try:
        return s.RuleSetDoc.model_validate(data)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def load_text(text: str) -> Any:
    """YAML (a superset of JSON) to plain data; every problem, from a syntax error
    to a document too deep or too large, is an InvalidInput (rules/documents.py)."""
    return documents.load_text(text)


class _Dumper(yaml.SafeDumper):
    """Writes Decimals (rates, percentages) as plain YAML numbers, not strings."""


def _decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    if value == value.to_integral_value():
        return dumper.represent_scalar("tag:yaml.org,2002:int", str(int(value)))
    return dumper.represent_scalar("tag:yaml.org,2002:float", str(value.normalize()))


_Dumper.add_representer(Decimal, _decimal)


def dump_yaml(doc: s.RuleSetDoc) -> str:
    data = doc.model_dump(mode="python", exclude_defaults=True)
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
