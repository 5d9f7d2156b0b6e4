"""What a full refund does to a triggered campaign (issue 11, item 12): the pure
part (domain/campaigns.py, domain/ledger.py) and the rule-set field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loyalpos.domain.campaigns import (
    UNUSED_COUPON_STATES,
    Campaign,
    plan_revocation,
    revokes,
    skips,
)
from loyalpos.domain.ledger import reclaimable
from loyalpos.rules.schema import CampaignDoc, OnRefundDoc

ORDER_TRIGGERS = ["spend", "category", "first_order", "reactivated"]
STATES = ["issued", "locked", "used", "returned", "expired", "voided"]


@pytest.mark.parametrize("trigger", ORDER_TRIGGERS)
def test_by_default_order_triggers_skip_and_revoke(trigger: str) -> None:
    c = Campaign("c", trigger)
    assert skips(c, True) and not skips(c, False)
    assert revokes(c)


@pytest.mark.parametrize("trigger", ORDER_TRIGGERS)
def test_the_policy_can_be_turned_off(trigger: str) -> None:
    c = Campaign("c", trigger, skip_if_refunded=False, revoke_unused=False)
    assert not skips(c, True) and not revokes(c)


def test_a_tier_upgrade_is_neither_skipped_nor_revoked() -> None:
    c = Campaign("gold", "tier_upgrade")
    assert not skips(c, True) and not revokes(c)


def test_a_revocation_worked_example() -> None:
    plan = plan_revocation({3: "issued", 4: "used", 5: "locked", 6: "expired"}, 100, 30)
    assert plan.void == (3, 5)
    assert plan.kept == ((4, "used"), (6, "expired"))
    assert (plan.points, plan.points_kept) == (30, 70)


@given(
    st.dictionaries(st.integers(1, 10**6), st.sampled_from(STATES), max_size=8),
    st.integers(0, 10**6),
    st.integers(-(10**6), 10**6),
)
def test_revocation_voids_exactly_the_unused_and_never_reverses_more_than_it_may(
    states: dict[int, str], left: int, may: int
) -> None:
    plan = plan_revocation(states, left, may)
    assert set(plan.void) | {c for c, _ in plan.kept} == set(states)
    assert not set(plan.void) & {c for c, _ in plan.kept}
    assert all(states[c] in UNUSED_COUPON_STATES for c in plan.void)
    assert all(s not in UNUSED_COUPON_STATES for _, s in plan.kept)
    assert 0 <= plan.points <= left
    assert plan.points <= max(may, 0)
    assert plan.points + plan.points_kept == left
    assert plan.points == min(left, max(may, 0))


@given(st.integers(-100, 10**6), st.integers(-(10**6), 10**6), st.booleans())
def test_a_reversal_never_makes_a_balance_negative_unless_allowed(
    wanted: int, held: int, allow_negative: bool
) -> None:
    n = reclaimable(wanted, held, allow_negative)
    assert 0 <= n <= max(wanted, 0)
    if allow_negative:
        assert n == max(wanted, 0)
    else:
        assert held - n >= min(held, 0)  # what the member holds never goes below zero
        assert n == min(max(wanted, 0), max(held, 0))


def test_the_rule_field_defaults_and_refusals() -> None:
    doc = CampaignDoc(id="welcome", trigger="first_order", points=100)
    assert doc.on_refund is None
    assert doc.refund_policy == OnRefundDoc(skip_if_refunded=True, revoke_unused=True)
    off = CampaignDoc.model_validate(
        {
            "id": "loyal",
            "trigger": "spend",
            "min_paid_fen": 100,
            "points": 5,
            "on_refund": {"revoke_unused": False},
        }
    )
    assert off.refund_policy == OnRefundDoc(skip_if_refunded=True, revoke_unused=False)
    with pytest.raises(ValidationError, match="tier_upgrade gift stands"):
        CampaignDoc.model_validate(
            {"id": "g", "trigger": "tier_upgrade", "points": 5, "on_refund": {}}
        )
    with pytest.raises(ValidationError, match="extra"):
        CampaignDoc.model_validate(
            {"id": "w", "trigger": "first_order", "points": 5, "on_refund": {"revoke": True}}
        )
