"""The brand's checkout settings in its rule set (`checkout`: require_member,
skip_reasons) and `checkout.till_settings`, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.rules import convert
from loyalpos.rules.schema import DEFAULT_SKIP_REASONS, CheckoutDoc, RuleSetDoc
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout
from loyalpos.service.till.checkout import TillSettings
from tests.conftest import Clock

STRICT = """
checkout:
  require_member: true
  skip_reasons: [顾客未携带会员码, 其他]
"""


def test_without_rules_the_till_has_the_defaults(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    found = checkout.till_settings(ctx, brand.id)
    assert found == TillSettings(False, DEFAULT_SKIP_REASONS)
    assert DEFAULT_SKIP_REASONS == ("顾客未携带会员码", "顾客不愿注册", "系统无法识别", "其他")
    with pytest.raises(NotFound):
        checkout.till_settings(ctx, 987_654)


def test_the_published_version_in_force_governs(ctx: Context, clock: Clock) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    other = brands.create_brand(ctx, "o", "O")
    draft = rulesets.save_draft(ctx, brand.id, STRICT)
    assert checkout.till_settings(ctx, brand.id).require_member is False  # a draft governs nothing
    later = clock.now + timedelta(days=1)
    rulesets.publish(ctx, brand.id, draft.version, effective_from=later)
    assert checkout.till_settings(ctx, brand.id, now=later - timedelta(seconds=1)) == TillSettings(
        False, DEFAULT_SKIP_REASONS
    )
    assert checkout.till_settings(ctx, brand.id, now=later) == TillSettings(
        True, ("顾客未携带会员码", "其他")
    )
    assert checkout.till_settings(ctx, other.id, now=later).require_member is False
    # The block goes out with the export and comes back in.
    exported = rulesets.export_yaml(ctx, brand.id, draft.version)
    assert "require_member: true" in exported
    again = convert.parse_rule_set(convert.load_text(exported))
    assert again.checkout == CheckoutDoc(
        require_member=True, skip_reasons=["顾客未携带会员码", "其他"]
    )
    assert rulesets.as_json(again)["checkout"] == {
        "require_member": True,
        "skip_reasons": ["顾客未携带会员码", "其他"],
    }


def test_defaults_are_left_out_of_exports() -> None:
    assert convert.dump_yaml(RuleSetDoc()) == "{}\n"
    assert "checkout" not in rulesets.as_json(RuleSetDoc(checkout=CheckoutDoc()))


@pytest.mark.parametrize(
    ("checkout_block", "field"),
    [
        ({"require_member": "yes"}, "checkout.require_member"),
        ({"require_member": 1}, "checkout.require_member"),
        ({"skip_reasons": []}, "checkout.skip_reasons"),
        ({"skip_reasons": [""]}, "checkout.skip_reasons.0"),
        ({"skip_reasons": ["  "]}, "checkout.skip_reasons"),
        ({"skip_reasons": ["x" * 41]}, "checkout.skip_reasons.0"),
        ({"skip_reasons": [f"r{i}" for i in range(21)]}, "checkout.skip_reasons"),
        ({"skip_reasons": ["其他", "其他"]}, "checkout.skip_reasons"),
        ({"skip_reasons": ["a\nb"]}, "checkout.skip_reasons"),
        ({"skip_reasons": ["a\x00b"]}, "checkout.skip_reasons"),
        ({"skip_reasons": [3]}, "checkout.skip_reasons.0"),
        ({"require_member": True, "skip": []}, "checkout.skip"),
    ],
)
def test_a_wrong_checkout_block_is_refused_naming_the_field(
    ctx: Context, checkout_block: dict[str, object], field: str
) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    with pytest.raises(InvalidInput) as exc:
        rulesets.save_draft(ctx, brand.id, {"checkout": checkout_block})
    assert exc.value.code == "invalid_rules"
    assert exc.value.detail["field"] == field
    assert rulesets.versions(ctx, brand.id) == []


def test_twenty_reasons_of_forty_characters_are_fine(ctx: Context) -> None:
    brand = brands.create_brand(ctx, "b", "B")
    reasons = [f"{i:02d}" + "因" * 38 for i in range(20)]
    v = rulesets.save_draft(ctx, brand.id, {"checkout": {"skip_reasons": reasons}})
    rulesets.publish(ctx, brand.id, v.version, effective_from=datetime(2020, 1, 1, tzinfo=UTC))
    assert checkout.till_settings(ctx, brand.id).skip_reasons == tuple(reasons)
