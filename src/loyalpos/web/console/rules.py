"""The rule set (规则) in the console: its versions with who published what and
when, the difference between two, a draft made from the version in force, its
coupon templates and promotions edited in a form (the rule set's own
validation, in Chinese next to the field), a cart tried against it as the till
prices it, publishing it with an effective time, and YAML import and export.

Everything is the service's: rulebook.rulesets for versions and drafts,
till.checkout.quote_with_rules for the till's quote of a draft."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from pydantic import BaseModel

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.domain.pricing import model as m
from loyalpos.rules.schema import BenefitDoc
from loyalpos.service.base import brands
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import checkout, receipts
from loyalpos.web.console import shell
from loyalpos.web.render import ctx_of, gettext_for

router = APIRouter(include_in_schema=False)
VersionNo = Annotated[int, Path(gt=0, le=1_000_000)]
SECTION = r"^(coupons|promotions)$"
MAX_UPLOAD = 1_000_000

KIND_LABELS = {
    "threshold": "Spend and save (满减)",
    "percent": "Percent off (折扣)",
    "cash": "Cash voucher (代金券)",
    "item": "Item coupon (单品券)",
    "bundle": "Bundle price (套餐价)",
    "nth_discount": "Nth item discount (第N件折扣)",
    "buy_n_free": "Buy N, one free (买N送一)",
}

# The form's fields: (name, label message id, input type); lists are comma-separated.
INTS = (
    "threshold_fen",
    "threshold_items",
    "amount_fen",
    "step_fen",
    "cap_fen",
    "price_fen",
    "nth",
    "n",
    "max_per_order",
    "priority",
    "valid_days",
    "limits_per_member_day",
    "limits_per_member_week",
    "limits_per_member_month",
    "limits_total_uses",
    "limits_total_discount_fen",
)
LISTS = (
    "bundle",
    "scope_stores",
    "scope_exclude_stores",
    "scope_categories",
    "scope_exclude_categories",
    "scope_skus",
    "scope_exclude_skus",
    "scope_tiers",
    "scope_weekdays",
    "scope_dates",
    "scope_hours",
)
TEXTS = ("id", "name", "kind", "percent", "sku", "valid_from", "valid_to", "return_policy")
CHECKS = ("exclusive", "with_points")


class BenefitForm(BaseModel):
    csrf: str = ""
    replaces: str = ""
    id: str = ""
    name: str = ""
    kind: str = ""
    threshold_fen: str = ""
    threshold_items: str = ""
    amount_fen: str = ""
    step_fen: str = ""
    cap_fen: str = ""
    percent: str = ""
    sku: str = ""
    price_fen: str = ""
    bundle: str = ""
    nth: str = ""
    n: str = ""
    max_per_order: str = ""
    priority: str = ""
    exclusive: str = ""
    with_points: str = ""
    valid_from: str = ""
    valid_to: str = ""
    valid_days: str = ""
    return_policy: str = ""
    scope_stores: str = ""
    scope_exclude_stores: str = ""
    scope_categories: str = ""
    scope_exclude_categories: str = ""
    scope_skus: str = ""
    scope_exclude_skus: str = ""
    scope_tiers: str = ""
    scope_weekdays: str = ""
    scope_dates: str = ""
    scope_hours: str = ""
    limits_per_member_day: str = ""
    limits_per_member_week: str = ""
    limits_per_member_month: str = ""
    limits_total_uses: str = ""
    limits_total_discount_fen: str = ""


def _whole(text: str) -> int | str:
    """A typed whole number as a number; anything else as typed, for the rule
    set's validation to refuse next to the field."""
    t = text.strip()
    return int(t) if re.fullmatch(r"-?\d{1,15}", t) else t


def to_document(form: BenefitForm) -> dict[str, Any]:
    """The form as the rule set's document part (only what was filled in)."""
    values = form.model_dump()
    doc: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if name.startswith("scope_"):
            doc.setdefault("scope", {})[name[6:]] = value
        elif name.startswith("limits_"):
            doc.setdefault("limits", {})[name[7:]] = value
        else:
            doc[name] = value

    for name in TEXTS:
        if values[name].strip():
            put(name, values[name].strip())
    for name in INTS:
        if values[name].strip():
            put(name, _whole(values[name]))
    for name in LISTS:
        items: list[Any] = [x.strip() for x in re.split(r"[,，\s]+", values[name]) if x.strip()]
        if name == "scope_weekdays":
            items = [_whole(x) for x in items]
        if items:
            put(name, items)
    for name in CHECKS:
        if values[name]:
            put(name, True)
    return doc


