"""What the API reads from a request's headers, read one way for every path.

The till's fast path (api/till/fastpath.py) and the FastAPI routes (api/deps.py,
app.BodyLimit) both read the raw ASGI header list through these functions.
When each read headers its own way, a request with two `Authorization`
headers was answered with the last key by the fast path and with the first by
FastAPI, so which key acted depended on whether the key was cached. Sharing
the reading makes that drift impossible; tests/integration/test_fastpath.py
holds both paths to the same answers for the edge cases.

Header names in an ASGI scope are lower case (the servers make them so); they
are compared case-insensitively anyway, so that a scope built by hand reads
the same.
"""

from __future__ import annotations

from collections.abc import Iterable

from loyalpos.domain.errors import Unauthorized

RawHeaders = Iterable[tuple[bytes, bytes]]
"""An ASGI scope's `headers`: (name, value) pairs, in the order they came."""

_AUTHORIZATION = b"authorization"
_BEARER = b"bearer"


def first(headers: RawHeaders, name: bytes) -> bytes | None:
    """The first value of header `name` (lower case), as Starlette's
    `Headers.get` reads it; None when absent."""
    for key, value in headers:
        if key == name or key.lower() == name:
            return value
    return None


def bearer_key(headers: RawHeaders) -> str:
    """The API key of `Authorization: Bearer <key>`, or Unauthorized saying what
    is wrong with the request's credentials.

    - more than one `Authorization` header: `api_key_ambiguous`. Which one
      counts is not the server's guess to make (a proxy may have added one).
    - no header, an empty one, another scheme (`Basic ...`) or `Bearer` without
      a key: `api_key_required`, whose message says how to send it.
    - `Bearer` followed by more than one word: `api_key_invalid` (a key has no
      spaces).

    The scheme is case-insensitive (`bearer`, `BEARER`; RFC 9110 11.1) and the
    key may be separated from it by any run of spaces or tabs: no key contains
    whitespace, so no reading of it is ambiguous."""
    found: bytes | None = None
    for key, value in headers:
        if key == _AUTHORIZATION or key.lower() == _AUTHORIZATION:
            if found is not None:
                raise Unauthorized(
                    "请求中有多个 Authorization 头，只能有一个 "
                    "(send exactly one 'Authorization: Bearer <key>' header)",
                    code="api_key_ambiguous",
                )
            found = value
    words = found.split() if found else []
    if len(words) < 2 or words[0].lower() != _BEARER:
        raise Unauthorized(
            "缺少接口密钥 (send the API key as 'Authorization: Bearer <key>')",
            code="api_key_required",
        )
    if len(words) > 2:
        raise Unauthorized("接口密钥格式错误 (malformed API key)", code="api_key_invalid")
    return words[1].decode("latin-1")
