"""Text and dates in paths and query strings are held to the rules of the body
fields they match (api/fields.py): issue 11 items 5 (NUL and other control
characters answered 500 on PostgreSQL), 7 (an order number with `/` was booked
but could never be looked up) and 11 (`until=0.5`, `as_of=0.0` were accepted)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from loyalpos.api.app import create_app
from loyalpos.db.tables import orders
from loyalpos.service.admin import demo
from loyalpos.service.base.context import Context

HQ = {"Authorization": "Bearer lp_demohq_publicdemokey"}
LINES = [{"sku": "latte", "category": "coffee", "unit_price_fen": 3200, "qty": 1}]
# NUL (PostgreSQL cannot store it), C0 controls, DEL, a C1 control (NEL), line breaks.
CONTROL = ["\x00", "\x01", "\x1f", "\x7f", "\x85", "\n", "\t"]


@pytest.fixture
def client(ctx: Context) -> Iterator[TestClient]:
    demo.seed(ctx)
    with TestClient(create_app(ctx), raise_server_exceptions=False) as c:
        yield c


def _string_parameters() -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every path or query parameter that is text
    (dates included), from the app's OpenAPI document."""
    from loyalpos.config import Settings
    from loyalpos.db.engine import make_engine
    from tests.conftest import TEST_SECRET

    settings = Settings(env="test", database_url="sqlite://", secret_key=TEST_SECRET)
    doc = create_app(Context(make_engine("sqlite://"), settings)).openapi()
    found = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for p in op.get("parameters", []):
                schema = p["schema"]
                kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
                if p["in"] in ("path", "query") and "string" in kinds:
                    found.append((method.upper(), path, p["in"], p["name"]))
    return found


STRING_PARAMETERS = _string_parameters()


def test_the_walk_covers_the_parameters_of_the_issue() -> None:
    named = {(path, name) for _, path, _, name in STRING_PARAMETERS}
    assert {
        ("/v1/stores/{store_id}/orders/{order_no}", "order_no"),
        ("/v1/stores/{store_id}/orders/{order_no}/refunds", "order_no"),
        ("/v1/stores/{store_id}/quotes/{token}", "token"),
        ("/v1/campaigns/firings", "campaign"),
        ("/v1/stores/{store_id}/holds", "terminal"),
        ("/v1/members/{member_id}/points/history", "until"),
        ("/v1/jobs/expire", "as_of"),
    } <= named


def _request(client: TestClient, method: str, path: str, where: str, name: str, value: str) -> Any:
    """`method path` with `value` as the parameter `name`, every other parameter valid."""
    url = path.format(
        **{
            key: quote(value, safe="") if key == name and where == "path" else "1"
            for key in ("store_id", "member_id", "order_no", "token")
            if "{" + key + "}" in path
        }
    )
    params: dict[str, str] = {}
    if path == "/v1/holds/report":
        params = {"from": "2024-01-01", "to": "2024-01-02"}
    if where == "query":
        params[name] = value
    body = {} if method in ("POST", "PUT") else None
    return client.request(method, url, params=params, json=body, headers=HQ)


@pytest.mark.parametrize(("method", "path", "where", "name"), STRING_PARAMETERS)
def test_control_characters_in_a_path_or_query_are_a_422_naming_it(
    client: TestClient, method: str, path: str, where: str, name: str
) -> None:
    for char in CONTROL:
        response = _request(client, method, path, where, name, f"A{char}B")
        assert response.status_code == 422, (char, response.status_code, response.text)
        error = response.json()["error"]
        assert set(error) == {"code", "message", "detail"}
        assert error["code"] == "validation_error"
        fields = [p["field"] for p in error["detail"]["errors"]]
        assert f"{where}.{name}" in fields, (char, error)


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/v1/members/1/points/history?until=0.5", "query.until"),
        ("/v1/members/1/points/history?since=1700000000", "query.since"),
        ("/v1/jobs/expire?as_of=0.0", "query.as_of"),
        ("/v1/holds/report?from=0&to=2024-01-02", "query.from"),
    ],
)
def test_a_number_is_not_a_date(client: TestClient, url: str, field: str) -> None:
    # pydantic reads numbers as Unix times; the OpenAPI document says ISO 8601.
    response = client.post(url, headers=HQ) if "expire" in url else client.get(url, headers=HQ)
    assert response.status_code == 422, response.text
    assert field in [p["field"] for p in response.json()["error"]["detail"]["errors"]]