def from_document(b: BenefitDoc) -> dict[str, str]:
    """A template of the document as the form's values."""
    data = b.model_dump(mode="json")
    values = {name: "" for name in BenefitForm.model_fields if name != "csrf"}
    for name in values:
        if name.startswith("scope_"):
            raw = data["scope"].get(name[6:])
        elif name.startswith("limits_"):
            raw = data["limits"].get(name[7:])
        else:
            raw = data.get(name)
        if raw is None or raw is False:
            continue
        if isinstance(raw, list):
            values[name] = ", ".join(str(x) for x in raw)
        elif raw is True:
            values[name] = "on"
        elif name in ("valid_from", "valid_to"):
            values[name] = str(raw)[:16]
        else:
            values[name] = str(raw)
    values["replaces"] = b.id
    return values


# Pydantic's messages, in the page's language (message ids in English).
_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"Field required", "Required."),
    (r"Input should be a valid integer", "Enter a whole number."),
    (r"Input should be greater than or equal to (\S+)", "Must be at least {0}."),
    (r"Input should be greater than (\S+)", "Must be greater than {0}."),
    (r"Input should be less than or equal to (\S+)", "Must be at most {0}."),
    (r"Input should be a valid decimal", "Enter a number."),
    (r"Decimal input should have no more than (\d+) decimal places", "At most {0} decimals."),
    (r"String should have at least", "Required."),
    (r"String should have at most (\d+)", "At most {0} characters."),
    (r"String should match pattern", "Only letters, digits, - _ . or :."),
    (r"Input should be a valid datetime", "Enter a date and time."),
    (r"Input should be '", "Pick one of the choices."),
    (r"coupon and promotion ids must be unique", "Another coupon or promotion has this id."),
    (r"threshold benefit needs", "A spend-and-save needs an amount and a threshold."),
    (r"amount_fen cannot exceed", "The amount cannot exceed the threshold."),
    (r"cash voucher needs", "A cash voucher needs an amount."),
    (r"needs percent", "Enter the percent paid (e.g. 88)."),
    (r"item coupon needs", "An item coupon needs a sku, or skus or categories in scope."),
    (r"bundle needs", "A bundle needs at least two skus and a price."),
    (r"hours must look like|end before they start", "Write hours like 10:00-14:00."),
    (r"Input should be a valid date", "Write dates like 2024-06-18."),
    (r"valid_to must be after", "Must be after the start."),
    (r"return_policy is for coupons", "Only coupons have a return policy."),
    (r"give exactly one of", "Give exactly one rate."),
    (r"campaign needs an action", "A campaign needs an action: coupons, points or a tag."),
    (r"spend campaign needs min_paid_fen", "A spend campaign needs the amount paid."),
    (r"category campaign needs category", "A category campaign needs the category."),
    (r"unknown coupon templates", "A coupon template it issues does not exist."),
    (r"unknown tier", "No such tier."),
    (r"step must be worth a whole number of fen", "The step must be worth whole fen."),
    (r"ids must be unique", "Another one has this id."),
)

# Which field a whole-template refusal belongs next to.
_MODEL_FIELDS: tuple[tuple[str, str], ...] = (
    ("threshold benefit needs", "amount_fen"),
    ("amount_fen cannot exceed", "amount_fen"),
    ("cash voucher needs", "amount_fen"),
    ("needs percent", "percent"),
    ("item coupon needs", "sku"),
    ("bundle needs", "bundle"),
    ("valid_to must be after", "valid_to"),
    ("unique", "id"),
    ("return_policy is for coupons", "return_policy"),
)


def chinese(request: Request, message: str) -> str:
    _ = gettext_for(request)
    for pattern, msgid in _PATTERNS:
        found = re.search(pattern, message)
        if found:
            return _(msgid).format(*found.groups())
    return message


def form_errors(request: Request, exc: DomainError, section: str) -> dict[str, str]:
    """The rule set's refusals, each next to the form's field (or the form's top)."""
    errors: dict[str, str] = {}
    problems = exc.detail.get("errors") or [
        {"field": exc.detail.get("field", ""), "message": exc.message}
    ]
    for p in problems:
        path = str(p.get("field", ""))
        message = str(p.get("message", ""))
        parts = path.split(".")
        if len(parts) >= 3 and parts[0] == section and parts[1].isdigit():
            rest = parts[2:]
            name = "_".join(x for x in rest if not x.isdigit())
            # a kind's own fields come as e.g. coupons.0.sku; a tagged union never here
            name = name if name in BenefitForm.model_fields else "form"
        else:
            name = next((f for key, f in _MODEL_FIELDS if key in message), "form")
        errors.setdefault(name, chinese(request, message))
    return errors


