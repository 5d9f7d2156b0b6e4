"""API keys: shown once and stored hashed, revocable, scoped (cashier: one store;
HQ: the brand), and a key of one brand sees and changes nothing of another.

The cross-brand test walks every route of the app (`app.routes`), so routes
added later are covered without editing this file: path and body ids are taken
from brand A's rows (found by the parameter's name, e.g. `order_id` -> `orders`),
request bodies are built from the route's OpenAPI schema, and the checks are
generic: no 5xx, nothing of A in any answer, A's rows unchanged, no 2xx where A's
ids were sent, and 401 without a key.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import CheckConstraint, Table, TypeDecorator, insert, select
from sqlalchemy.exc import StatementError

from loyalpos.api.app import create_app
from loyalpos.db.tables import api_keys, metadata
from loyalpos.domain.errors import Unauthorized
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members, points
from loyalpos.service.loyalty.members import Identity
from loyalpos.service.rulebook import rulesets

MARK = "ALPHA"  # in every text of brand A's data: never in an answer to brand B
PHONE_A = "13800138000"
PHONE_B = "13912345678"
PUBLIC = {"/healthz"}  # the only routes that need no key


@dataclass
class Tenant:
    id: int
    store_1: int
    store_2: int
    hq: str
    cashier_1: str  # a cashier key of store_1
    cashier_2: str


@dataclass
class World:
    ctx: Context
    client: TestClient
    a: Tenant
    b: Tenant
    member: int = 0
    entry: int = 0
    card_no: str = ""
    code: str = ""
    claim_token: str = ""
    draft_version: int = 0
    spare_key: int = 0
    ids: dict[str, list[int]] = field(default_factory=dict)  # brand A's ids by table
    texts: dict[str, str] = field(default_factory=dict)  # a value of A's by text column name


def _tenant(ctx: Context, code: str, label: str) -> Tenant:
    brand = brands.create_brand(ctx, code, f"{label} brand")
    s1 = brands.create_store(ctx, brand.id, "S1", f"{label} store 1").id
    s2 = brands.create_store(ctx, brand.id, "S2", f"{label} store 2").id
    hq = apikeys.create_key(ctx, brand.id, Scope.HQ, f"{label} HQ").secret
    c1 = apikeys.create_key(ctx, brand.id, Scope.CASHIER, f"{label} till 1", store_id=s1).secret
    c2 = apikeys.create_key(ctx, brand.id, Scope.CASHIER, f"{label} till 2", store_id=s2).secret
    return Tenant(brand.id, s1, s2, hq, c1, c2)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def world(ctx: Context) -> Iterator[World]:
    a = _tenant(ctx, "a", MARK)
    b = _tenant(ctx, "b", "Beta")
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield World(ctx, client, a, b)


def call(w: World, method: str, url: str, key: str | None, **kwargs: Any) -> httpx.Response:
    headers = {**(bearer(key) if key else {}), **kwargs.pop("headers", {})}
    response = w.client.request(method, url, headers=headers, **kwargs)
    assert response.status_code < 500, (method, url, response.status_code, response.text)
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"code", "message", "detail"}, error
    return response


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- keys: shown once, stored hashed, listed without secrets, revoked ------------


def test_a_key_is_shown_once_and_only_its_hash_is_stored(world: World, ctx: Context) -> None:
    created = call(
        world, "POST", "/v1/keys", world.a.hq, json={"scope": "hq", "name": "integration"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["key"]
    assert secret.startswith(body["prefix"] + "_") and body["prefix"].startswith("lp_")
    assert (body["scope"], body["name"], body["store_id"], body["revoked_at"]) == (
        "hq",
        "integration",
        None,
        None,
    )
    # It works at once.
    assert call(world, "GET", "/v1/keys", secret).status_code == 200
    # The listing never carries a secret or a hash, nor does the table hold one.
    listed = call(world, "GET", "/v1/keys", world.a.hq)
    assert listed.status_code == 200
    assert listed.json()["count"] == 4
    for item in listed.json()["data"]:
        assert set(item) == {
            "id",
            "scope",
            "name",
            "store_id",
            "prefix",
            "created_at",
            "revoked_at",
        }
    tail = secret.removeprefix(body["prefix"] + "_")
    assert tail not in listed.text and world.a.hq.split("_", 2)[2] not in listed.text
    with ctx.engine.connect() as conn:
        rows = conn.execute(select(api_keys)).all()
    stored = " ".join(str(v) for row in rows for v in row)
    for raw in (secret, world.a.hq, world.a.cashier_1, world.b.hq):
        assert raw not in stored and raw.split("_", 2)[2] not in stored
    assert all(len(row.key_hash) == 64 and row.key_hash not in listed.text for row in rows)


def test_cashier_keys_need_their_brands_store_and_hq_keys_none(world: World) -> None:
    def create(body: dict[str, Any], status: int, code: str) -> None:
        response = call(world, "POST", "/v1/keys", world.a.hq, json=body)
        assert (response.status_code, error_code(response)) == (status, code), response.text

    create({"scope": "cashier", "name": "till"}, 422, "store_required")
    create({"scope": "hq", "name": "hq", "store_id": world.a.store_1}, 422, "store_not_allowed")
    create(
        {"scope": "cashier", "name": "till", "store_id": world.b.store_1}, 404, "store_not_found"
    )
    create({"scope": "root", "name": "x"}, 422, "validation_error")
    create({"scope": "hq", "name": ""}, 422, "validation_error")
    made = call(
        world,
        "POST",
        "/v1/keys",
        world.a.hq,
        json={"scope": "cashier", "name": "till 3", "store_id": world.a.store_2},
    )
    assert made.status_code == 201 and made.json()["store_id"] == world.a.store_2
    me = call(
        world, "POST", "/v1/members", made.json()["key"], json={"phone": PHONE_A, "name": "n"}
    )
    assert me.status_code == 201 and me.json()["store_id"] == world.a.store_2


def test_a_revoked_key_is_401_at_once_and_revoking_twice_is_harmless(world: World) -> None:
    made = call(world, "POST", "/v1/keys", world.a.hq, json={"scope": "hq", "name": "temp"}).json()
    assert call(world, "GET", "/v1/rules", made["key"]).status_code == 200
    revoked = call(world, "POST", f"/v1/keys/{made['id']}/revoke", world.a.hq)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    for url in ("/v1/rules", "/v1/keys"):
        response = call(world, "GET", url, made["key"])
        assert (response.status_code, error_code(response)) == (401, "api_key_revoked")
    again = call(world, "POST", f"/v1/keys/{made['id']}/revoke", world.a.hq)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]
    listed = {k["id"]: k for k in call(world, "GET", "/v1/keys", world.a.hq).json()["data"]}
    assert listed[made["id"]]["revoked_at"] is not None
    # Another brand cannot see, let alone revoke, it; nor can a cashier key.
    other = call(world, "POST", f"/v1/keys/{made['id']}/revoke", world.b.hq)
    assert (other.status_code, error_code(other)) == (404, "key_not_found")
    cashier = call(world, "POST", f"/v1/keys/{made['id']}/revoke", world.a.cashier_1)
    assert (cashier.status_code, error_code(cashier)) == (403, "hq_key_required")
    missing = call(world, "POST", "/v1/keys/999999/revoke", world.a.hq)
    assert (missing.status_code, error_code(missing)) == (404, "key_not_found")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "api_key_required"),
        ("", "api_key_required"),
        ("Bearer", "api_key_required"),
        ("Token lp_x_y", "api_key_required"),
        ("Bearer nope", "api_key_invalid"),
        ("Bearer lp__secret", "api_key_invalid"),
        ("Bearer lp_unknown_secret", "api_key_invalid"),
        ("Bearer lp_" + "x" * 300 + "_y", "api_key_invalid"),
        ("Bearer xx_demohq_publicdemokey", "api_key_invalid"),
    ],
)
def test_missing_malformed_and_unknown_keys_are_401(
    world: World, header: str | None, code: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, url in (("GET", "/v1/keys"), ("POST", "/v1/members/lookup")):
        response = call(world, method, url, None, headers=headers, json={"phone": PHONE_A})
        assert (response.status_code, error_code(response)) == (401, code), response.text


def test_a_right_prefix_with_a_wrong_secret_is_401(world: World) -> None:
    prefix = world.a.hq.rsplit("_", 1)[0]
    for wrong in (prefix + "_guess", world.a.hq[:-1], world.a.hq + "x"):
        response = call(world, "GET", "/v1/keys", wrong)
        assert (response.status_code, error_code(response)) == (401, "api_key_invalid")


# --- scopes ----------------------------------------------------------------------


def _a_member(w: World) -> tuple[int, int]:
    m = members.register(w.ctx, w.a.id, phone=PHONE_A, name="m", store_id=w.a.store_1)
    entry = points.earn(
        w.ctx, w.a.id, m.id, 100, points.Source("order", "O-1", "seed", store_id=w.a.store_1)
    )
    return m.id, entry.id


def test_a_cashier_key_does_the_till_work(world: World) -> None:
    key = world.a.cashier_1
    created = call(world, "POST", "/v1/members", key, json={"phone": PHONE_B, "name": "新会员"})
    assert created.status_code == 201, created.text
    m = created.json()["id"]
    assert created.json()["store_id"] == world.a.store_1  # registered at the key's store
    wechat = {"provider": "wechat", "kind": "openid", "value": "o-1"}
    code = call(world, "POST", f"/v1/members/{m}/code", key).json()["code"]
    for body in ({"phone": PHONE_B}, {"code": code}):
        assert call(world, "POST", "/v1/members/lookup", key, json=body).json()["id"] == m
    assert call(world, "POST", f"/v1/members/{m}/identities", key, json=wechat).status_code == 200
    assert call(world, "GET", f"/v1/members/{m}", key).status_code == 200
    claim = call(world, "POST", "/v1/claims", key, json={"order_ref": "R-1", "points": 7})
    assert claim.status_code == 201, claim.text
    token = claim.json()["token"]
    claimed = call(world, "POST", f"/v1/members/{m}/claims", key, json={"token": token})
    assert claimed.status_code == 200 and claimed.json()["points"] == 7
    assert call(world, "GET", f"/v1/members/{m}/points", key).json()["total"] == 7
    history = call(world, "GET", f"/v1/members/{m}/points/history", key).json()
    assert history["data"][0]["store_id"] == world.a.store_1  # the claim's store: the key's


def test_a_cashier_key_on_an_hq_endpoint_is_403_and_changes_nothing(world: World) -> None:
    m, entry = _a_member(world)
    hq_only: list[tuple[str, str, Any]] = [
        ("POST", f"/v1/members/{m}/points/earn", {"points": 5}),
        ("POST", f"/v1/members/{m}/points/spend", {"points": 5}),
        ("POST", f"/v1/members/{m}/points/adjust", {"points": 5, "operator": "o", "reason": "r"}),
        ("POST", f"/v1/points/entries/{entry}/reverse", {}),
        ("POST", "/v1/jobs/expire", None),
        ("POST", "/v1/rules", {"document": {}}),
        ("GET", "/v1/rules", None),
        ("GET", "/v1/rules/1", None),
        ("POST", "/v1/rules/1/publish", {}),
        ("POST", "/v1/simulate", {}),
        ("POST", "/v1/keys", {"scope": "hq", "name": "escalate"}),
        ("GET", "/v1/keys", None),
        ("POST", "/v1/keys/1/revoke", None),
    ]
    for method, url, body in hq_only:
        for key in (world.a.cashier_1, world.a.cashier_2):
            response = call(world, method, url, key, json=body)
            assert response.status_code == 403, (method, url, response.text)
            assert error_code(response) == "hq_key_required"
    assert points.balance(world.ctx, world.a.id, m).total == 100
    assert rulesets.versions(world.ctx, world.a.id) == []
    assert len(apikeys.list_keys(world.ctx, world.a.id)) == 3
    assert all(k.revoked_at is None for k in apikeys.list_keys(world.ctx, world.a.id))


def test_a_cashier_key_of_store_1_cannot_act_for_store_2(world: World) -> None:
    key = world.a.cashier_1
    for store in (world.a.store_2, world.b.store_1):
        for url, body in (
            ("/v1/members", {"phone": PHONE_B, "name": "x", "store_id": store}),
            ("/v1/claims", {"order_ref": "R-2", "points": 1, "store_id": store}),
        ):
            response = call(world, "POST", url, key, json=body)
            assert (response.status_code, error_code(response)) == (403, "wrong_store"), url
            assert response.json()["error"]["detail"]["store_id"] == store
    lookup = call(world, "POST", "/v1/members/lookup", world.a.hq, json={"phone": PHONE_B})
    assert lookup.status_code == 404
    # Its own store, named, is fine; an HQ key may name any store of its brand.
    for k, store in ((key, world.a.store_1), (world.a.hq, world.a.store_2)):
        body = {"order_ref": f"R-{store}", "points": 1, "store_id": store}
        assert call(world, "POST", "/v1/claims", k, json=body).status_code == 201


# --- one brand never sees another: every route -----------------------------------


def _check_values(table: Table) -> dict[str, Any]:
    """First allowed value of each `col IN ('a', ...)` check constraint."""
    found: dict[str, Any] = {}
    for c in table.constraints:
        if isinstance(c, CheckConstraint):
            m = re.fullmatch(r"\s*(\w+) IN \('([^']*)'.*", str(c.sqltext), re.S)
            if m:
                found[m.group(1)] = m.group(2)
    return found


def _filler(table: Table, a: Tenant, ids: dict[str, list[int]], now: datetime) -> dict[str, Any]:
    """A row of brand A for `table`: required columns filled by type."""
    checks = _check_values(table)
    row: dict[str, Any] = {}
    for col in table.columns:
        if col.primary_key or col.name == "brand_id":
            continue
        parents = [fk.column.table.name for fk in col.foreign_keys]
        if parents:
            parent = parents[0]
            if parent == "stores":
                row[col.name] = a.store_1
            elif ids.get(parent):
                row[col.name] = ids[parent][0]
            continue
        if col.nullable or col.server_default is not None or col.default is not None:
            continue
        if col.name in checks:
            row[col.name] = checks[col.name]
            continue
        sql_type = col.type
        if isinstance(sql_type, TypeDecorator):
            sql_type = sql_type.impl_instance
        try:
            kind = sql_type.python_type
        except NotImplementedError:
            kind = str
        if kind is bool:
            row[col.name] = False
        elif kind is int:
            row[col.name] = 1
        elif kind is datetime:
            row[col.name] = now
        elif kind is date:
            row[col.name] = now.date()
        elif kind in (dict, list):
            row[col.name] = kind()
        else:
            length = getattr(col.type, "length", None) or 40
            row[col.name] = f"{MARK}-{table.name}-{col.name}"[:length]
    row["brand_id"] = a.id
    return row


def _seed_a(w: World) -> None:
    """Brand A's data through the services, then a row in every other brand table."""
    ctx, a = w.ctx, w.a
    m = members.register(
        ctx,
        a.id,
        phone=PHONE_A,
        name=f"{MARK} member",
        store_id=a.store_1,
        identities=[Identity("wechat", "openid", f"{MARK}-openid")],
    )
    w.member, w.card_no = m.id, m.card_no
    source = points.Source("order", f"{MARK}-order", f"{MARK} entry", store_id=a.store_1)
    w.entry = points.earn(ctx, a.id, m.id, 100, source).id
    w.code = members.issue_code(ctx, a.id, m.id)[0]
    w.claim_token = members.create_claim(
        ctx, a.id, order_ref=f"{MARK}-receipt", points=3, store_id=a.store_1
    )
    for _ in range(3):
        v = rulesets.save_draft(ctx, a.id, "{}", author=MARK, comment=f"{MARK} rules")
    rulesets.publish(ctx, a.id, 1, by=MARK)
    w.draft_version = v.version
    w.spare_key = apikeys.create_key(ctx, a.id, Scope.HQ, f"{MARK} spare").key.id
    now = ctx.now()
    for table in metadata.sorted_tables:
        if "brand_id" not in table.c or "id" not in table.c:
            continue
        with ctx.engine.connect() as conn:
            have = conn.execute(select(table.c.id).where(table.c.brand_id == a.id)).scalars()
            w.ids[table.name] = sorted(have)
        if not w.ids[table.name]:
            try:
                with ctx.engine.begin() as conn:
                    new = conn.execute(insert(table).values(_filler(table, a, w.ids, now)))
                    w.ids[table.name] = [int(new.inserted_primary_key[0])]
            except (StatementError, ValueError, TypeError):
                continue  # a constraint the filler cannot guess: the table stays empty for A
        with ctx.engine.connect() as conn:
            first = conn.execute(select(table).where(table.c.id == w.ids[table.name][0])).one()
        for col in table.columns:
            value = getattr(first, col.name)
            if isinstance(value, str) and value:
                w.texts.setdefault(col.name, value)


