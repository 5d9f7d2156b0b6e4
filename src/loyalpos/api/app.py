"""The FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalpos import __version__
from loyalpos.api import errors, headers
from loyalpos.api.admin import health, keys, rulesets
from loyalpos.api.events import campaigns, webhooks
from loyalpos.api.loyalty import coupons, members, points
from loyalpos.api.till import checkout, holds, reconcile, till_events
from loyalpos.api.till.fastpath import TillApp
from loyalpos.logs import install_redaction
from loyalpos.service.base.context import Context
from loyalpos.web import console, pages, receipts, till


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    # What exists once the app has started (modules, routes, OpenAPI models) lives
    # as long as the process: moving it out of the collector's generations keeps
    # full collections short, which is what a quote's p99 otherwise pays for.
    gc.collect()
    gc.freeze()
    yield


def create_app(ctx: Context) -> FastAPI:
    install_redaction()
    app = TillApp(
        lifespan=_lifespan,
        title="loyalpos",
        version=__version__,
        description="Member-aware checkout and loyalty engine. Money is integer 分 (fen); "
        'errors are `{"error": {"code", "message", "detail"}}`.',
    )
    app.state.ctx = ctx
    app.add_middleware(BodyLimit, limit=ctx.settings.max_body_bytes)
    app.add_middleware(OneValuePerQueryName)
    errors.install(app)
    # The order fixes the order of paths in the OpenAPI document.
    app.include_router(health.router)
    app.include_router(members.router)
    app.include_router(checkout.router)
    app.include_router(coupons.router)
    app.include_router(points.router)
    app.include_router(rulesets.router)
    app.include_router(campaigns.router)
    app.include_router(webhooks.router)
    app.include_router(holds.router)
    app.include_router(reconcile.router)
    app.include_router(till_events.router)
    app.include_router(keys.router)
    # The browser pages: not in the OpenAPI document (include_in_schema=False).
    app.include_router(pages.router)
    app.include_router(till.router)
    app.include_router(console.router)
    app.include_router(receipts.router)
    app.till_routes = checkout.TILL_ROUTES
    return app


class OneValuePerQueryName:
    """Refuse a query parameter given twice (`?terminal=a&terminal=b`) with 422.

    Every query parameter of the API takes one value; given twice, the route
    would silently read one of them (the last), so a POS that builds its URL
    wrongly would get a filtered list it did not ask for. Checked once here for
    every /v1 route rather than in each one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope.get("query_string")
            and scope["path"].startswith("/v1/")
        ):
            repeated = _repeated_name(scope["query_string"])
            if repeated is not None:
                response = errors.error_response(
                    422,
                    "query_parameter_repeated",
                    f"参数 {repeated} 只能给一次 (query parameter {repeated!r} given more than once)",
                    {"parameter": repeated},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _repeated_name(query: bytes) -> str | None:
    seen: set[str] = set()
    for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name in seen:
            return name
        seen.add(name)
    return None


class BodyLimit:
    """Refuse bodies over `limit` bytes with 413: by Content-Length up front, and
    by counting what arrives, so a chunked upload without a length is cut off too."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    def _message(self) -> str:
        return f"请求体过大 (body larger than {self.limit} bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = headers.first(scope["headers"], b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            response = errors.error_response(413, "payload_too_large", self._message())
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised while the route reads its body: the HTTP error
                    # handler turns it into the usual 413 error body.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)
