"""The one error shape, and the one place errors become HTTP statuses.

Every failure answers `{"error": {"code", "message", "detail"}}`: a domain
error with its category's 4xx, a lost database with 503 and `Retry-After`
(`DatabaseUnavailable`, as `db.outage` reads the drivers' errors), anything
else with 500. `response_for` is that mapping, for the FastAPI routes
(`AnswerErrors`) and the till's fast path (api/till/fastpath.py) alike.

Why `AnswerErrors` and not an exception handler for `Exception`: Starlette
runs such a handler in `ServerErrorMiddleware`, which sends its response and
then re-raises, so that the server can log the error; uvicorn then logs
"Exception in ASGI application" with the traceback and closes the keep-alive
connection, without `Connection: close`. A till that had already sent its
next request on that connection (a confirm, say) got a reset instead of an
answer. `AnswerErrors` answers and returns normally: the error is logged here,
once, and the connection stays usable.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalpos.db.outage import outage
from loyalpos.domain.errors import (
    Conflict,
    DatabaseUnavailable,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    TooManyAttempts,
    Unauthorized,
)
from loyalpos.web import render

log = logging.getLogger(__name__)

STATUS_BY_CATEGORY: list[tuple[type[DomainError], int]] = [
    (TooManyAttempts, 429),
    (Unauthorized, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (DomainError, 400),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}

# What a 503 for a lost database asks the till to wait before sending the
# request again: a PostgreSQL restart or failover takes seconds, a cashier waits.
RETRY_AFTER_SECONDS = 2


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine code to switch on, e.g. `member_not_found`")
    message: str = Field(description="for the cashier: 中文 (English)")
    detail: dict[str, Any] = Field(description="the facts behind it, e.g. `errors[].field`")


class ErrorOut(BaseModel):
    """The body of every error answer."""

    error: ErrorBody


# What each error status means, as the OpenAPI document says it.
ERROR_STATUSES: dict[int, str] = {
    400: "the request body could not be read (e.g. it is not UTF-8)",
    401: "no API key (`api_key_required`), or an unknown or revoked one "
    "(`api_key_invalid`, `api_key_revoked`)",
    403: "the key may not do this: `hq_key_required`, or a cashier key naming another "
    "store (`wrong_store`)",
    404: "not found in the caller's brand (an id of another brand is not found either)",
    409: "a conflict with the current state (nothing was changed)",
    413: "request body too large (`payload_too_large`)",
    422: "invalid input; `detail.errors[].field` names the field (`validation_error`), "
    "or a value the rules refuse",
    503: "the database is unavailable for a moment; retry (`Retry-After`)",
}


def responses(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route (or a router): the error statuses it can answer, each
    with the one error shape, so the OpenAPI document declares every status an
    operation answers. A `(status, text)` pair says what that status means there."""
    declared: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, text = entry if isinstance(entry, tuple) else (entry, ERROR_STATUSES[entry])
        declared[status] = {"model": ErrorOut, "description": text}
    return declared


V1_ERRORS = responses(401, 503)
"""What any `/v1` operation can answer, whatever it does: declared on every router."""


def error_body(code: str, message: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    detail: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, detail), status_code=status, headers=headers)


def status_for(exc: DomainError) -> int:
    return next(status for cls, status in STATUS_BY_CATEGORY if isinstance(exc, cls))


def domain_response(exc: DomainError) -> JSONResponse:
    # A throttled sign-in or a locked-out PIN says when to try again, as a 503 does.
    headers = (
        {"Retry-After": str(exc.retry_after_seconds)} if isinstance(exc, TooManyAttempts) else None
    )
    return error_response(
        status_for(exc), exc.code, exc.message, _jsonable(exc.detail), headers=headers
    )


def response_for(exc: Exception, scope: Scope | None = None) -> Response:
    """The answer to an exception a request raised (`scope` names the request in
    the log): the one mapping of every error that reaches the top. A browser
    asking for a page gets a page that says what to do, not an error body."""
    if isinstance(exc, DomainError):
        return domain_response(exc)
    down = outage(exc)
    page = scope is not None and render.wants_page(scope)
    if down is not None:
        answer = unavailable_response(down, scope)
        return render.unavailable_page(Request(scope)) if page and scope else answer
    answer = unexpected_response(exc, scope)
    return render.broken_page(Request(scope)) if page and scope else answer


def unavailable_response(down: DatabaseUnavailable, scope: Scope | None = None) -> JSONResponse:
    """503 with `Retry-After`, logged as one line (no traceback: an outage is
    not a bug, and a restart under load would bury the log in them)."""
    log.warning("database unavailable, answered 503: %s: %s", _request(scope), down.reason)
    return error_response(
        503,
        down.code,
        down.message,
        {"retry_after_seconds": RETRY_AFTER_SECONDS, "may_have_applied": down.committing},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def unexpected_response(exc: Exception, scope: Scope | None = None) -> JSONResponse:
    """The answer to a bug, logged once with its traceback."""
    log.error("unhandled error, answered 500: %s", _request(scope), exc_info=exc)
    return error_response(
        500, "internal_error", "系统繁忙，请稍后重试 (internal error; please retry)"
    )


def _request(scope: Scope | None) -> str:
    return f"{scope.get('method', '')} {scope.get('path', '')}" if scope else "-"


class AnswerErrors:
    """Answers whatever a request raised past the routes' exception handlers
    (`response_for`) and returns normally, so the server keeps the connection.

    An exception after the response has started cannot be answered any more:
    it goes on to the server, which closes the connection (the client sees a
    cut-off response, not a wrong one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            await response_for(exc, scope)(scope, receive, send)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return domain_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                # A rule of api/fields.py raises ValueError(message): its message as is.
                "message": err.get("msg", "").removeprefix("Value error, "),
                "type": err.get("type", ""),
            }
            for err in exc.errors()
        ]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return error_response(
            422,
            "validation_error",
            f"请求参数有误: {first['field']} {first['message']} (invalid request)".strip(),
            {"errors": problems},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    # Outermost of the app's own middleware (added last): see AnswerErrors.
    app.add_middleware(AnswerErrors)
