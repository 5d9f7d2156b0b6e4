"""The FastAPI application."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from loyalpos import __version__
from loyalpos.api import errors
from loyalpos.api.routes import health, members, points
from loyalpos.logs import install_redaction
from loyalpos.service.context import Context


def create_app(ctx: Context) -> FastAPI:
    install_redaction()
    app = FastAPI(
        title="loyalpos",
        version=__version__,
        description="Member-aware checkout and loyalty engine. Money is integer 分 (fen); "
        'errors are `{"error": {"code", "message", "detail"}}`.',
    )
    app.state.ctx = ctx
    errors.install(app)
    limit = ctx.settings.max_body_bytes

    @app.middleware("http")
    async def _body_limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return errors.error_response(
                413, "payload_too_large", f"请求体过大 (body larger than {limit} bytes)"
            )
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(members.router)
    app.include_router(points.router)
    return app