# -- guards -------------------------------------------------------------------------


def _guard(request: Request, action: Action, csrf: str | None = None) -> Response | None:
    return shell.guard(request, action, "/console/rules", csrf)[1]


def _session(request: Request) -> Any:
    session = shell.signed(request)
    assert session is not None
    return session


def _zone(request: Request, brand_id: int) -> ZoneInfo:
    return ZoneInfo(brands.get_brand(ctx_of(request), brand_id).timezone)


def _local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M") if value else ""


# -- the versions -------------------------------------------------------------------


@router.get("/console/rules")
def versions(request: Request) -> Response:
    stop = _guard(request, Action.RULES_READ)
    if stop is not None:
        return stop
    session = _session(request)
    ctx = ctx_of(request)
    found = list(reversed(rulesets.versions(ctx, session.brand_id)))
    in_force, _rules = rulesets.in_force(ctx, session.brand_id)
    return shell.render(
        request,
        session,
        "console/rules.html",
        active="/console/rules",
        versions=found,
        in_force=in_force,
        zone=_zone(request, session.brand_id),
        local=_local,
        can_write=shell.may(session, Action.RULES_WRITE),
        errors={},
    )


@router.get("/console/rules/compare")
def compare(
    request: Request,
    old: Annotated[int, Query(gt=0, le=1_000_000)],
    new: Annotated[int, Query(gt=0, le=1_000_000)],
) -> Response:
    stop = _guard(request, Action.RULES_READ)
    if stop is not None:
        return stop
    session = _session(request)
    try:
        lines = rulesets.compare(ctx_of(request), session.brand_id, old, new)
    except NotFound:
        return RedirectResponse("/console/rules", status_code=303)
    return shell.render(
        request,
        session,
        "console/rules_compare.html",
        active="/console/rules",
        old=old,
        new=new,
        lines=lines,
    )


