"""The HTTP API end to end in process: members, codes, identities, claims, points,
tenancy, and the one error shape. Requests carry an HQ key of brand "a" or "b"
(`brand=`), or an explicit `key=`; access itself is tested in test_api_keys.py. Every response goes through `Api.call`, which
fails the test on any 5xx, on a 4xx without `{"error": {code, message, detail}}`,
and on a full phone number anywhere in a body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.domain import member_code
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from tests.conftest import Clock

PHONE = "13800138000"
PHONE_2 = "13912345678"
PHONE_3 = "13700001111"
FULL_PHONES = (PHONE, PHONE_2, PHONE_3)
WECHAT = {"provider": "wechat", "kind": "openid", "value": "o-abc-123"}


class Api:
    """A TestClient with the checks every response must pass."""

    def __init__(self, client: TestClient, keys: dict[str, str]) -> None:
        self.client = client
        self.keys = keys  # brand code -> its HQ key

    def call(
        self,
        method: str,
        url: str,
        *,
        brand: str | None = "a",
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = dict(headers or {})
        raw = key if key is not None else self.keys[brand] if brand is not None else None
        if raw is not None:
            sent["Authorization"] = f"Bearer {raw}"
        response = self.client.request(method, url, headers=sent, **kwargs)
        assert response.status_code < 500, (method, url, response.status_code, response.text)
        for phone in FULL_PHONES:
            assert phone not in response.text, (method, url, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert set(body["error"]) == {"code", "message", "detail"}, body
            assert isinstance(body["error"]["code"], str) and body["error"]["code"]
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]
            assert isinstance(body["error"]["detail"], dict)
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.call("POST", url, **kwargs)

    def ok(self, method: str, url: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.call(method, url, **kwargs)
        assert response.status_code == status, response.text
        return response.json()

    def error(self, method: str, url: str, status: int, code: str, **kwargs: Any) -> dict[str, Any]:
        """The `error` object of a response that must fail with `status` and `code`."""
        response = self.call(method, url, **kwargs)
        assert response.status_code == status, response.text
        error: dict[str, Any] = response.json()["error"]
        assert error["code"] == code, error
        return error

    # shortcuts for the common set-up steps
    def register(self, phone: str = PHONE, name: str = "张三", **extra: Any) -> dict[str, Any]:
        brand = extra.pop("brand", "a")
        result: dict[str, Any] = self.ok(
            "POST",
            "/v1/members",
            201,
            json={"phone": phone, "name": name, **extra},
            brand=brand,
        )
        return result

    def earn(self, member_id: int, points: int, **extra: Any) -> dict[str, Any]:
        brand = extra.pop("brand", "a")
        result: dict[str, Any] = self.ok(
            "POST",
            f"/v1/members/{member_id}/points/earn",
            201,
            json={"points": points, **extra},
            brand=brand,
        )
        return result

    def balance(self, member_id: int, brand: str = "a") -> dict[str, Any]:
        result: dict[str, Any] = self.ok("GET", f"/v1/members/{member_id}/points", brand=brand)
        return result


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    keys = {}
    for code in ("a", "b"):
        brand = brands.create_brand(ctx, code, f"Brand {code.upper()}")
        keys[code] = apikeys.create_key(ctx, brand.id, Scope.HQ, f"{code} HQ").secret
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client, keys)


def lookup(api: Api, brand: str = "a", **key: Any) -> httpx.Response:
    return api.post("/v1/members/lookup", json=key, brand=brand)


# --- health and registration ---------------------------------------------------


def test_healthz_reports_ok_and_the_database(api: Api, ctx: Context) -> None:
    body = api.ok("GET", "/healthz", brand=None)
    assert body["status"] == "ok"
    assert body["database"] == ctx.dialect
    assert body["version"]


def test_register_returns_201_with_the_phone_masked(api: Api) -> None:
    member = api.register(PHONE, "张三", birthday="1990-05-20")
    assert member["phone"] == "138****8000"
    assert member["name"] == "张三"
    assert member["birthday"] == "1990-05-20"
    assert member["points_balance"] == 0
    assert len(member["card_no"]) == 16 and member["card_no"].isdigit()
    fetched = api.ok("GET", f"/v1/members/{member['id']}")
    assert fetched["phone"] == "138****8000"
    assert fetched["id"] == member["id"]


@pytest.mark.parametrize("again", [PHONE, "+86" + PHONE, " 138 0013 8000 "])
def test_registering_the_same_phone_twice_is_409_member_exists(api: Api, again: str) -> None:
    api.register(PHONE)
    error = api.error(
        "POST", "/v1/members", 409, "member_exists", json={"phone": again, "name": "又是我"}
    )
    assert error["detail"]["phone"] == "138****8000"


def test_the_same_phone_may_join_two_brands(api: Api) -> None:
    in_a = api.register(PHONE, brand="a")
    in_b = api.register(PHONE, brand="b")
    assert in_a["id"] != in_b["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "12345", "name": "x"}, None),
        ({"phone": PHONE, "name": "x", "birthday": "2999-01-01"}, "birthday"),
        ({"phone": PHONE, "name": "x", "store_id": 999}, None),
        ({"phone": PHONE, "name": "x", "referrer_id": 999}, None),
    ],
)
def test_register_refuses_bad_values_without_creating_anyone(
    api: Api, body: dict[str, Any], field: str | None
) -> None:
    response = api.post("/v1/members", json=body)
    assert response.status_code in (404, 422), response.text
    if field is not None:
        assert response.json()["error"]["detail"]["field"] == field
    assert lookup(api, phone=PHONE).status_code == 404


# --- look-up by every key ------------------------------------------------------


def test_lookup_by_phone_card_code_and_identity_finds_the_same_member(api: Api) -> None:
    member = api.register(PHONE, identities=[WECHAT])
    api.register(PHONE_2, "李四")
    code = api.ok("POST", f"/v1/members/{member['id']}/code")
    assert code["expires_in"] == 60
    keys: list[dict[str, Any]] = [
        {"phone": PHONE},
        {"phone": "+86" + PHONE},
        {"card_no": member["card_no"]},
        {"code": code["code"]},
        {"code": code["code"].lower()},
        {"identity": WECHAT},
    ]
    for key in keys:
        response = lookup(api, **key)
        assert response.status_code == 200, (key, response.text)
        found = response.json()
        assert found["id"] == member["id"], key
        assert found["phone"] == "138****8000"


def test_lookup_wants_exactly_one_key(api: Api) -> None:
    member = api.register()
    error = api.error(
        "POST",
        "/v1/members/lookup",
        422,
        "one_key_required",
        json={"phone": PHONE, "card_no": member["card_no"]},
    )
    assert sorted(error["detail"]["given"]) == ["card_no", "phone"]
    api.error("POST", "/v1/members/lookup", 422, "one_key_required", json={})


def test_lookup_of_unknown_keys_is_404_member_not_found(api: Api) -> None:
    api.register()
    for key in (
        {"phone": PHONE_2},
        {"card_no": member_code.card_number_from("800000000000000")},
        {"identity": {**WECHAT, "value": "someone-else"}},
    ):
        api.error("POST", "/v1/members/lookup", 404, "member_not_found", json=key)


def test_a_code_is_valid_for_its_ttl_and_expired_after(api: Api, clock: Clock) -> None:
    member = api.register()
    code = api.ok("POST", f"/v1/members/{member['id']}/code")["code"]
    clock.advance(seconds=60)
    assert lookup(api, code=code).json()["id"] == member["id"]
    clock.advance(seconds=1)
    error = api.error(
        "POST", "/v1/members/lookup", 422, "member_code_rejected", json={"code": code}
    )
    assert error["detail"]["reason"] == "expired"
    assert error["detail"]["seconds_old"] == 61
    assert error["message"]


def test_a_forged_code_is_rejected_as_forged(api: Api) -> None:
    member = api.register()
    code = api.ok("POST", f"/v1/members/{member['id']}/code")["code"]
    # A character well inside the MAC (not the last one, which carries padding bits).
    i = len(code) - 5
    flipped = code[:i] + ("A" if code[i] != "A" else "B") + code[i + 1 :]
    error = api.error(
        "POST", "/v1/members/lookup", 422, "member_code_rejected", json={"code": flipped}
    )
    assert error["detail"]["reason"] == "forged"


@pytest.mark.parametrize("garbage", ["hello", "M", "M!!!!", "MAAAA", "M" + "A" * 60, "13800138000"])
def test_garbage_is_rejected_as_malformed(api: Api, garbage: str) -> None:
    api.register()
    error = api.error(
        "POST", "/v1/members/lookup", 422, "member_code_rejected", json={"code": garbage}
    )
    assert error["detail"]["reason"] == "malformed"


def test_a_card_number_with_a_wrong_check_digit_is_422_card_number_invalid(api: Api) -> None:
    card = api.register()["card_no"]
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    error = api.error(
        "POST", "/v1/members/lookup", 422, "card_number_invalid", json={"card_no": wrong}
    )
    assert error["detail"]["field"] == "card_no"
    for bad in ("12345", "abcdabcdabcdabcd"):
        api.error("POST", "/v1/members/lookup", 422, "card_number_invalid", json={"card_no": bad})


# --- identities ----------------------------------------------------------------


def test_bind_identity_then_find_by_it_and_rebinding_is_harmless(api: Api) -> None:
    member = api.register()
    url = f"/v1/members/{member['id']}/identities"
    assert api.ok("POST", url, json=WECHAT)["id"] == member["id"]
    assert api.ok("POST", url, json=WECHAT)["id"] == member["id"]
    unionid = {"provider": "wechat", "kind": "unionid", "value": "u-1"}
    api.ok("POST", url, json=unionid)
    assert lookup(api, identity=unionid).json()["id"] == member["id"]
    assert lookup(api, identity=WECHAT).json()["id"] == member["id"]


def test_an_identity_bound_to_another_member_is_409_identity_taken(api: Api) -> None:
    first = api.register(PHONE, identities=[WECHAT])
    second = api.register(PHONE_2, "李四")
    api.error("POST", f"/v1/members/{second['id']}/identities", 409, "identity_taken", json=WECHAT)
    assert lookup(api, identity=WECHAT).json()["id"] == first["id"]
    # Registering a third member with the taken identity creates nobody.
    api.error(
        "POST",
        "/v1/members",
        409,
        "identity_taken",
        json={"phone": PHONE_3, "name": "王五", "identities": [WECHAT]},
    )
    api.error("POST", "/v1/members/lookup", 404, "member_not_found", json={"phone": PHONE_3})


def test_an_unknown_identity_provider_is_a_validation_error(api: Api) -> None:
    member = api.register()
    api.error(
        "POST",
        f"/v1/members/{member['id']}/identities",
        422,
        "validation_error",
        json={**WECHAT, "provider": "qq"},
    )


# --- points --------------------------------------------------------------------


def test_earn_spend_adjust_reverse_balance_and_history(api: Api) -> None:
    m = api.register()["id"]
    earned = api.earn(m, 100, source_ref="POS-1", description="lunch")
    assert (earned["kind"], earned["points"], earned["source_ref"]) == ("earn", 100, "POS-1")
    spent = api.ok("POST", f"/v1/members/{m}/points/spend", 201, json={"points": 30})
    assert (spent["kind"], spent["points"]) == ("spend", -30)
    adjusted = api.ok(
        "POST",
        f"/v1/members/{m}/points/adjust",
        201,
        json={"points": 50, "operator": "alice", "reason": "complaint"},
    )
    assert (adjusted["kind"], adjusted["points"]) == ("adjust", 50)
    assert (adjusted["operator"], adjusted["reason"]) == ("alice", "complaint")
    down = api.ok(
        "POST",
        f"/v1/members/{m}/points/adjust",
        201,
        json={"points": -20, "operator": "alice", "reason": "typo"},
    )
    assert down["points"] == -20
    assert api.balance(m)["total"] == 100
    assert api.ok("GET", f"/v1/members/{m}")["points_balance"] == 100

    back = api.ok(
        "POST",
        f"/v1/points/entries/{spent['id']}/reverse",
        201,
        json={"operator": "bob", "reason": "refund"},
    )
    assert (back["kind"], back["points"], back["reverses_entry_id"]) == ("reverse", 30, spent["id"])
    balance = api.balance(m)
    assert (balance["total"], balance["available"], balance["pending"]) == (130, 130, 0)
    assert balance["expiring"] == [{"expires_on": None, "points": 130}]

    history = api.ok("GET", f"/v1/members/{m}/points/history")
    assert history["count"] == 5
    assert [e["id"] for e in history["data"]] == sorted(
        (e["id"] for e in history["data"]), reverse=True
    )
    assert [e["points"] for e in history["data"]] == [30, -20, 50, -30, 100]
    assert history["next_before_id"] is None


def test_partial_reversal_and_reversing_more_than_is_left(api: Api) -> None:
    m = api.register()["id"]
    earned = api.earn(m, 100)
    url = f"/v1/points/entries/{earned['id']}/reverse"
    assert api.ok("POST", url, 201, json={"points": 40})["points"] == -40
    error = api.error("POST", url, 422, "reversal_exceeds_entry", json={"points": 61})
    assert error["detail"]["reversible"] == 60
    assert api.balance(m)["total"] == 60
    api.error("POST", "/v1/points/entries/999999/reverse", 404, "entry_not_found", json={})


def test_history_pages_with_before_id_and_filters_by_time(api: Api, clock: Clock) -> None:
    m = api.register()["id"]
    ids = []
    for n in range(1, 6):
        ids.append(api.earn(m, n)["id"])
        clock.advance(minutes=1)
    page = api.ok("GET", f"/v1/members/{m}/points/history", params={"limit": 2})
    assert [e["id"] for e in page["data"]] == [ids[4], ids[3]]
    assert page["next_before_id"] == ids[3]
    page2 = api.ok(
        "GET",
        f"/v1/members/{m}/points/history",
        params={"limit": 2, "before_id": page["next_before_id"]},
    )
    assert [e["id"] for e in page2["data"]] == [ids[2], ids[1]]
    window = api.ok(
        "GET",
        f"/v1/members/{m}/points/history",
        params={"since": "2024-01-01T04:01:00+00:00", "until": "2024-01-01T12:03:00+08:00"},
    )
    assert [e["points"] for e in window["data"]] == [3, 2]
    error = api.error(
        "GET",
        f"/v1/members/{m}/points/history",
        422,
        "invalid_input",
        params={"since": "2024-01-01T00:00:00"},
    )
    assert error["detail"]["field"] == "since"


def test_spending_beyond_the_balance_is_409_insufficient_points(api: Api) -> None:
    m = api.register()["id"]
    api.earn(m, 100)
    error = api.error(
        "POST", f"/v1/members/{m}/points/spend", 409, "insufficient_points", json={"points": 101}
    )
    assert error["detail"] == {"requested": 101, "available": 100}
    error = api.error(
        "POST",
        f"/v1/members/{m}/points/adjust",
        409,
        "insufficient_points",
        json={"points": -500, "operator": "alice", "reason": "oops"},
    )
    assert error["detail"] == {"requested": 500, "available": 100}
    assert api.balance(m)["total"] == 100
    assert api.ok("GET", f"/v1/members/{m}/points/history")["count"] == 1


def test_an_adjustment_needs_an_operator_and_a_reason(api: Api) -> None:
    m = api.register()["id"]
    url = f"/v1/members/{m}/points/adjust"
    for body in (
        {"points": 10, "operator": "alice"},
        {"points": 10, "reason": "x"},
        {"points": 10, "operator": "alice", "reason": ""},
    ):
        api.error("POST", url, 422, "validation_error", json=body)
    api.error(
        "POST", url, 422, "invalid_input", json={"points": 0, "operator": "a", "reason": "zero"}
    )
    assert api.balance(m)["total"] == 0


@pytest.mark.parametrize("kind", ["earn", "spend"])
def test_an_idempotency_key_replay_returns_the_same_entry_and_books_once(
    api: Api, kind: str
) -> None:
    m = api.register()["id"]
    api.earn(m, 500)
    url = f"/v1/members/{m}/points/{kind}"
    body = {"points": 120, "idempotency_key": "POS-42"}
    first = api.ok("POST", url, 201, json=body)
    second = api.ok("POST", url, 201, json=body)
    assert second["id"] == first["id"]
    assert second == first
    expected = 620 if kind == "earn" else 380
    assert api.balance(m)["total"] == expected
    assert api.ok("GET", f"/v1/members/{m}/points/history")["count"] == 2
    error = api.error(
        "POST",
        url,
        409,
        "idempotency_key_reused",
        json={**body, "points": 121},
    )
    assert error["detail"]["key"] == "POS-42"
    assert api.balance(m)["total"] == expected


def test_an_idempotency_key_is_per_brand(api: Api) -> None:
    in_a = api.register(PHONE, brand="a")["id"]
    in_b = api.register(PHONE, brand="b")["id"]
    first = api.earn(in_a, 10, idempotency_key="K1", brand="a")
    other = api.earn(in_b, 10, idempotency_key="K1", brand="b")
    assert first["id"] != other["id"]
    assert api.balance(in_a, "a")["total"] == 10
    assert api.balance(in_b, "b")["total"] == 10


def test_an_unknown_store_is_404_and_books_nothing(api: Api) -> None:
    m = api.register()["id"]
    api.error(
        "POST",
        f"/v1/members/{m}/points/earn",
        404,
        "store_not_found",
        json={"points": 10, "store_id": 12345},
    )
    assert api.balance(m)["total"] == 0


@pytest.mark.parametrize("whose", ["another brand's", "no one's"])
def test_a_reversal_naming_a_store_outside_the_brand_is_404_and_books_nothing(
    api: Api, ctx: Context, whose: str
) -> None:
    # Issue 11 item 1: the reversal stored brand A's store on brand B's entry (201),
    # or failed on the foreign key (500) for a store id that did not exist.
    a_store = brands.create_store(ctx, brands.brand_by_code(ctx, "a").id, "A1", "A's store")
    m = api.register(brand="b")["id"]
    entry = api.earn(m, 100, brand="b")
    store_id = a_store.id if whose == "another brand's" else 987654
    error = api.error(
        "POST",
        f"/v1/points/entries/{entry['id']}/reverse",
        404,
        "store_not_found",
        json={"points": 10, "store_id": store_id},
        brand="b",
    )
    assert error["detail"] == {"store_id": store_id}
    assert api.balance(m, "b")["total"] == 100
    assert api.ok("GET", f"/v1/members/{m}/points/history", brand="b")["count"] == 1


def test_the_expiry_job_refuses_a_day_after_today_and_expires_nothing(
    api: Api, clock: Clock
) -> None:
    # Issue 11 item 9: `POST /v1/jobs/expire?as_of=2099-01-01` expired every lot.
    m = api.register()["id"]
    adjust = {"points": 100, "operator": "op", "reason": "opening", "expires_on": "2024-01-01"}
    api.ok("POST", f"/v1/members/{m}/points/adjust", 201, json=adjust)
    assert clock.now.isoformat() == "2024-01-01T04:00:00+00:00"  # noon in Shanghai
    for as_of in ("2099-01-01", "2024-01-02"):
        error = api.error("POST", f"/v1/jobs/expire?as_of={as_of}", 422, "expiry_date_in_future")
        assert error["detail"]["today"] == "2024-01-01"
        assert error["detail"]["timezone"] == "Asia/Shanghai"
        assert "2024-01-01" in error["message"]
    assert api.balance(m)["total"] == 100
    run = api.ok("POST", "/v1/jobs/expire")
    assert (run["as_of"], run["points"]) == ("2024-01-01", 100)
    assert api.balance(m)["total"] == 0


# --- tenancy -------------------------------------------------------------------


def test_a_member_of_brand_a_does_not_exist_for_brand_b(api: Api) -> None:
    member = api.register(PHONE, brand="a", identities=[WECHAT])
    m = member["id"]
    entry = api.earn(m, 100)
    code = api.ok("POST", f"/v1/members/{m}/code")["code"]
    token = api.ok("POST", "/v1/claims", 201, json={"order_ref": "B-1", "points": 5}, brand="b")[
        "token"
    ]
    adjust = {"points": 5, "operator": "x", "reason": "y"}
    not_found: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/v1/members/{m}", None),
        ("POST", f"/v1/members/{m}/identities", {**WECHAT, "value": "other"}),
        ("POST", f"/v1/members/{m}/code", None),
        ("POST", f"/v1/members/{m}/claims", {"token": token}),
        ("GET", f"/v1/members/{m}/points", None),
        ("GET", f"/v1/members/{m}/points/history", None),
        ("POST", f"/v1/members/{m}/points/earn", {"points": 5}),
        ("POST", f"/v1/members/{m}/points/spend", {"points": 5}),
        ("POST", f"/v1/members/{m}/points/adjust", adjust),
        ("POST", f"/v1/points/entries/{entry['id']}/reverse", {}),
        ("POST", "/v1/members/lookup", {"phone": PHONE}),
        ("POST", "/v1/members/lookup", {"card_no": member["card_no"]}),
        ("POST", "/v1/members/lookup", {"identity": WECHAT}),
    ]
    for method, url, body in not_found:
        response = api.call(method, url, json=body, brand="b")
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"]["code"] in {"member_not_found", "entry_not_found"}
    # A code signed for brand A does not verify in brand B at all.
    error = api.error(
        "POST", "/v1/members/lookup", 422, "member_code_rejected", json={"code": code}, brand="b"
    )
    assert error["detail"]["reason"] == "forged"
    # Nothing was booked or changed in brand A, and B's claim is still unused.
    assert api.balance(m)["total"] == 100
    assert api.ok("GET", f"/v1/members/{m}/points/history")["count"] == 1
    assert lookup(api, identity={**WECHAT, "value": "other"}).status_code == 404
    owner_b = api.register(PHONE_2, brand="b")["id"]
    claimed = api.ok("POST", f"/v1/members/{owner_b}/claims", json={"token": token}, brand="b")
    assert claimed["points"] == 5


def test_brand_b_cannot_claim_brand_a_receipts(api: Api) -> None:
    token = api.ok("POST", "/v1/claims", 201, json={"order_ref": "A-1", "points": 5})["token"]
    api.error(
        "POST",
        "/v1/members",
        404,
        "claim_not_found",
        json={"phone": PHONE, "name": "x", "claim_token": token},
        brand="b",
    )
    assert api.register(PHONE, claim_token=token)["points_balance"] == 5


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("POST", "/v1/members", {"phone": PHONE, "name": "x"}),
        ("POST", "/v1/members/lookup", {"phone": PHONE}),
        ("GET", "/v1/members/1", None),
        ("GET", "/v1/members/1/points", None),
        ("POST", "/v1/members/1/points/earn", {"points": 1}),
        ("POST", "/v1/claims", {"order_ref": "X", "points": 1}),
    ],
)
def test_a_missing_key_is_401_api_key_required_and_a_bad_one_api_key_invalid(
    api: Api, method: str, url: str, body: dict[str, Any] | None
) -> None:
    api.error(method, url, 401, "api_key_required", json=body, brand=None)
    for bad in ("nope", "lp_", "lp_x", "lp_unknown_secret", api.keys["a"] + "x"):
        api.error(method, url, 401, "api_key_invalid", json=body, key=bad)
    # Another scheme, or a bare key without "Bearer", is no key at all.
    for header in (f"Basic {api.keys['a']}", api.keys["a"]):
        response = api.call(method, url, json=body, brand=None, headers={"Authorization": header})
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "api_key_required"
    api.error("POST", "/v1/members/lookup", 404, "member_not_found", json={"phone": PHONE})


# --- claims (buy first, join later) --------------------------------------------


def test_register_with_a_claim_token_gets_the_points_once(api: Api) -> None:
    token = api.ok("POST", "/v1/claims", 201, json={"order_ref": "ORD-7", "points": 80})["token"]
    member = api.register(PHONE, claim_token=token)
    assert member["points_balance"] == 80
    history = api.ok("GET", f"/v1/members/{member['id']}/points/history")
    assert [(e["points"], e["source_type"], e["source_ref"]) for e in history["data"]] == [
        (80, "claim", "ORD-7")
    ]
    # The same receipt again: by an existing member, and by a new registration
    # (which then creates nobody).
    other = api.register(PHONE_2, "李四")
    api.error(
        "POST",
        f"/v1/members/{other['id']}/claims",
        409,
        "claim_already_used",
        json={"token": token},
    )
    api.error(
        "POST",
        "/v1/members",
        409,
        "claim_already_used",
        json={"phone": PHONE_3, "name": "王五", "claim_token": token},
    )
    api.error("POST", "/v1/members/lookup", 404, "member_not_found", json={"phone": PHONE_3})
    assert api.balance(member["id"])["total"] == 80
    assert api.balance(other["id"])["total"] == 0


def test_an_existing_member_claims_once_and_the_token_forgives_case_and_dashes(
    api: Api,
) -> None:
    token = api.ok("POST", "/v1/claims", 201, json={"order_ref": "ORD-8", "points": 15})["token"]
    m = api.register()["id"]
    sloppy = token.lower().replace("-", " ")
    claimed = api.ok("POST", f"/v1/members/{m}/claims", json={"token": sloppy})
    assert (claimed["member_id"], claimed["points"], claimed["order_ref"]) == (m, 15, "ORD-8")
    api.error("POST", f"/v1/members/{m}/claims", 409, "claim_already_used", json={"token": token})
    assert api.balance(m)["total"] == 15


def test_claims_expire_are_unique_per_order_and_unknown_tokens_are_404(
    api: Api, clock: Clock
) -> None:
    token = api.ok("POST", "/v1/claims", 201, json={"order_ref": "ORD-9", "points": 5})["token"]
    api.error("POST", "/v1/claims", 409, "claim_exists", json={"order_ref": "ORD-9", "points": 5})
    m = api.register()["id"]
    api.error(
        "POST", f"/v1/members/{m}/claims", 404, "claim_not_found", json={"token": "ZZZZ-ZZZZ"}
    )
    clock.advance(days=30)
    api.error("POST", f"/v1/members/{m}/claims", 409, "claim_expired", json={"token": token})
    assert api.balance(m)["total"] == 0


# --- the error shape on protocol errors ------------------------------------------


def test_unknown_route_is_404_not_found(api: Api) -> None:
    api.error("GET", "/v1/nothing-here", 404, "not_found")
    api.error("GET", "/v1/members/1/nothing", 404, "not_found")


def test_wrong_method_is_405(api: Api) -> None:
    api.error("DELETE", "/healthz", 405, "method_not_allowed", brand=None)
    api.error("GET", "/v1/members", 405, "method_not_allowed")
    api.error("PUT", "/v1/members/1/points/earn", 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/members/{m}/points/earn", {"points": "many"}, "points"),
        ("/v1/members/{m}/points/earn", {"points": -5}, "points"),
        ("/v1/members/{m}/points/earn", {"points": 0}, "points"),
        ("/v1/members/{m}/points/earn", {"points": 1.5}, "points"),
        ("/v1/members/{m}/points/earn", {"points": 2_000_000_000}, "points"),
        ("/v1/members/{m}/points/spend", {"points": 5, "bonus": True}, "bonus"),
        ("/v1/members/{m}/points/earn", {}, "points"),
        ("/v1/members", {"phone": PHONE, "name": "x", "vip": True}, "vip"),
        ("/v1/members", {"phone": PHONE}, "name"),
        ("/v1/members", {"phone": PHONE, "name": "x", "birthday": "1990-02-30"}, "birthday"),
        ("/v1/members", {"phone": PHONE, "name": "x", "store_id": 2**63}, "store_id"),
        ("/v1/claims", {"order_ref": "A", "points": -1}, "points"),
        ("/v1/members/lookup", {"phone": PHONE, "email": "a@b"}, "email"),
        ("/v1/members/abc", {}, "path.member_id"),
        ("/v1/members/0/points/earn", {"points": 5}, "path.member_id"),
        ("/v1/members/99999999999999999999/points/earn", {"points": 5}, "path.member_id"),
        ("/v1/points/entries/-1/reverse", {}, "path.entry_id"),
    ],
)
def test_invalid_requests_are_422_validation_error_naming_the_field(
    api: Api, url: str, body: dict[str, Any], field: str
) -> None:
    m = api.register(PHONE_2)["id"]
    method = "GET" if url == "/v1/members/abc" else "POST"
    kwargs: dict[str, Any] = {} if method == "GET" else {"json": body}
    error = api.error(method, url.format(m=m), 422, "validation_error", **kwargs)
    assert field in [p["field"] for p in error["detail"]["errors"]], error
    assert api.balance(m)["total"] == 0


def test_malformed_json_is_a_4xx_with_the_error_shape(api: Api) -> None:
    response = api.post(
        "/v1/members", content=b'{"phone": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 422)


def test_out_of_range_query_values_are_422(api: Api) -> None:
    m = api.register()["id"]
    url = f"/v1/members/{m}/points/history"
    for params in ({"limit": 0}, {"limit": 501}, {"before_id": 2**64}, {"since": "yesterday"}):
        api.error("GET", url, 422, "validation_error", params=params)


def test_a_body_over_the_limit_is_413(api: Api, ctx: Context) -> None:
    limit = ctx.settings.max_body_bytes
    big = b'{"phone": "13800138000", "name": "' + b"x" * limit + b'"}'
    api.error(
        "POST",
        "/v1/members",
        413,
        "payload_too_large",
        content=big,
        headers={"Content-Type": "application/json"},
    )

    def chunks() -> Iterator[bytes]:
        # No Content-Length: the limit must hold for a streamed body too.
        yield b'{"phone": "13800138000", "name": "'
        for _ in range(limit // 10_000 + 1):
            yield b"x" * 10_000
        yield b'"}'

    api.error(
        "POST",
        "/v1/members",
        413,
        "payload_too_large",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    api.error("POST", "/v1/members/lookup", 404, "member_not_found", json={"phone": PHONE})
    # Just under the limit is an ordinary request again.
    assert api.post("/v1/members", json={"phone": PHONE, "name": "x" * 100}).status_code == 201


def test_a_non_numeric_content_length_is_refused(api: Api) -> None:
    response = api.client.post(
        "/v1/members",
        content=b'{"phone": "13800138000", "name": "x"}',
        headers={
            "Authorization": f"Bearer {api.keys['a']}",
            "Content-Type": "application/json",
            "Content-Length": "abc",
        },
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_nul_character_in_any_text_is_a_422_not_a_database_error(api: Api) -> None:
    # PostgreSQL text cannot hold NUL; it must be refused before it gets there.
    m = api.register()["id"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/v1/members", {"phone": PHONE_2, "name": "a\u0000b"}, "name"),
        ("/v1/members/lookup", {"identity": {**WECHAT, "value": "o\u0000"}}, "identity.value"),
        (f"/v1/members/{m}/identities", {**WECHAT, "value": "o\u0000"}, "value"),
        (f"/v1/members/{m}/points/earn", {"points": 1, "description": "\u0000"}, "description"),
        (
            f"/v1/members/{m}/points/earn",
            {"points": 1, "idempotency_key": "k\u0000"},
            "idempotency_key",
        ),
        (f"/v1/members/{m}/points/spend", {"points": 1, "source_ref": "r\u0000"}, "source_ref"),
        (
            f"/v1/members/{m}/points/adjust",
            {"points": 1, "operator": "o", "reason": "r\u0000"},
            "reason",
        ),
        ("/v1/claims", {"order_ref": "A\u0000", "points": 1}, "order_ref"),
    ]
    for url, body, field in cases:
        error = api.error("POST", url, 422, "validation_error", json=body)
        assert field in [p["field"] for p in error["detail"]["errors"]], (url, error)
    assert api.balance(m)["total"] == 0
    api.error("POST", "/v1/members/lookup", 404, "member_not_found", json={"phone": PHONE_2})
