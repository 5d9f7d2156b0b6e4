"""The till's calls (identify, quote, confirm) without FastAPI's per-request machinery.

A till request is small and its work is a few milliseconds, so what FastAPI
does around it weighs: routing through every route, the dependency solver,
telemetry and exit-stack middlewares, a response object per layer. Profiled
under load on 2 vCPUs, that was about a quarter of a server process's CPU per
confirm. `TillApp` answers a well-formed till request itself: body read within
the size limit, JSON content type, a bearer key already in the process's
cache, a body its pydantic model accepts. It then runs the same call as the
route (`TillRoute.call`), validates and serialises the answer with the same
response model as FastAPI would (`TypeAdapter.validate_python` with
attributes, `dump_json` by alias), and maps errors with the same functions
(api/errors.py).

Anything else goes, untouched, to the FastAPI application: a request it
cannot take as is (bad JSON, a validation error, a key to look up, a body over
the limit, another content type) is replayed there with the body already
read, so every error keeps its one shape and its one place. The routes remain
the documented contract (OpenAPI) and the fallback; tests/integration/test_fastpath.py
holds both paths to the same answers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from loyalpos.api import errors, headers
from loyalpos.api.headers import RawHeaders
from loyalpos.domain.errors import DomainError
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Principal
from loyalpos.service.base.context import Context

Answer = tuple[int, dict[str, Any]]
"""A call's HTTP status and the content its response model describes."""

B = TypeVar("B", bound=BaseModel)


@dataclass(frozen=True)
class TillRoute(Generic[B]):
    """One till endpoint: its request model, its response model and its work."""

    body: type[B]
    out: type[BaseModel]
    call: Callable[[Context, Principal, B], Awaitable[Answer]]
    adapter: TypeAdapter[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "adapter", TypeAdapter(self.out))

    def render(self, content: Any) -> bytes:
        return self.adapter.dump_json(
            self.adapter.validate_python(content, from_attributes=True), by_alias=True
        )


class _NotHere(Exception):
    """The request is not one the fast path takes as is: FastAPI answers it."""


@dataclass
class _Read:
    """What the fast path read of the request, to hand on if FastAPI answers."""

    chunks: list[bytes] = field(default_factory=list)
    done: bool = False

    def replay(self, receive: Receive) -> Receive:
        pending = list(self.chunks)
        finished = self.done

        async def again() -> Message:
            if pending:
                chunk = pending.pop(0)
                more = bool(pending) or not finished
                return {"type": "http.request", "body": chunk, "more_body": more}
            return await receive()

        return again


class TillApp(FastAPI):
    """FastAPI with the till's hot routes answered directly when they can be."""

    till_routes: dict[str, TillRoute[Any]]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        routes = getattr(self, "till_routes", None)
        if scope["type"] == "http" and scope["method"] == "POST" and routes:
            route = routes.get(scope["path"])
            if route is not None:
                read = _Read()
                try:
                    await self._serve(route, scope, receive, send, read)
                    return
                except _NotHere:
                    receive = read.replay(receive)
        await super().__call__(scope, receive, send)

    async def _serve(
        self, route: TillRoute[Any], scope: Scope, receive: Receive, send: Send, read: _Read
    ) -> None:
        ctx: Context = self.state.ctx
        raw_headers = scope["headers"]
        body = await _body(raw_headers, receive, ctx.settings.max_body_bytes, read)
        who = _principal(ctx, raw_headers)
        if not _is_json(headers.first(raw_headers, b"content-type")):
            raise _NotHere
        try:
            model = route.body.model_validate(json.loads(body))
        except (ValueError, ValidationError, RecursionError) as exc:
            # Bad JSON (a ValueError), too deeply nested, or not what the model takes.
            raise _NotHere from exc
        try:
            status, content = await route.call(ctx, who, model)
            response = Response(route.render(content), status, media_type="application/json")
        except Exception as exc:
            # A domain error, a lost database (503) or a bug (500): answered
            # here as the routes' are (errors.AnswerErrors), the connection kept.
            response = errors.response_for(exc, scope)
        await response(scope, receive, send)


async def _body(raw_headers: RawHeaders, receive: Receive, limit: int, read: _Read) -> bytes:
    """The whole body, or _NotHere when it is over `limit` (BodyLimit answers 413)
    or the client went away."""
    length = headers.first(raw_headers, b"content-length")
    if length is None or not length.isdigit() or int(length) > limit:
        raise _NotHere
    size = 0
    while not read.done:
        message = await receive()
        if message["type"] != "http.request":
            raise _NotHere
        chunk = message.get("body", b"")
        read.chunks.append(chunk)
        read.done = not message.get("more_body", False)
        size += len(chunk)
        if size > limit:
            raise _NotHere
    return b"".join(read.chunks)


def _principal(ctx: Context, raw_headers: RawHeaders) -> Principal:
    """The caller, read and checked by the functions deps.principal uses
    (`headers.bearer_key`, `apikeys.authenticate_cached`), when that needs no
    I/O. A key to read from the database, or credentials that are refused (no
    key, two `Authorization` headers, an unknown key), are FastAPI's to answer:
    in the order FastAPI checks things (bad JSON before a missing key)."""
    try:
        who = apikeys.authenticate_cached(ctx, headers.bearer_key(raw_headers))
    except DomainError as exc:
        raise _NotHere from exc
    if who is None:
        raise _NotHere
    return who


def _is_json(content_type: bytes | None) -> bool:
    if content_type is None:
        return False
    kind = content_type.split(b";", 1)[0].strip().lower()
    return kind == b"application/json"