def _confirm(client: TestClient, order_no: str) -> Any:
    return client.post(
        "/v1/orders",
        json={
            "store_id": 1,
            "lines": LINES,
            "order_no": order_no,
            "tenders": [{"method": "cash", "amount_fen": 3200}],
            "cashier": "c01",
            "terminal": "T1",
        },
        headers=HQ,
    )


@pytest.mark.parametrize(
    "order_no", ["SH001/2026/1", "A?1", "A#1", "A%1", "订单1", ".", "..", "-A"]
)
def test_an_order_number_a_path_cannot_carry_is_refused_at_confirm(
    client: TestClient, order_no: str
) -> None:
    response = _confirm(client, order_no)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["detail"]["errors"][0]["field"] == "order_no"
    assert "letters A-Z a-z, digits 0-9 and - _ ." in error["message"]


def test_an_order_number_is_refused_wherever_an_order_is_made(client: TestClient) -> None:
    late = {
        "store_id": 1,
        "lines": LINES,
        "order_no": "SH001/2026/2",
        "tenders": [{"method": "cash", "amount_fen": 3200}],
        "cashier": "c01",
        "terminal": "T1",
        "ordered_at": "2024-01-01T10:00:00+08:00",
    }
    response = client.post("/v1/late-orders", json={"orders": [late]}, headers=HQ)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["detail"]["errors"][0]["field"] == "orders.0.order_no"


def test_a_pos_list_with_numbers_we_never_booked_is_reconciled_not_refused(
    client: TestClient,
) -> None:
    """The POS's list is the POS's: a number loyalpos would refuse at confirm is
    simply missing here; only control characters are refused."""
    day = {
        "date": "2024-01-01",
        "order_count": 1,
        "amount_fen": 100,
        "orders": [{"order_no": "SH001/2026/3", "amount_fen": 100}],
    }
    response = client.post("/v1/stores/1/reconciliation", json=day, headers=HQ)
    assert response.status_code == 200, response.text
    missing = response.json()["orders"]["missing_here"]
    assert missing == [{"order_no": "SH001/2026/3", "amount_fen": 100}]
    day["orders"] = [{"order_no": "SH001\n3", "amount_fen": 100}]
    response = client.post("/v1/stores/1/reconciliation", json=day, headers=HQ)
    assert response.status_code == 422, response.text


def test_an_order_booked_before_the_rule_is_still_looked_up_and_refunded(
    client: TestClient, ctx: Context
) -> None:
    """Numbers with a space or Chinese characters were accepted before issue 11:
    their orders must stay reachable by their (encoded) number."""
    assert _confirm(client, "LEGACY-1").status_code == 201
    with ctx.transaction() as conn:
        conn.execute(
            update(orders).where(orders.c.order_no == "LEGACY-1").values(order_no="SH001 #7")
        )
    found = client.get("/v1/stores/1/orders/SH001%20%237", headers=HQ)
    assert found.status_code == 200, found.text
    refund = client.post(
        "/v1/stores/1/orders/SH001%20%237/refunds",
        json={"refund_no": "R-L1", "cashier": "c01"},
        headers=HQ,
    )
    assert refund.status_code == 201, refund.text
    trailing = client.get("/v1/stores/1/orders/SH001%20%237%0A", headers=HQ)
    assert trailing.status_code == 422, trailing.text


def test_a_trailing_line_break_is_refused_not_trimmed(client: TestClient) -> None:
    """`"B1\n"` used to be booked as `B1`: trimming took the control character away."""
    response = _confirm(client, "B1\n")
    assert response.status_code == 422, response.text
    assert response.json()["error"]["detail"]["errors"][0]["field"] == "order_no"
    assert _confirm(client, " B1 ").status_code == 201  # surrounding spaces are trimmed
    listed = client.get("/v1/stores/1/holds?terminal=A%0A", headers=HQ)
    assert listed.status_code == 422, listed.text


def test_an_order_number_of_the_allowed_characters_is_booked_looked_up_and_refunded(
    client: TestClient,
) -> None:
    order_no = "SH001-2026.11_23-0001"
    assert _confirm(client, order_no).status_code == 201
    found = client.get(f"/v1/stores/1/orders/{order_no}", headers=HQ)
    assert found.status_code == 200, found.text
    refund = client.post(
        f"/v1/stores/1/orders/{order_no}/refunds",
        json={"refund_no": "R-1", "cashier": "c01"},
        headers=HQ,
    )
    assert refund.status_code == 201, refund.text


