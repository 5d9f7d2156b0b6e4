"""The till's fast path (api/till/fastpath.py) answers exactly as the FastAPI routes do,
and leaves to them every request it cannot take as is."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from loyalpos.api.app import create_app
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope as KeyScope
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members
from tests.integration.checkout_helpers import Shop, give_coupon, open_shop


class Paths:
    """One shop served twice: by the app as built (fast path on) and by the same
    app with its fast path turned off (every request through FastAPI)."""

    def __init__(self, ctx: Context, shop: Shop, fast: TestClient, slow: TestClient) -> None:
        self.ctx = ctx
        self.shop = shop
        self.fast = fast
        self.slow = slow
        self.keys = {
            "a": apikeys.create_key(
                ctx, shop.brand.id, KeyScope.CASHIER, "till A", store_id=shop.store_a
            ).secret,
            "hq": apikeys.create_key(ctx, shop.brand.id, KeyScope.HQ, "hq").secret,
        }

    def both(self, url: str, body: Any, **kw: Any) -> tuple[Any, Any]:
        return self.send(self.fast, url, body, **kw), self.send(self.slow, url, body, **kw)

    def send(
        self,
        client: TestClient,
        url: str,
        body: Any,
        *,
        key: str | None = "a",
        content_type: str = "application/json",
    ) -> Any:
        headers = {"content-type": content_type}
        if key is not None:
            headers["authorization"] = f"Bearer {self.keys.get(key, key)}"
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return client.post(url, content=content, headers=headers)

    def cart(self, *lines: tuple[str, int, int], member: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "store_id": self.shop.store_a,
            "lines": [
                {"sku": s, "category": "food", "unit_price_fen": p, "qty": q} for s, p, q in lines
            ],
        }
        if member:
            body["member"] = {"member_id": self.shop.member}
        return body

    def order(self, order_no: str, cart: dict[str, Any], paid: int) -> dict[str, Any]:
        return {
            **cart,
            "order_no": order_no,
            "tenders": [{"method": "wechat", "amount_fen": paid, "reference": "wx-1"}],
            "cashier": "c01",
            "terminal": "T1",
        }


@pytest.fixture
def paths(ctx: Context) -> Iterator[Paths]:
    shop = open_shop(ctx)
    slow_app = create_app(ctx)
    slow_app.till_routes = {}  # type: ignore[attr-defined]
    with TestClient(create_app(ctx)) as fast, TestClient(slow_app) as slow:
        yield Paths(ctx, shop, fast, slow)


def same(fast: Any, slow: Any) -> None:
    assert fast.status_code == slow.status_code, (fast.text, slow.text)
    assert fast.headers["content-type"] == slow.headers["content-type"]
    assert fast.json() == slow.json()


def test_identify_and_quote_answer_alike(paths: Paths) -> None:
    give_coupon(paths.ctx, paths.shop, "cash5")
    store = paths.shop.store_a
    code, _ = members.issue_code(paths.ctx, paths.shop.brand.id, paths.shop.member)
    cart = paths.cart(("tea", 6000, 2))
    cases: list[tuple[str, Any, dict[str, Any]]] = [
        ("/v1/identify", {"store_id": store, "member": {"code": code}}, {}),
        ("/v1/identify", {"store_id": store, "member": {"phone": "13800138000"}}, {}),
        # unknown member (404), another store's till (403), an HQ key
        ("/v1/identify", {"store_id": store, "member": {"member_id": 999999}}, {}),
        ("/v1/identify", {"store_id": paths.shop.store_b, "member": {"member_id": 1}}, {}),
        ("/v1/identify", {"store_id": store, "member": {"card_no": "nope"}}, {"key": "hq"}),
        ("/v1/quotes", cart, {}),
        ("/v1/quotes", {**cart, "options": {"points": "max"}}, {}),
        ("/v1/quotes", paths.cart(("tea", 6000, 1), member=False), {}),
        # what FastAPI answers: bad input, no key, a wrong key, another content type
        ("/v1/quotes", {**cart, "lines": [{"sku": "x", "unit_price_fen": -1, "qty": 1}]}, {}),
        ("/v1/quotes", {**cart, "surprise": 1}, {}),
        ("/v1/quotes", b'{"store_id": ', {}),
        ("/v1/quotes", cart, {"key": None}),
        ("/v1/quotes", cart, {"key": "lp_nope_notakey"}),
        ("/v1/quotes", cart, {"content_type": "text/plain"}),
        ("/v1/quotes", cart, {"content_type": "application/json; charset=utf-8"}),
        ("/v1/identify", b"[" * 70_000, {}),  # nested too deep for json.loads
        ("/v1/identify", b"[" * 1_000_001, {}),
    ]
    for url, body, kw in cases:
        fast, slow = paths.both(url, body, **kw)
        same(fast, slow)
    statuses = [paths.send(paths.fast, url, body, **kw).status_code for url, body, kw in cases]
    assert statuses[:14] == [200, 200, 404, 403, 422, 200, 200, 200, 422, 422, 422, 401, 401, 422]
    assert statuses[-3:] == [200, 400, 413]


def test_confirm_answers_alike(paths: Paths) -> None:
    cart = paths.cart(("tea", 6000, 2), ("cake", 1500, 1))
    price = paths.send(paths.fast, "/v1/quotes", cart).json()["payable_fen"]

    def normal(r: Any) -> dict[str, Any]:
        body: dict[str, Any] = r.json()
        body.pop("order_id", None)
        body.pop("order_no", None)
        return body

    for n, (url_cart, paid) in enumerate([(cart, price), (paths.cart(("tea", 100, 1)), 100)]):
        orders = [paths.order(f"{side}-{n}", url_cart, paid) for side in ("f", "s")]
        fast = paths.send(paths.fast, "/v1/orders", orders[0])
        slow = paths.send(paths.slow, "/v1/orders", orders[1])
        assert (fast.status_code, slow.status_code) == (201, 201), (fast.text, slow.text)
        assert normal(fast) == normal(slow)
        # the same again is a replay (200) on either path, whichever booked it
        for client in (paths.fast, paths.slow):
            replay = paths.send(client, "/v1/orders", orders[0])
            assert replay.status_code == 200 and replay.json() == {**fast.json(), "replayed": True}
    # a reused number with another body, and a price that changed: 409 alike
    reused, reused_slow = paths.both("/v1/orders", paths.order("f-0", cart, price + 1))
    same(reused, reused_slow)
    assert reused.json()["error"]["code"] == "order_no_reused"
    wrong, wrong_slow = paths.both("/v1/orders", paths.order("new-1", cart, price - 1))
    same(wrong, wrong_slow)
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "price_changed"


class Counting:
    """Counts the HTTP requests that reach FastAPI's own request handling."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        original = FastAPI.__call__

        async def call(app: FastAPI, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.seen.append(scope["path"])
            await original(app, scope, receive, send)

        monkeypatch.setattr(FastAPI, "__call__", call)


def test_a_well_formed_till_request_skips_fastapi_and_the_rest_reach_it(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(monkeypatch)
    cart = paths.cart(("tea", 6000, 1))
    assert paths.send(paths.fast, "/v1/quotes", cart).status_code == 200  # looks the key up
    counting.seen.clear()
    for _ in range(3):
        assert paths.send(paths.fast, "/v1/quotes", cart).status_code == 200
    confirm = paths.send(paths.fast, "/v1/orders", paths.order("c-1", cart, 6000))
    assert confirm.status_code == 201, confirm.text
    assert counting.seen == []
    # bad input, another endpoint, and a body sent without a length (chunked)
    assert paths.send(paths.fast, "/v1/quotes", {"store_id": 1}).status_code == 422
    assert paths.fast.get("/healthz").status_code == 200
    chunked = paths.fast.post(
        "/v1/orders",
        content=iter([json.dumps(paths.order("c-2", cart, 6000)).encode()]),
        headers={"authorization": f"Bearer {paths.keys['a']}", "content-type": "application/json"},
    )
    assert chunked.status_code == 201, chunked.text
    assert counting.seen == ["/v1/quotes", "/healthz", "/v1/orders"]
    assert paths.send(paths.fast, "/v1/orders", paths.order("c-2", cart, 6000)).status_code == 200


# --- the request's headers, read one way on both paths (issue 11, item 2) -------


def asgi_post(
    app: Any, path: str, raw_headers: list[tuple[bytes, bytes]], body: bytes
) -> tuple[int, dict[bytes, bytes], bytes]:
    """POST `body` with exactly `raw_headers` (names and values as given: no
    client library lower-cases a name or strips a value) straight to the ASGI app."""

    async def run() -> list[Message]:
        sent: list[Message] = []
        done = asyncio.Event()
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), *raw_headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "state": {},
        }
        await app(scope, receive, send)
        return sent

    messages = asyncio.run(run())
    start = next(m for m in messages if m["type"] == "http.response.start")
    content = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), content


