"""API keys (接口密钥) for an administrator (keys.manage): the list, a new key
(an HQ key for the brand, or a cashier key for one store) whose secret is shown
on the answer's page once and never again, and revoking one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import DomainError, InvalidInput, NotFound
from loyalpos.service.admin import accounts, apikeys
from loyalpos.service.base import brands
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for

router = APIRouter(include_in_schema=False)
KeyId = Annotated[int, Path(gt=0, le=2**63 - 1)]
HERE = "/console/keys"


def _scopes(request: Request) -> dict[str, str]:
    _ = gettext_for(request)
    return {
        apikeys.Scope.CASHIER.value: _("Cashier key (one store's tills)"),
        apikeys.Scope.HQ.value: _("HQ key (the whole brand)"),
    }


def _guard(
    request: Request, csrf: str | None = None
) -> tuple[accounts.Session | None, Response | None]:
    return shell.guard(request, Action.KEYS_MANAGE, HERE, csrf)


def _errors_of(request: Request, exc: DomainError) -> dict[str, str]:
    _ = gettext_for(request)
    messages = {
        "invalid_name": ("name", _("Enter a name of 1-100 characters.")),
        "store_required": ("store", _("A cashier key needs its store.")),
        "store_not_allowed": ("store", _("An HQ key has no store: leave it empty.")),
        "store_not_found": ("store", _("Pick one of the stores.")),
    }
    field, message = messages.get(exc.code, (str(exc.detail.get("field", "form")), exc.message))
    return {field: message}


@router.get(HERE)
def keys(request: Request) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    ctx = ctx_of(request)
    return shell.render(
        request,
        session,
        "console/keys.html",
        active=HERE,
        keys=list(reversed(apikeys.list_keys(ctx, session.brand_id))),
        scopes=_scopes(request),
        stores={s.id: s for s in brands.list_stores(ctx, session.brand_id)},
        done=request.query_params.get("done", ""),
    )


def _form(
    request: Request,
    session: accounts.Session,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    order = ["name", "scope", "store"]
    return shell.render(
        request,
        session,
        "console/key_form.html",
        active=HERE,
        status=status,
        values=values,
        errors=errors,
        focus=next((n for n in order if n in errors), "name"),
        scopes=_scopes(request),
        stores=brands.list_stores(ctx_of(request), session.brand_id),
    )


@router.get(HERE + "/new")
def new_key(request: Request) -> Response:
    session, stop = _guard(request)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    return _form(request, session, {"name": "", "scope": "cashier", "store": ""}, {})


@router.post(HERE + "/new")
def create_key(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form(max_length=1000)] = "",
    scope: Annotated[str, Form(max_length=20)] = "",
    store: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    _ = gettext_for(request)
    values = {"name": name, "scope": scope, "store": store}
    if scope not in _scopes(request):
        return _form(request, session, values, {"scope": _("Pick one of the kinds.")}, 400)
    if store and not (store.isdigit() and len(store) < 19):
        return _form(request, session, values, {"store": _("Pick one of the stores.")}, 400)
    ctx = ctx_of(request)
    try:
        new = apikeys.create_key(
            ctx,
            session.brand_id,
            apikeys.Scope(scope),
            name,
            store_id=int(store) if store else None,
        )
    except (InvalidInput, NotFound) as exc:
        return _form(request, session, values, _errors_of(request, exc), 400)
    stores = {s.id: s for s in brands.list_stores(ctx, session.brand_id)}
    return shell.render(
        request,
        session,
        "console/key_created.html",
        active=HERE,
        key=new.key,
        secret=new.secret,
        scopes=_scopes(request),
        stores=stores,
    )


@router.post(HERE + "/{key_id}/revoke")
def revoke_key(request: Request, key_id: KeyId, csrf: Annotated[str, Form()] = "") -> Response:
    session, stop = _guard(request, csrf)
    if stop is not None or session is None:
        return stop or shell.to_sign_in()
    try:
        apikeys.revoke_key(ctx_of(request), session.brand_id, key_id)
    except NotFound:
        return RedirectResponse(HERE, status_code=303)
    return RedirectResponse(HERE + "?done=revoked", status_code=303)