@pytest.mark.parametrize(
    ("url", "body", "field", "longest"),
    [
        ("/v1/members/1/points/adjust", {"points": 1, "reason": "r"}, "operator", 80),
        ("/v1/rules", {"document": {}}, "author", 80),
    ],
)
def test_text_as_long_as_the_api_allows_fits_its_column(
    client: TestClient, url: str, body: dict[str, Any], field: str, longest: int
) -> None:
    # Found by the schemathesis run on PostgreSQL: 120 or unbounded characters
    # were accepted for a VARCHAR(80) column (500 there, silently kept on SQLite).
    too_long = client.post(url, json={**body, field: "x" * (longest + 1)}, headers=HQ)
    assert too_long.status_code == 422, too_long.text
    assert too_long.json()["error"]["detail"]["errors"][0]["field"] == field
    fits = client.post(url, json={**body, field: "x" * longest}, headers=HQ)
    assert fits.status_code == 201, fits.text


def _raw(client: TestClient, url: str, text: str) -> Any:
    """`text` sent as the body as is: JSON escapes a test client would not make."""
    headers = {**HQ, "Content-Type": "application/json"}
    return client.post(url, content=text.encode(), headers=headers)


@pytest.mark.parametrize("bad", ["\\u0000", "\\u0007", "\\ud800"])
def test_free_json_and_rule_documents_refuse_nul_controls_and_lone_surrogates(
    client: TestClient, bad: str
) -> None:
    """A held cart is free JSON, kept as sent; a rule document's names end up in
    ledger entries. NUL made the worker fail on every run (PostgreSQL), a lone
    surrogate answered 500 (UTF-8 cannot encode it): 422 naming the field now."""
    cart = f'{{"store_id": 1, "lines": [], "note{bad}": "x{bad}y"}}'
    hold = _raw(
        client,
        "/v1/stores/1/holds",
        f'{{"reason": "call", "cashier": "c", "terminal": "t", "cart": {cart}}}',
    )
    assert hold.status_code == 422, hold.text
    assert hold.json()["error"]["detail"]["errors"][0]["field"].startswith("cart")
    document = (
        '{"document": {"campaigns": [{"id": "gift", "name": "礼'
        + bad
        + '物", "trigger": "first_order", "points": 10}]}}'
    )
    rules = _raw(client, "/v1/rules", document)
    assert rules.status_code == 422, rules.text
    assert re.search("控制字符|无效字符", rules.json()["error"]["message"])
    simulate = _raw(
        client,
        "/v1/simulate",
        '{"rules": {}, "cart": {"store": "S1", "time": "2024-06-04T10:00", "lines": '
        '[{"sku": "a' + bad + '", "category": "c", "unit_price_fen": 100, "qty": 1}]}}',
    )
    assert simulate.status_code == 422, simulate.text


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\ud800"])
def test_a_rule_file_refuses_nul_controls_and_lone_surrogates_in_any_text(bad: str) -> None:
    """The CLI's `rules import` reads the file without the API's body check."""
    from pydantic import ValidationError

    from loyalpos.rules.schema import RuleSetDoc

    good = {"campaigns": [{"id": "gift", "name": "礼物", "trigger": "first_order", "points": 10}]}
    RuleSetDoc.model_validate(good)
    for where in ("name", "tag"):
        doc = {"campaigns": [{**good["campaigns"][0], where: f"礼{bad}物"}]}
        with pytest.raises(ValidationError, match="控制字符|unicode string|无效字符"):
            RuleSetDoc.model_validate(doc)


def _query_parameters() -> list[tuple[str, str, str]]:
    return [(m, p, n) for m, p, where, n in STRING_PARAMETERS if where == "query"]


@pytest.mark.parametrize(("method", "path", "name"), _query_parameters())
def test_a_query_parameter_given_twice_is_refused_naming_it(
    client: TestClient, method: str, path: str, name: str
) -> None:
    """Found by the fuzzer: `?terminal=z&terminal=[]` answered 200, one value
    silently read. Every query parameter takes one value; twice is a 422 before
    the route runs (so nothing is written), even with the name percent-encoded."""
    url = re.sub(r"\{[a-z_]+\}", "1", path)
    encoded = "".join(f"%{ord(c):02X}" for c in name)
    for query in (f"{name}=a&{name}=b", f"{name}=a&{encoded}=b"):
        answer = client.request(method, f"{url}?{query}", headers=HQ)
        assert answer.status_code == 422, (url, query, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "query_parameter_repeated"
        assert error["detail"] == {"parameter": name}


def test_distinct_query_parameters_are_still_read(client: TestClient) -> None:
    answer = client.get("/v1/members/1/points/history?limit=2&before_id=1000", headers=HQ)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["data"]) <= 2