def test_authorization_header_edge_cases_answer_alike_on_both_paths(paths: Paths) -> None:
    """Duplicates, the scheme's case, whitespace, empty and foreign schemes, the
    header name's case: the fast path and FastAPI read them with one function, so
    the same request gets the same status, content type and body on both; two
    `Authorization` headers are refused (before, the fast path took the last
    and FastAPI the first, so which key acted depended on the key cache)."""
    a, hq = paths.keys["a"], paths.keys["hq"]
    body = json.dumps(paths.cart(("tea", 6000, 1))).encode()
    # Both keys in the process's cache, so the fast path would answer with either.
    for key in ("a", "hq"):
        assert paths.send(paths.fast, "/v1/quotes", paths.cart(("tea", 1, 1)), key=key).is_success
    basic = base64.b64encode(b"user:pass").decode()
    cases: list[tuple[list[tuple[str, str]], int, str | None]] = [
        ([("authorization", f"Bearer {a}"), ("authorization", f"Bearer {hq}")], 401, "ambiguous"),
        ([("authorization", f"Bearer {hq}"), ("authorization", f"Bearer {a}")], 401, "ambiguous"),
        ([("authorization", f"Bearer {a}"), ("authorization", f"Bearer {a}")], 401, "ambiguous"),
        ([("authorization", f"Bearer {a}"), ("authorization", "")], 401, "ambiguous"),
        ([("Authorization", f"Bearer {a}"), ("AUTHORIZATION", f"Bearer {hq}")], 401, "ambiguous"),
        ([("authorization", f"Bearer {a}")], 200, None),
        ([("Authorization", f"Bearer {a}")], 200, None),
        ([("AUTHORIZATION", f"Bearer {a}")], 200, None),
        ([("authorization", f"bearer {a}")], 200, None),
        ([("authorization", f"BEARER {a}")], 200, None),
        ([("authorization", f"Bearer   {a}")], 200, None),
        ([("authorization", f"Bearer\t{a}")], 200, None),
        ([("authorization", f" \tBearer {a} \t")], 200, None),
        ([("authorization", "")], 401, "required"),
        ([("authorization", "Bearer")], 401, "required"),
        ([("authorization", "Bearer   ")], 401, "required"),
        ([("authorization", f"Bearer{a}")], 401, "required"),
        ([("authorization", f"Basic {basic}")], 401, "required"),
        ([("authorization", f"Token {a}")], 401, "required"),
        ([("authorization", a)], 401, "required"),
        ([("authorization", f"Bearer {a} {a}")], 401, "invalid"),
        ([("authorization", f"Bearer {a}x")], 401, "invalid"),
        ([], 401, "required"),
    ]
    for auth, status, code in cases:
        raw = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((name.encode(), value.encode()) for name, value in auth),
        ]
        fast = asgi_post(paths.fast.app, "/v1/quotes", raw, body)
        slow = asgi_post(paths.slow.app, "/v1/quotes", raw, body)
        assert fast[0] == slow[0] == status, (auth, fast, slow)
        assert fast[1][b"content-type"] == slow[1][b"content-type"] == b"application/json"
        assert json.loads(fast[2]) == json.loads(slow[2]), auth
        if code is not None:
            assert json.loads(fast[2])["error"]["code"] == f"api_key_{code}", auth


