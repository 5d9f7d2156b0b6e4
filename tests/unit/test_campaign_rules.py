"""Which campaigns an event sets off (domain/campaigns.py): pure decisions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.domain.campaigns import (
    Campaign,
    Firing,
    OrderFacts,
    TierChange,
    is_dormant_return,
    is_upgrade,
    order_facts,
    order_firings,
    order_matches,
    tier_change,
    tier_firings,
)

AT = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
TIERS = {"normal": 0, "silver": 20000, "gold": 50000}

SPEND = Campaign("big-spender", "spend", min_paid_fen=10000)
COFFEE = Campaign("coffee", "category", category="coffee")
FIRST = Campaign("welcome", "first_order")
BACK = Campaign("wake-up", "reactivated", dormant_days=30)
ANY_UP = Campaign("any-up", "tier_upgrade")
TO_GOLD = Campaign("to-gold", "tier_upgrade", to_tier="gold")
ALL = [SPEND, COFFEE, FIRST, BACK, ANY_UP, TO_GOLD]


def order(**kw: object) -> OrderFacts:
    base = OrderFacts(
        order_id=7,
        member_id=3,
        store="A",
        payable_fen=5000,
        categories=frozenset({"food"}),
        first_order=False,
        ordered_at=AT,
        previous_order_at=AT - timedelta(days=2),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def ids(firings: list[Firing]) -> list[str]:
    return [f.campaign_id for f in firings]


def test_an_ordinary_order_sets_off_nothing() -> None:
    assert order_firings(ALL, order()) == []


def test_spend_fires_at_the_threshold_not_below() -> None:
    assert ids(order_firings(ALL, order(payable_fen=9999))) == []
    assert order_firings(ALL, order(payable_fen=10000)) == [Firing("big-spender", "order:7")]


def test_a_spend_campaign_without_threshold_never_fires() -> None:
    assert not order_matches(Campaign("x", "spend"), order(payable_fen=10**6))


def test_category_fires_when_a_line_is_in_it() -> None:
    assert ids(order_firings(ALL, order(categories=frozenset({"food", "coffee"})))) == ["coffee"]


def test_first_order_is_keyed_by_member_so_it_fires_once_per_member() -> None:
    assert order_firings(ALL, order(first_order=True, previous_order_at=None)) == [
        Firing("welcome", "member:3")
    ]


def test_reactivated_needs_a_previous_order_at_least_dormant_days_ago() -> None:
    assert ids(order_firings(ALL, order(previous_order_at=AT - timedelta(days=29)))) == []
    assert order_firings(ALL, order(previous_order_at=AT - timedelta(days=30))) == [
        Firing("wake-up", "order:7")
    ]
    # A first order is not a return, and a previous order later than this one
    # (a late, back-dated order) is not dormancy.
    assert ids(order_firings(ALL, order(previous_order_at=None))) == []
    assert ids(order_firings(ALL, order(previous_order_at=AT + timedelta(days=60)))) == []


def test_anonymous_orders_fire_nothing() -> None:
    everything = order(
        member_id=None,
        payable_fen=10**6,
        categories=frozenset({"coffee"}),
        first_order=True,
        previous_order_at=AT - timedelta(days=400),
    )
    assert order_firings(ALL, everything) == []


def test_every_matching_campaign_fires_in_rule_order() -> None:
    everything = order(
        payable_fen=20000,
        categories=frozenset({"coffee"}),
        first_order=False,
        previous_order_at=AT - timedelta(days=100),
    )
    assert order_firings(ALL, everything) == [
        Firing("big-spender", "order:7"),
        Firing("coffee", "order:7"),
        Firing("wake-up", "order:7"),
    ]


def test_stores_restrict_where_a_campaign_fires() -> None:
    only_b = replace(COFFEE, stores=("B",))
    coffee = frozenset({"coffee"})
    assert not order_matches(only_b, order(categories=coffee, store="A"))
    assert order_matches(only_b, order(categories=coffee, store="B"))
    assert not order_matches(only_b, order(categories=coffee, store=None))


def test_min_paid_is_a_floor_for_other_order_triggers_too() -> None:
    big_first = Campaign("big-first", "first_order", min_paid_fen=8000)
    assert not order_matches(big_first, order(first_order=True, payable_fen=7999))
    assert order_matches(big_first, order(first_order=True, payable_fen=8000))


def test_order_campaigns_ignore_tier_changes_and_back() -> None:
    change = TierChange(3, "normal", "gold")
    assert ids(tier_firings([SPEND, COFFEE, FIRST, BACK], change, TIERS)) == []
    assert not order_matches(ANY_UP, order(payable_fen=10**6, first_order=True))


def test_tier_upgrade_fires_on_moves_up_keyed_by_member_and_tier() -> None:
    assert tier_firings(ALL, TierChange(3, "normal", "silver"), TIERS) == [
        Firing("any-up", "tier:3:silver")
    ]
    assert tier_firings(ALL, TierChange(3, "silver", "gold"), TIERS) == [
        Firing("any-up", "tier:3:gold"),
        Firing("to-gold", "tier:3:gold"),
    ]


def test_tier_downgrades_and_no_moves_fire_nothing() -> None:
    assert tier_firings(ALL, TierChange(3, "gold", "silver"), TIERS) == []
    assert tier_firings(ALL, TierChange(3, "gold", "gold"), TIERS) == []
    assert tier_firings(ALL, TierChange(3, "gold", None), TIERS) == []


def test_tiers_compare_by_threshold_not_by_name_or_position() -> None:
    odd = {"b-top": 90000, "a-low": 0}
    assert is_upgrade("a-low", "b-top", odd)
    assert not is_upgrade("b-top", "a-low", odd)


def test_unknown_tiers() -> None:
    assert is_upgrade(None, "silver", TIERS)
    assert is_upgrade("retired", "silver", TIERS)  # left tier unknown: lowest
    assert not is_upgrade("normal", "retired", TIERS)  # reached tier unknown: never


def test_tier_upgrade_respects_stores() -> None:
    only_a = replace(ANY_UP, stores=("A",))
    assert tier_firings([only_a], TierChange(3, "normal", "gold", store="A"), TIERS)
    assert not tier_firings([only_a], TierChange(3, "normal", "gold", store="B"), TIERS)
    assert not tier_firings([only_a], TierChange(3, "normal", "gold"), TIERS)


def test_reading_an_order_paid_payload() -> None:
    payload = {
        "type": "order.paid",
        "subject": "order:42",
        "at": "2024-03-01T12:00:05+00:00",
        "order_id": 42,
        "order_no": "A-1",
        "store_id": 1,
        "store": "A",
        "member_id": 9,
        "payable_fen": 12345,
        "lines": [
            {"sku": "latte", "category": "coffee", "qty": 1, "payable_fen": 2800},
            {"sku": "bag", "category": "gift", "qty": 0, "payable_fen": 0},
            {"sku": "x", "category": None, "qty": 1, "payable_fen": 100},
        ],
        "first_order": True,
        "previous_order_at": None,
        "ordered_at": "2024-03-01T12:00:00+00:00",
        "late": False,
        "tier": "normal",
    }
    facts = order_facts(payload)
    assert facts == OrderFacts(
        order_id=42,
        member_id=9,
        store="A",
        payable_fen=12345,
        categories=frozenset({"coffee"}),
        first_order=True,
        ordered_at=datetime(2024, 3, 1, 12, 0, tzinfo=UTC),
        previous_order_at=None,
    )
    assert order_facts({**payload, "member_id": None}).member_id is None
    prev = order_facts({**payload, "previous_order_at": "2023-01-01T00:00:00+08:00"})
    assert prev.previous_order_at is not None and prev.previous_order_at.utcoffset()


def test_reading_a_payload_without_ordered_at_is_an_error() -> None:
    with pytest.raises(ValueError, match="ordered_at"):
        order_facts({"order_id": 1, "member_id": 1})


def test_reading_a_tier_changed_payload() -> None:
    payload = {"member_id": 5, "from": "normal", "to": "gold", "order_id": 8, "spent_fen": 1}
    assert tier_change(payload, "B") == TierChange(5, "normal", "gold", "B")


@given(
    days=st.integers(min_value=1, max_value=3650),
    gap=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=4000)),
)
def test_dormancy_is_exactly_a_gap_of_at_least_dormant_days(days: int, gap: timedelta) -> None:
    assert is_dormant_return(AT, AT - gap, days) == (gap >= timedelta(days=days))


tiers = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(min_value=0, max_value=10**6)
)


@given(thresholds=tiers, a=st.sampled_from("abcdef"), b=st.sampled_from("abcdef"))
def test_a_move_and_its_reverse_are_never_both_upgrades(
    thresholds: dict[str, int], a: str, b: str
) -> None:
    assert not (is_upgrade(a, b, thresholds) and is_upgrade(b, a, thresholds))
    assert not is_upgrade(a, a, thresholds)