def _snapshot(w: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of brand A, and the rows of brand-less tables hanging off them."""
    shot: dict[str, list[tuple[Any, ...]]] = {}
    owned: dict[str, set[Any]] = {}
    with w.ctx.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "brands":
                query = select(table).where(table.c.id == w.a.id)
            elif "brand_id" in table.c:
                query = select(table).where(table.c.brand_id == w.a.id)
            else:
                links = [
                    (col, fk.column.table.name)
                    for col in table.columns
                    for fk in col.foreign_keys
                    if fk.column.table.name in owned
                ]
                if not links:
                    continue
                col, parent = links[0]
                query = select(table).where(col.in_(sorted(owned[parent]) or [-1]))
            rows = [tuple(r) for r in conn.execute(query)]
            shot[table.name] = sorted(rows, key=repr)
            if "id" in table.c:
                owned[table.name] = {r[list(table.c.keys()).index("id")] for r in rows}
    return shot


def _id_for(w: World, name: str) -> int | None:
    """An id of brand A for a parameter called `name`, or None if none is known."""
    known = {
        "member_id": w.member,
        "entry_id": w.entry,
        "key_id": w.spare_key,
        "version": w.draft_version,
        "store_id": w.a.store_1,
    }
    if name in known:
        return known[name]
    base = name.removesuffix("_id")
    for table in (base + "s", base + "es", base[:-1] + "ies", base, "point_" + base + "s"):
        if w.ids.get(table):
            return w.ids[table][0]
    return None


class Built:
    """What the generic builder sent: whether A's ids were in it."""

    def __init__(self) -> None:
        self.a_ids = False


def _example(w: World, schema: dict[str, Any], spec: dict[str, Any], name: str, b: Built) -> Any:
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return _example(w, spec["components"]["schemas"][ref], spec, name, b)
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"] or schema[union]
            return _example(w, options[0], spec, name, b)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: _example(w, props[k], spec, k, b) for k in schema.get("required", [])}
    if kind == "array":
        item = _example(w, schema.get("items", {}), spec, name, b)
        return [item] * int(schema.get("minItems", 0))
    if kind == "integer":
        found = _id_for(w, name) if name.endswith("_id") or name == "version" else None
        if found is not None:
            b.a_ids = True
            return found
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return max(int(low), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "string":
        if schema.get("format") == "date":
            return "2024-01-01"
        if schema.get("format") == "date-time":
            return "2024-01-01T00:00:00+00:00"
        if "phone" in name:
            return PHONE_B
        return "walker".ljust(int(schema.get("minLength", 1)), "x")
    return {}


@dataclass
class Request:
    url: str
    body: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    refuse: bool = False  # A's ids or data: B must be refused
    a_status: int | None = None  # what A's own HQ key gets for the same request
    generic: bool = False  # built from the schema: its body may not validate


def _known(w: World) -> dict[tuple[str, str], list[Request]]:
    """Hand-made requests for the routes this file knows: valid bodies, so that a
    404 for brand B is tenancy at work and not a validation error."""
    m, e = w.member, w.entry
    wechat = {"provider": "wechat", "kind": "openid", "value": f"{MARK}-openid"}
    adjust = {"points": 5, "operator": "o", "reason": "r", "store_id": w.a.store_1}
    return {
        ("GET", "/v1/members/{member_id}"): [
            Request(f"/v1/members/{m}", refuse=True, a_status=200)
        ],
        ("POST", "/v1/members/{member_id}/identities"): [
            Request(
                f"/v1/members/{m}/identities", {**wechat, "value": "o-2"}, refuse=True, a_status=200
            )
        ],
        ("POST", "/v1/members/{member_id}/code"): [
            Request(f"/v1/members/{m}/code", refuse=True, a_status=200)
        ],
        ("POST", "/v1/members/{member_id}/claims"): [
            Request(f"/v1/members/{m}/claims", {"token": w.claim_token}, refuse=True, a_status=200)
        ],
        ("GET", "/v1/members/{member_id}/points"): [
            Request(f"/v1/members/{m}/points", refuse=True, a_status=200)
        ],
        ("GET", "/v1/members/{member_id}/points/history"): [
            Request(f"/v1/members/{m}/points/history", refuse=True, a_status=200)
        ],
        ("POST", "/v1/members/{member_id}/points/earn"): [
            Request(f"/v1/members/{m}/points/earn", {"points": 5}, refuse=True, a_status=201)
        ],
        ("POST", "/v1/members/{member_id}/points/spend"): [
            Request(f"/v1/members/{m}/points/spend", {"points": 5}, refuse=True, a_status=201)
        ],
        ("POST", "/v1/members/{member_id}/points/adjust"): [
            Request(f"/v1/members/{m}/points/adjust", adjust, refuse=True, a_status=201)
        ],
        ("POST", "/v1/points/entries/{entry_id}/reverse"): [
            Request(f"/v1/points/entries/{e}/reverse", {"points": 1}, refuse=True, a_status=201)
        ],
        ("POST", "/v1/members/lookup"): [
            Request("/v1/members/lookup", {"phone": PHONE_A}, refuse=True, a_status=200),
            Request("/v1/members/lookup", {"card_no": w.card_no}, refuse=True, a_status=200),
            Request("/v1/members/lookup", {"identity": wechat}, refuse=True, a_status=200),
            # A's signed code is no code at all for B (422 forged).
            Request("/v1/members/lookup", {"code": w.code}, a_status=200),
        ],
        ("POST", "/v1/members"): [
            Request("/v1/members", {"phone": PHONE_B, "name": "Beta"}),
            Request(
                "/v1/members",
                {"phone": "13700001111", "name": "Beta", "claim_token": w.claim_token},
                refuse=True,
            ),
            Request(
                "/v1/members",
                {"phone": "13700002222", "name": "B", "store_id": w.a.store_1},
                refuse=True,
            ),
        ],
        ("POST", "/v1/claims"): [
            Request(
                "/v1/claims", {"order_ref": "X", "points": 1, "store_id": w.a.store_1}, refuse=True
            )
        ],
        ("GET", "/v1/rules"): [Request("/v1/rules")],
        ("POST", "/v1/rules"): [Request("/v1/rules", {"document": {}})],
        ("GET", "/v1/rules/{version}"): [
            Request(f"/v1/rules/{w.draft_version}", refuse=True, a_status=200)
        ],
        ("POST", "/v1/rules/{version}/publish"): [
            Request(f"/v1/rules/{w.draft_version}/publish", {}, refuse=True, a_status=200)
        ],
        ("POST", "/v1/simulate"): [Request("/v1/simulate", {})],
        ("POST", "/v1/jobs/expire"): [Request("/v1/jobs/expire")],
        ("GET", "/v1/keys"): [Request("/v1/keys")],
        ("POST", "/v1/keys"): [
            Request(
                "/v1/keys", {"scope": "cashier", "name": "x", "store_id": w.a.store_1}, refuse=True
            )
        ],
        ("POST", "/v1/keys/{key_id}/revoke"): [
            Request(f"/v1/keys/{w.spare_key}/revoke", refuse=True, a_status=200)
        ],
    }


def _api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every API route, however its routers were included; the
    browser pages (loyalpos.web, out of the OpenAPI document) are not API routes:
    they answer people with a session cookie, not POS systems with a key."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI before routers were kept as included objects
        found = [(r, r.path_format) for r in app.routes if isinstance(r, APIRoute)]
    else:
        found = [
            (rc.original_route, rc.path_format)
            for rc in iterate(app.routes)
            if isinstance(rc.original_route, APIRoute)
        ]
    return [
        (method, path)
        for route, path in found
        if route.include_in_schema
        for method in sorted(route.methods - {"HEAD", "OPTIONS"})
    ]


def _generic(w: World, path: str, method: str, spec: dict[str, Any]) -> Request:
    """A request for a route this file does not know, from its OpenAPI operation:
    path ids (and required query and body ids) are brand A's where one is found.
    Only A's ids in the path oblige a refusal: a batch or a filtered list may
    answer 2xx while refusing A's items (the other checks still hold)."""
    op = spec["paths"].get(path, {}).get(method.lower(), {})
    in_path, elsewhere = Built(), Built()
    url = path
    params: dict[str, Any] = {}
    for p in op.get("parameters", []):
        name, schema = p["name"], p.get("schema", {})
        if p["in"] == "path":
            if schema.get("type") == "string" and name in w.texts:
                value: Any = w.texts[name]
                in_path.a_ids = True
            else:
                value = _example(w, schema, spec, name, in_path)
            url = url.replace("{" + name + "}", str(value))
        elif p["in"] == "query" and p.get("required"):
            params[name] = _example(w, schema, spec, name, elsewhere)
    for name in re.findall(r"{(\w+)}", url):  # not in the document: still an id of A
        found = _id_for(w, name)
        in_path.a_ids = in_path.a_ids or found is not None
        url = url.replace("{" + name + "}", str(found or 1))
    body = None
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = _example(w, content["application/json"].get("schema", {}), spec, "body", elsewhere)
    return Request(url, body, params, refuse=in_path.a_ids, generic=True)


def _sent(value: Any) -> list[str]:
    """The texts a request carried (an answer may echo them back)."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _sent(v)]
    if isinstance(value, list):
        return [t for v in value for t in _sent(v)]
    return [value] if isinstance(value, str) else []


def _leaks(w: World, req: Request, text: str) -> list[str]:
    """A's data in an answer to B, beyond what B's request itself said."""
    for echoed in sorted(_sent([req.url.split("/"), req.body, req.params]), key=len, reverse=True):
        if echoed:
            text = text.replace(echoed, "")
    return [s for s in (MARK, w.card_no, w.claim_token) if s and s in text]


def test_no_route_lets_a_key_of_brand_b_read_or_change_brand_a(world: World) -> None:
    w = world
    _seed_a(w)
    app = w.client.app
    assert isinstance(app, FastAPI)
    spec: dict[str, Any] = app.openapi()
    known = _known(w)
    before = _snapshot(w)
    seen: set[tuple[str, str]] = set()
    walked: list[tuple[str, str, Request]] = []
    for method, path in _api_routes(app):
        seen.add((method, path))
        if path in PUBLIC:
            continue
        requests = known.get((method, path)) or [_generic(w, path, method, spec)]
        for req in requests:
            walked.append((method, path, req))
            kwargs: dict[str, Any] = {"json": req.body, "params": req.params}
            # Without a key: refused before anything is looked at.
            anon = call(w, method, req.url, None, **kwargs)
            assert (anon.status_code, error_code(anon)) == (401, "api_key_required"), (
                method,
                req.url,
                anon.text,
            )
            for key in (w.b.hq, w.b.cashier_1):
                r = call(w, method, req.url, key, **kwargs)
                where = (method, req.url, req.body, key, r.status_code, r.text)
                assert not _leaks(w, req, r.text), where
                if req.refuse and req.generic:
                    # A body built from the schema may fail validation (any 4xx),
                    # but with A's ids in the path nothing may succeed.
                    assert r.status_code >= 400, where
                elif req.refuse:
                    assert r.status_code in (403, 404), where
                assert _snapshot(w) == before, where
    missing = set(known) - seen
    assert not missing, f"routes this test knows are gone: {missing}"
    assert len(walked) >= 25
    # The same requests with A's own HQ key do succeed: the 404s above were
    # tenancy, not bad requests.
    for method, path, req in walked:
        if req.a_status is not None:
            r = call(w, method, req.url, w.a.hq, json=req.body, params=req.params)
            assert r.status_code == req.a_status, (method, path, r.text)


# --- the command line ------------------------------------------------------------


def test_key_commands_create_list_and_revoke(db_url: str, ctx: Context) -> None:
    import json

    from typer.testing import CliRunner

    from loyalpos.cli import app as cli_app
    from loyalpos.config import get_settings
    from tests.conftest import TEST_SECRET

    get_settings.cache_clear()
    env = {
        "LOYALPOS_DATABASE_URL": db_url,
        "LOYALPOS_ENV": "test",
        "LOYALPOS_SECRET_KEY": TEST_SECRET,
    }
    runner = CliRunner(env=env)

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(cli_app, list(args))
        assert result.exit_code == code, (args, result.output)
        return result.stdout

    try:
        shown = run("demo")
        assert "lp_demohq_publicdemokey" in shown and "lp_demosh001_publicdemokey" in shown
        assert "lp_demohq_publicdemokey" in run("demo")  # idempotent, still printed
        made = json.loads(
            run(
                "key",
                "create",
                "-b",
                "demo",
                "--scope",
                "cashier",
                "--store",
                "BJ001",
                "--name",
                "t",
            )
        )
        assert (made["scope"], made["store"], made["name"]) == ("cashier", "BJ001", "t")
        assert made["key"].startswith(made["prefix"] + "_")
        listed = run("key", "list", "-b", "demo")
        assert made["prefix"] in listed and made["key"] not in listed
        assert len(json.loads(listed)) == 4
        revoked = json.loads(run("key", "revoke", "-b", "demo", str(made["id"])))
        assert revoked["revoked_at"] is not None
        with pytest.raises(Unauthorized):
            apikeys.authenticate(ctx, made["key"])
        # Typed errors, not tracebacks.
        assert (
            "store_required"
            in runner.invoke(
                cli_app, ["key", "create", "-b", "demo", "--scope", "cashier", "--name", "x"]
            ).output
        )
        run(
            "key",
            "create",
            "-b",
            "demo",
            "--scope",
            "cashier",
            "--store",
            "NOPE",
            "--name",
            "x",
            code=1,
        )
        run("key", "create", "-b", "demo", "--scope", "root", "--name", "x", code=2)
        run("key", "revoke", "-b", "demo", "999", code=1)
        # A revoked demo key is not re-created, nor printed, by the next seed.
        demo_hq = next(k for k in apikeys.list_keys(ctx, 1) if k.prefix == "lp_demohq")
        run("key", "revoke", "-b", "demo", str(demo_hq.id))
        assert "lp_demohq_publicdemokey" not in run("demo")
        with pytest.raises(Unauthorized):
            apikeys.authenticate(ctx, "lp_demohq_publicdemokey")
        assert apikeys.authenticate(ctx, "lp_demosh001_publicdemokey").scope is Scope.CASHIER
    finally:
        get_settings.cache_clear()
