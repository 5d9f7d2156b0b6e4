"""Money, points, quantities, counts and ids are JSON integers only (issue 11, item 8).

Every integer field of every request body, of the simulation file and of the
rule file is found by walking the models (a field added tomorrow is walked
too), and each is fed a string of digits, an integral float and a bool, which
must be refused with the `whole_number` error, and the integer, which must be
accepted, in Python mode (what FastAPI and the fast path validate: parsed JSON,
parsed YAML) and in JSON mode (a stored rule set). Then the same over HTTP on
both paths of the till (fast path and FastAPI) and through `loyalpos simulate`
and `rules import`.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
import yaml
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter, ValidationError
from typer.testing import CliRunner

import loyalpos.api
from loyalpos import integers
from loyalpos.api.app import create_app
from loyalpos.cli import app as cli
from loyalpos.rules.schema import RuleSetDoc
from loyalpos.rules.simulate import SimulationDoc
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from tests.integration.checkout_helpers import Shop, open_shop

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Bodies whose content a route validates itself, with the model it uses.
DOCUMENT_MODELS: list[type[BaseModel]] = [RuleSetDoc, SimulationDoc]


def body_params() -> Iterator[tuple[str, Any]]:
    """(route path and parameter, annotation) of every body parameter of every
    route module of the API."""
    for info in pkgutil.walk_packages(loyalpos.api.__path__, "loyalpos.api."):
        module = importlib.import_module(info.name)
        router = getattr(module, "router", None)
        for route in getattr(router, "routes", []):
            if isinstance(route, APIRoute):
                for param in route.dependant.body_params:
                    info_ = param.field_info
                    full = (
                        Annotated[info_.annotation, *info_.metadata]
                        if info_.metadata
                        else info_.annotation
                    )
                    yield f"{route.path}:{param.name}", full


def body_models() -> list[type[BaseModel]]:
    """Every request body model of the API."""
    found: list[type[BaseModel]] = []
    for _, annotation in body_params():
        for model in models_in(annotation):
            if model not in found:
                found.append(model)
    return found


def models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    for arg in get_args(annotation):
        yield from models_in(arg)


def _has_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False  # walked as a model of its own
    return any(_has_int(a) for a in get_args(annotation) if not isinstance(a, str | int))


def _wrap(annotation: Any, value: Any) -> Any:
    """A value of `annotation` with `value` at its integer leaf."""
    if annotation is int:
        return value
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _wrap(args[0], value)
    if origin in (Union, types.UnionType):
        return _wrap(next(a for a in args if _has_int(a)), value)
    if origin is list:
        return [_wrap(args[0], value)]
    if origin is dict:
        return {"k": _wrap(args[1], value)}
    raise AssertionError(f"cannot place an integer in {annotation!r}")


def integer_fields() -> list[tuple[str, Any]]:
    """(model.field, annotation with its metadata) of every integer leaf reachable
    from the request bodies and the documents."""
    seen: set[type[BaseModel]] = set()
    # A number sent as the whole body, or as an embedded body parameter, counts too.
    fields: list[tuple[str, Any]] = [(name, a) for name, a in body_params() if _has_int(a)]
    pending = [*body_models(), *DOCUMENT_MODELS]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            annotation = field.annotation
            pending.extend(models_in(annotation))
            if _has_int(annotation):
                full = Annotated[annotation, *field.metadata] if field.metadata else annotation
                fields.append((f"{model.__name__}.{name}", full))
    return sorted(fields, key=lambda f: f[0])


FIELDS = integer_fields()


def _sample(adapter: TypeAdapter[Any]) -> int:
    """An integer the field accepts: its lower bound, found in its JSON schema."""
    pending: list[Any] = [adapter.json_schema()]
    while pending:
        schema = pending.pop()
        if isinstance(schema, dict):
            if schema.get("type") == "integer":
                if "minimum" in schema:
                    return int(schema["minimum"])
                if "exclusiveMinimum" in schema:
                    return int(schema["exclusiveMinimum"]) + 1
                return 1
            pending.extend(schema.values())
        elif isinstance(schema, list):
            pending.extend(schema)
    raise AssertionError("no integer in the schema")


def test_the_walk_finds_the_fields_the_issue_names() -> None:
    names = {name for name, _ in FIELDS}
    for expected in [
        "LineIn.unit_price_fen",
        "LineIn.qty",
        "OptionsIn.points",
        "ConfirmIn.points",
        "TenderIn.amount_fen",
        "PointsBooking.points",
        "PointsAdjust.points",
        "Reversal.store_id",
        "RefundLineIn.line_no",
        "ReconcileIn.order_count",
        "MemberCreate.referrer_id",
        "LineDoc.unit_price_fen",
        "LineDoc.qty",
        "MemberDoc.points",
        "BudgetDoc.discount_fen",
        "BenefitDoc.threshold_fen",
        "BenefitDoc.nth",
        "Step.points",
        "OffsetDoc.step",
        "LimitsDoc.total_uses",
        "ScopeDoc.weekdays",
        "MemberPricesDoc.items",
        "CampaignDoc.points",
        "StackingDoc.max_coupons",
    ]:
        assert expected in names
    assert len(FIELDS) > 50


@pytest.mark.parametrize(("name", "annotation"), FIELDS, ids=[f[0] for f in FIELDS])
def test_an_integer_field_takes_an_integer_and_nothing_that_looks_like_one(
    name: str, annotation: Any
) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(annotation)
    n = _sample(adapter)
    assert adapter.validate_python(_wrap(annotation, n)) == _wrap(annotation, n)
    assert adapter.validate_json(json.dumps(_wrap(annotation, n))) == _wrap(annotation, n)
    for loose in (str(n), float(n), True, False):
        value = _wrap(annotation, loose)
        for validate in (adapter.validate_python, lambda v: adapter.validate_json(json.dumps(v))):
            with pytest.raises(ValidationError) as refused:
                validate(value)
            errors = refused.value.errors()
            assert [e["type"] for e in errors] == [integers.ERROR_TYPE], (name, loose, errors)
            assert "JSON integer" in errors[0]["msg"] and "整数" in errors[0]["msg"]


def test_money_messages_name_the_fen_and_the_schema_keeps_its_bounds() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(dict(FIELDS)["LineIn.unit_price_fen"])
    with pytest.raises(ValidationError) as refused:
        adapter.validate_python(1250.0)
    assert "must be a whole number of 分 (JSON integer)" in refused.value.errors()[0]["msg"]
    assert adapter.json_schema() == {"type": "integer", "minimum": 0, "maximum": 100_000_000}
    with pytest.raises(ValidationError) as low:
        adapter.validate_python(-1)
    assert low.value.errors()[0]["type"] == "greater_than_equal"


# --- over HTTP: both paths of the till, and the other bodies -------------------------


@pytest.fixture
def shop(ctx: Context) -> Shop:
    return open_shop(ctx)


@pytest.fixture
def clients(ctx: Context) -> Iterator[tuple[TestClient, TestClient]]:
    """The app as built (fast path on) and the same with every call through FastAPI."""
    slow_app = create_app(ctx)
    slow_app.till_routes = {}  # type: ignore[attr-defined]
    with TestClient(create_app(ctx)) as fast, TestClient(slow_app) as slow:
        yield fast, slow


# (what, as a price or points, as a quantity)
LOOSE = [
    ("a string of digits", "10000", "1"),
    ("an integral float", 10000.0, 1.0),
    ("a bool", True, True),
]


def _cart(shop: Shop, price: Any = 10000, qty: Any = 1) -> dict[str, Any]:
    return {
        "store_id": shop.store_a,
        "member": {"member_id": shop.member},
        "lines": [{"sku": "tea", "category": "food", "unit_price_fen": price, "qty": qty}],
    }


def _confirm(shop: Shop, order_no: str, **cart: Any) -> dict[str, Any]:
    return {
        **_cart(shop, **cart),
        "order_no": order_no,
        "tenders": [{"method": "cash", "amount_fen": 10000}],
        "cashier": "c01",
        "terminal": "T1",
    }


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    problem = error["detail"]["errors"][0]
    assert (problem["field"], problem["type"]) == (field, integers.ERROR_TYPE), error
    assert "JSON integer" in error["message"] and field in error["message"]


@pytest.mark.parametrize(("what", "loose", "qty"), LOOSE, ids=[w for w, _, _ in LOOSE])
def test_the_till_refuses_loose_numbers_on_both_paths(
    ctx: Context,
    shop: Shop,
    clients: tuple[TestClient, TestClient],
    what: str,
    loose: Any,
    qty: Any,
) -> None:
    key = apikeys.create_key(ctx, shop.brand.id, Scope.CASHIER, "t", store_id=shop.store_a)
    headers = {"authorization": f"Bearer {key.secret}"}
    for client in clients:
        # a good quote first: the key is then in the process's cache, so the fast
        # client's requests below are validated by the fast path itself
        ok = client.post("/v1/quotes", json=_cart(shop), headers=headers)
        assert ok.status_code == 200 and ok.json()["subtotal_fen"] == 10000
        for url, body, field in [
            ("/v1/quotes", _cart(shop, price=loose), "lines.0.unit_price_fen"),
            ("/v1/quotes", _cart(shop, qty=qty), "lines.0.qty"),
            ("/v1/orders", _confirm(shop, "N1", price=loose), "lines.0.unit_price_fen"),
            ("/v1/orders", _confirm(shop, "N2", qty=qty), "lines.0.qty"),
            ("/v1/identify", {"store_id": str(shop.store_a), "member": {"phone": "1"}}, "store_id"),
        ]:
            _refused(client.post(url, json=body, headers=headers), field)


@pytest.mark.parametrize(("what", "loose", "qty"), LOOSE, ids=[w for w, _, _ in LOOSE])
def test_points_bodies_refuse_loose_numbers_and_book_nothing(
    ctx: Context,
    shop: Shop,
    clients: tuple[TestClient, TestClient],
    what: str,
    loose: Any,
    qty: Any,
) -> None:
    key = apikeys.create_key(ctx, shop.brand.id, Scope.HQ, "hq").secret
    headers = {"authorization": f"Bearer {key}"}
    client = clients[0]
    before = client.get(f"/v1/members/{shop.member}/points", headers=headers).json()["total"]
    for url, body in [
        (f"/v1/members/{shop.member}/points/earn", {"points": loose}),
        (
            f"/v1/members/{shop.member}/points/adjust",
            {"points": loose, "operator": "o", "reason": "r"},
        ),
    ]:
        _refused(client.post(url, json=body, headers=headers), "points")
    after = client.get(f"/v1/members/{shop.member}/points", headers=headers).json()["total"]
    assert after == before


def _simulation() -> dict[str, Any]:
    doc = yaml.safe_load((EXAMPLES / "05_threshold_coupon.yaml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize(
    ("where", "loose"),
    [
        ("cart.lines.0.unit_price_fen", "10000"),
        ("cart.lines.0.unit_price_fen", 1250.0),
        ("cart.lines.0.qty", True),
        ("member.points", "100"),
        ("rules.coupons.0.threshold_fen", 10000.0),
        ("rules.coupons.0.amount_fen", True),
    ],
)
def test_simulate_refuses_loose_numbers_in_the_file_and_over_http(
    ctx: Context, tmp_path: Path, where: str, loose: Any
) -> None:
    doc = _simulation()
    node: Any = doc
    *path, last = where.split(".")
    for part in path:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = loose
    file = tmp_path / "sim.yaml"
    file.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = CliRunner().invoke(cli, ["simulate", str(file)])
    assert result.exit_code == 1, result.output
    error = json.loads(result.stderr)["error"]
    assert (error["code"], error["detail"]["field"]) == ("invalid_simulation", where)
    assert "JSON integer" in error["message"]

    brand = brands.create_brand(ctx, "sim", "Sim")
    key = apikeys.create_key(ctx, brand.id, Scope.HQ, "hq").secret
    with TestClient(create_app(ctx)) as client:
        headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
        body = json.dumps(doc, default=str)  # the cart's time as ISO text
        answer = client.post("/v1/simulate", content=body, headers=headers)
        assert answer.status_code == 422
        assert answer.json()["error"]["detail"]["field"] == where
        rules_body = json.dumps({"document": doc["rules"]}, default=str)
        rules = client.post("/v1/rules", content=rules_body, headers=headers)
        assert rules.status_code == (422 if where.startswith("rules.") else 201), rules.text


def test_yaml_floats_and_booleans_are_refused_in_a_rule_file(
    ctx: Context, runner: CliRunner, tmp_path: Path
) -> None:
    brands.create_brand(ctx, "rf", "Rule file")
    for text, field in [
        ("coupons: [{id: c, kind: cash, amount_fen: 500.0}]", "coupons.0.amount_fen"),
        ("coupons: [{id: c, kind: cash, amount_fen: '500'}]", "coupons.0.amount_fen"),
        ("stacking: {max_coupons: yes}", "stacking.max_coupons"),  # YAML 1.1: a bool
        ("points: {offset: {step: 100.0}}", "points.offset.step"),
    ]:
        file = tmp_path / "rules.yaml"
        file.write_text(text, encoding="utf-8")
        result = runner.invoke(cli, ["rules", "import", "-b", "rf", str(file)])
        assert result.exit_code == 1, result.output
        error = json.loads(result.stderr)["error"]
        assert (error["code"], error["detail"]["field"]) == ("invalid_rules", field), error
    file.write_text("coupons: [{id: c, kind: cash, amount_fen: 500}]", encoding="utf-8")
    result = runner.invoke(cli, ["rules", "import", "-b", "rf", str(file)])
    assert result.exit_code == 0, result.output


def _has_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return False
    return any(_has_bool(a) for a in get_args(annotation) if not isinstance(a, str | int))


def boolean_fields() -> list[tuple[type[BaseModel], str]]:
    """(model, field) of every yes/no field reachable from the request bodies and
    the documents (found by walking, as the integers are)."""
    seen: set[type[BaseModel]] = set()
    found: list[tuple[type[BaseModel], str]] = []
    pending = [*body_models(), *DOCUMENT_MODELS]
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            pending.extend(models_in(field.annotation))
            if _has_bool(field.annotation):
                found.append((model, name))
    return sorted(found, key=lambda f: (f[0].__name__, f[1]))


BOOLEANS = boolean_fields()


def test_the_boolean_walk_finds_the_till_and_rule_flags() -> None:
    names = {f"{m.__name__}.{n}" for m, n in BOOLEANS}
    assert {"QuoteIn.reserve", "OptionsIn.skip_all", "BenefitDoc.exclusive"} <= names


@pytest.mark.parametrize(("model", "name"), BOOLEANS, ids=lambda x: getattr(x, "__name__", x))
@pytest.mark.parametrize("value", [0, 1, "true", "yes", 1.0])
def test_a_yes_no_field_takes_true_or_false_and_nothing_that_looks_like_one(
    model: type[BaseModel], name: str, value: Any
) -> None:
    """`"reserve": 0` was read as false: schemathesis' negative-data check found it."""
    field = model.model_fields[name]
    full = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
    adapter: TypeAdapter[Any] = TypeAdapter(full)
    with pytest.raises(ValidationError):
        adapter.validate_python(value)
    with pytest.raises(ValidationError):
        adapter.validate_json(json.dumps(value))
    assert adapter.validate_python(True) is True
    assert adapter.validate_json("false") is False