@router.post("/console/rules/drafts")
def new_draft(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    stop = _guard(request, Action.RULES_WRITE, csrf)
    if stop is not None:
        return stop
    session = _session(request)
    v = rulesets.draft_from(ctx_of(request), session.brand_id, author=session.user.login)
    return RedirectResponse(f"/console/rules/{v.version}", status_code=303)


@router.post("/console/rules/import")
async def import_yaml(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    comment: Annotated[str, Form(max_length=500)] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    stop = _guard(request, Action.RULES_WRITE, csrf)
    if stop is not None:
        return stop
    session = _session(request)
    _ = gettext_for(request)
    raw = await file.read(MAX_UPLOAD + 1) if file is not None else b""
    error = ""
    if not raw:
        error = _("Choose a YAML file.")
    elif len(raw) > MAX_UPLOAD:
        error = _("The file is larger than 1 MB.")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            error = _("The file is not UTF-8 text.")
    if not error:
        try:
            v = rulesets.save_draft(
                ctx_of(request),
                session.brand_id,
                text,
                author=session.user.login,
                comment=comment or _("Imported from YAML"),
            )
        except InvalidInput as exc:
            field = str(exc.detail.get("field", ""))
            message = chinese(
                request, str((exc.detail.get("errors") or [{}])[0].get("message", ""))
            )
            error = f"{field}: {message}" if field else exc.message
        else:
            return RedirectResponse(f"/console/rules/{v.version}", status_code=303)
    ctx = ctx_of(request)
    return shell.render(
        request,
        session,
        "console/rules.html",
        status=400,
        active="/console/rules",
        versions=list(reversed(rulesets.versions(ctx, session.brand_id))),
        in_force=rulesets.in_force(ctx, session.brand_id)[0],
        zone=_zone(request, session.brand_id),
        local=_local,
        can_write=True,
        errors={"file": error},
    )


# -- one version --------------------------------------------------------------------


def _version_page(
    request: Request,
    version: int,
    *,
    status: int = 200,
    tried: dict[str, Any] | None = None,
    cart: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    session = _session(request)
    ctx = ctx_of(request)
    try:
        v = rulesets.get(ctx, session.brand_id, version)
    except NotFound:
        return RedirectResponse("/console/rules", status_code=303)
    zone = _zone(request, session.brand_id)
    stores = brands.list_stores(ctx, session.brand_id)
    recent = [
        (
            c,
            f"/console/rules/{version}/try?"
            + urlencode(
                {
                    "store": c.store_code,
                    "lines": "\n".join(
                        f"{sku} {price} {qty} {cat}" for sku, cat, price, qty in c.lines
                    ),
                    **({"member_id": c.member_id} if c.member_id else {}),
                }
            )
            + "#try",
        )
        for c in receipts.recent_carts(ctx, session.brand_id)
    ]
    return shell.render(
        request,
        session,
        "console/rule_version.html",
        status=status,
        active="/console/rules",
        v=v,
        zone=zone,
        local=_local,
        kinds=KIND_LABELS,
        stores=stores,
        can_write=shell.may(session, Action.RULES_WRITE),
        tried=tried,
        cart=cart
        or {"store": stores[0].code if stores else "", "lines": "", "phone": "", "member_id": ""},
        errors=errors or {},
        default_start=datetime.now(zone).strftime("%Y-%m-%dT%H:%M"),
        recent=recent,
    )


@router.get("/console/rules/{version}")
def version_page(request: Request, version: VersionNo) -> Response:
    stop = _guard(request, Action.RULES_READ)
    if stop is not None:
        return stop
    return _version_page(request, version)


@router.get("/console/rules/{version}/export")
def export(request: Request, version: VersionNo) -> Response:
    stop = _guard(request, Action.RULES_READ)
    if stop is not None:
        return stop
    session = _session(request)
    try:
        text = rulesets.export_yaml(ctx_of(request), session.brand_id, version)
    except NotFound:
        return RedirectResponse("/console/rules", status_code=303)
    return PlainTextResponse(
        text,
        media_type="application/yaml; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="rules-v{version}.yaml"'},
    )


def parse_lines(text: str) -> list[m.CartLine]:
    """`sku price_fen qty [category]` per line; InvalidInput naming the line."""
    lines: list[m.CartLine] = []
    for no, raw in enumerate(text.splitlines(), 1):
        parts = [p for p in re.split(r"[,，\s]+", raw.strip()) if p]
        if not parts:
            continue
        if (
            len(parts) not in (3, 4)
            or not parts[1].isdigit()
            or not parts[2].isdigit()
            or int(parts[2]) < 1
            or len(parts[0]) > 64
            or len(parts[1]) > 9
            or int(parts[2]) > 10_000
        ):
            raise InvalidInput(f"line {no}", code="bad_cart_line", line=no)
        category = parts[3] if len(parts) == 4 else ""
        lines.append(m.CartLine(parts[0], category[:64], int(parts[1]), int(parts[2])))
    if not lines:
        raise InvalidInput("no lines", code="bad_cart_line", line=0)
    return lines[:500]


@router.get("/console/rules/{version}/try")
def try_cart(
    request: Request,
    version: VersionNo,
    store: Annotated[str, Query(max_length=64)] = "",
    lines: Annotated[str, Query(max_length=20_000)] = "",
    phone: Annotated[str, Query(max_length=32)] = "",
    member_id: Annotated[int | None, Query(gt=0, le=2**63 - 1)] = None,
) -> Response:
    """A cart priced against this version as the till prices it."""
    stop = _guard(request, Action.RULES_READ)
    if stop is not None:
        return stop
    session = _session(request)
    _ = gettext_for(request)
    ctx = ctx_of(request)
    cart = {"store": store, "lines": lines, "phone": phone, "member_id": str(member_id or "")}
    found = [s for s in brands.list_stores(ctx, session.brand_id) if s.code == store]
    if not found:
        return _version_page(
            request, version, status=400, cart=cart, errors={"store": _("Pick a store.")}
        )
    try:
        cart_lines = parse_lines(lines)
    except InvalidInput as exc:
        line = int(exc.detail.get("line", 0))
        message = (
            _("Line {n}: write sku, price in fen, quantity and (optional) category.").format(n=line)
            if line
            else _("Enter at least one line.")
        )
        return _version_page(request, version, status=400, cart=cart, errors={"lines": message})
    try:
        v = rulesets.get(ctx, session.brand_id, version)
    except NotFound:
        return RedirectResponse("/console/rules", status_code=303)
    member = (
        checkout.MemberRef(phone=phone.strip())
        if phone.strip()
        else checkout.MemberRef(member_id=member_id)
        if member_id
        else None
    )
    req = checkout.CartRequest(found[0].id, tuple(cart_lines), member)
    try:
        result = checkout.quote_with_rules(ctx, session.brand_id, req, rulesets.trial(v))
    except NotFound:
        return _version_page(
            request,
            version,
            status=400,
            cart=cart,
            errors={"phone": _("No member has this phone number.")},
        )
    except (InvalidInput, Conflict) as exc:
        field = "phone" if "member" in exc.code or "phone" in exc.code else "lines"
        return _version_page(request, version, status=400, cart=cart, errors={field: exc.message})
    return _version_page(request, version, tried=result.as_json(), cart=cart)


# -- publishing ---------------------------------------------------------------------


@router.post("/console/rules/{version}/publish")
def publish(
    request: Request,
    version: VersionNo,
    csrf: Annotated[str, Form()] = "",
    effective_from: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    stop = _guard(request, Action.RULES_WRITE, csrf)
    if stop is not None:
        return stop
    session = _session(request)
    _ = gettext_for(request)
    zone = _zone(request, session.brand_id)
    try:
        start = datetime.fromisoformat(effective_from.strip()).replace(tzinfo=zone)
    except ValueError:
        return _version_page(
            request,
            version,
            status=400,
            errors={"effective_from": _("Enter a date and time.")},
        )
    try:
        rulesets.publish(
            ctx_of(request), session.brand_id, version, effective_from=start, by=session.user.login
        )
    except NotFound:
        return RedirectResponse("/console/rules", status_code=303)
    except Conflict:
        return _version_page(
            request,
            version,
            status=409,
            errors={"effective_from": _("This version is already published.")},
        )
    except InvalidInput:
        return _version_page(
            request,
            version,
            status=400,
            errors={"effective_from": _("Enter a date and time.")},
        )
    return RedirectResponse("/console/rules", status_code=303)


# -- a draft's coupon templates and promotions --------------------------------------


def _benefit_form(
    request: Request,
    version: int,
    section: str,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status: int = 200,
) -> Response:
    session = _session(request)
    _ = gettext_for(request)
    new = not values.get("replaces")
    if section == "coupons":
        title = _("New coupon template") if new else _("Change the coupon template")
    else:
        title = _("New promotion") if new else _("Change the promotion")
    order = ["id", "name", "kind", *INTS, "percent", "sku", *LISTS, "valid_from", "valid_to"]
    focus = next((n for n in order if n in errors), "id")
    return shell.render(
        request,
        session,
        "console/rule_benefit.html",
        status=status,
        active="/console/rules",
        title=title,
        version=version,
        section=section,
        values=values,
        errors=errors,
        focus=focus,
        kinds=KIND_LABELS,
    )


def _draft(request: Request, version: int) -> rulesets.Version | None:
    session = _session(request)
    try:
        v = rulesets.get(ctx_of(request), session.brand_id, version)
    except NotFound:
        return None
    return v if v.status is rulesets.Status.DRAFT else None


@router.get("/console/rules/{version}/{section}/new")
def new_benefit(
    request: Request, version: VersionNo, section: Annotated[str, Path(pattern=SECTION)]
) -> Response:
    stop = _guard(request, Action.RULES_WRITE)
    if stop is not None:
        return stop
    if _draft(request, version) is None:
        return RedirectResponse(f"/console/rules/{version}", status_code=303)
    values = {name: "" for name in BenefitForm.model_fields if name != "csrf"}
    values["kind"] = "threshold"
    return _benefit_form(request, version, section, values, {})


@router.get("/console/rules/{version}/{section}/{benefit_id}")
def edit_benefit(
    request: Request,
    version: VersionNo,
    section: Annotated[str, Path(pattern=SECTION)],
    benefit_id: Annotated[str, Path(max_length=64)],
) -> Response:
    stop = _guard(request, Action.RULES_WRITE)
    if stop is not None:
        return stop
    v = _draft(request, version)
    found = [b for b in getattr(v.document, section) if b.id == benefit_id] if v else []
    if not found:
        return RedirectResponse(f"/console/rules/{version}", status_code=303)
    return _benefit_form(request, version, section, from_document(found[0]), {})


@router.post("/console/rules/{version}/{section}")
def save_benefit(
    request: Request,
    version: VersionNo,
    section: Annotated[str, Path(pattern=SECTION)],
    form: Annotated[BenefitForm, Form()],
) -> Response:
    stop = _guard(request, Action.RULES_WRITE, form.csrf)
    if stop is not None:
        return stop
    session = _session(request)
    _ = gettext_for(request)
    values = form.model_dump(exclude={"csrf"})
    try:
        rulesets.put_benefit(
            ctx_of(request),
            session.brand_id,
            version,
            section,
            to_document(form),
            replaces=form.replaces or None,
        )
    except NotFound:
        return RedirectResponse(f"/console/rules/{version}", status_code=303)
    except Conflict:
        errors = {"form": _("This version is published: make a new draft to change it.")}
        return _benefit_form(request, version, section, values, errors, status=409)
    except InvalidInput as exc:
        errors = form_errors(request, exc, section)
        return _benefit_form(request, version, section, values, errors, status=400)
    return RedirectResponse(f"/console/rules/{version}#{section}", status_code=303)