def test_content_type_and_length_are_read_alike_on_both_paths(paths: Paths) -> None:
    """The fast path reads a repeated header as Starlette does (the first), so a
    body FastAPI would not take as JSON is not priced by the fast path either."""
    body = json.dumps(paths.cart(("tea", 6000, 1))).encode()
    auth = (b"authorization", f"Bearer {paths.keys['a']}".encode())
    length = (b"content-length", str(len(body)).encode())
    assert paths.send(paths.fast, "/v1/quotes", body).status_code == 200  # key cached
    for types in (
        [b"text/plain", b"application/json"],
        [b"application/json", b"text/plain"],
        [b"APPLICATION/JSON"],
    ):
        raw = [auth, length, *((b"content-type", t) for t in types)]
        fast = asgi_post(paths.fast.app, "/v1/quotes", raw, body)
        slow = asgi_post(paths.slow.app, "/v1/quotes", raw, body)
        assert fast[0] == slow[0], (types, fast, slow)
        assert fast[1][b"content-type"] == slow[1][b"content-type"]
        assert json.loads(fast[2]) == json.loads(slow[2]), types


def test_two_authorization_headers_are_refused_on_every_path(paths: Paths) -> None:
    """Not only the till's calls: every route that takes a key reads it the same way."""
    a, hq = paths.keys["a"], paths.keys["hq"]
    two = [("authorization", f"Bearer {hq}"), ("authorization", f"Bearer {a}")]
    member = paths.shop.member
    for method, url in [
        ("GET", f"/v1/members/{member}/coupons"),
        ("GET", f"/v1/members/{member}/points"),
        ("GET", "/v1/keys"),
        ("POST", f"/v1/members/{member}/coupons"),
    ]:
        answer = paths.fast.request(method, url, headers=two, json={"template": "cash5"})
        assert answer.status_code == 401, (url, answer.text)
        assert answer.json()["error"]["code"] == "api_key_ambiguous"
        assert answer.headers["content-type"] == "application/json"
    # each key alone still works
    assert paths.fast.get(f"/v1/members/{member}/coupons", headers=two[:1]).status_code == 200
    assert paths.fast.get("/v1/keys", headers=[("authorization", f"Bearer {hq}")]).is_success
