"""The rule set's other parts as forms, one per kind, in the pattern of the
coupon template form (rules.py): earning rules, tiers and triggered campaigns
(lists of things with an id), points offset, 抹零, stacking and member prices
(single settings). Each field is typed text translated to the document's part
(a whole number, a list, `key=value` pairs...), and the rule set's own
validation says what is wrong next to the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from loyalpos.domain.accounts import Action
from loyalpos.domain.errors import Conflict, DomainError, InvalidInput, NotFound
from loyalpos.service.rulebook import rulesets
from loyalpos.web.console import shell
from loyalpos.web.console.rules import VersionNo, chinese
from loyalpos.web.render import ctx_of, gettext_for

router = APIRouter(include_in_schema=False)
PART = r"^(earn|tiers|campaigns|offset|change_rounding|stacking|member_prices)$"


@dataclass(frozen=True, slots=True)
class Spec:
    """One field: its name in the document ("scope.skus" for a nested one), its
    label (a message id), how typed text becomes the value, and its choices."""

    name: str
    label: str
    kind: str = "text"  # text, int, decimal, list, ints, map, pairs, groups, items, check, select
    choices: tuple[str, ...] = ()

    @property
    def field(self) -> str:
        return self.name.replace(".", "_")


SCOPE = (
    Spec("scope.stores", "Stores", "list"),
    Spec("scope.categories", "Categories", "list"),
    Spec("scope.exclude_categories", "Except categories", "list"),
    Spec("scope.skus", "Skus", "list"),
    Spec("scope.exclude_skus", "Except skus", "list"),
    Spec("scope.tiers", "Member tiers", "list"),
    Spec("scope.weekdays", "Weekdays (1 = Monday … 7 = Sunday)", "ints"),
    Spec("scope.hours", "Hours (e.g. 10:00-14:00)", "list"),
)
EARN_KINDS = (
    "base",
    "tier_multiplier",
    "category_rate",
    "exclude",
    "time_multiplier",
    "threshold_bonus",
    "first_order_bonus",
)
ROUNDING = ("none", "fen", "jiao")

# What each choice of a select is, as message ids (the code is shown beside it).
CHOICE_LABELS = {
    "base": "Base rate",
    "tier_multiplier": "Tier multiplier",
    "category_rate": "Rate of a category",
    "exclude": "Earns nothing",
    "time_multiplier": "Multiplier at times (member day)",
    "threshold_bonus": "Bonus for spending more",
    "first_order_bonus": "First order bonus",
    "spend": "Spent at least",
    "category": "Bought a category",
    "first_order": "First order",
    "tier_upgrade": "Reached a tier",
    "reactivated": "Came back after a while",
    "none": "No rounding",
    "fen": "To the fen",
    "jiao": "To the jiao (抹分)",
    "discounted": "After discounts",
    "original": "Before discounts",
}

PARTS: dict[str, tuple[str, tuple[Spec, ...]]] = {
    "earn": (
        "Earning rules",
        (
            Spec("id", "ID (letters, digits, - _ . :)"),
            Spec("kind", "Kind", "select", EARN_KINDS),
            Spec("points_per_yuan", "Points per yuan", "decimal"),
            Spec("yuan_per_point", "Yuan per point", "decimal"),
            Spec("multiplier", "Multiplier", "decimal"),
            Spec("multipliers", "Tier multipliers (gold=2, silver=1.5)", "map"),
            Spec("steps", "Steps (spend in fen=points: 10000=100, 20000=300)", "pairs"),
            Spec("points", "Points", "int"),
            *SCOPE,
            Spec("description", "Description"),
        ),
    ),
    "tiers": (
        "Tiers",
        (
            Spec("id", "ID (letters, digits, - _ . :)"),
            Spec("name", "Name"),
            Spec("min_spent_fen", "Growth needed (fen spent)", "int"),
        ),
    ),
    "campaigns": (
        "Triggered campaigns",
        (
            Spec("id", "ID (letters, digits, - _ . :)"),
            Spec("name", "Name"),
            Spec(
                "trigger",
                "Trigger",
                "select",
                ("spend", "category", "first_order", "tier_upgrade", "reactivated"),
            ),
            Spec("min_paid_fen", "Paid at least (fen)", "int"),
            Spec("category", "Category"),
            Spec("to_tier", "To tier"),
            Spec("dormant_days", "Dormant days", "int"),
            Spec("stores", "Stores", "list"),
            Spec("issue", "Issue coupon templates", "list"),
            Spec("points", "Give points", "int"),
            Spec("tag", "Tag the member"),
        ),
    ),
    "offset": (
        "Points offset",
        (
            Spec("enabled", "Points may pay", "check"),
            Spec("points_per_yuan", "Points per yuan", "int"),
            Spec("cap_percent", "At most this percent of the order", "decimal"),
            Spec("min_points", "Fewest points used", "int"),
            Spec("step", "In steps of (points)", "int"),
        ),
    ),
    "change_rounding": (
        "Change rounding (抹零)",
        (
            Spec("default", "Default", "select", ROUNDING),
            Spec("stores", "Per store (SH001=jiao, BJ001=none)", "map"),
        ),
    ),
    "stacking": (
        "Stacking",
        (
            Spec("max_coupons", "Coupons per order at most", "int"),
            Spec("threshold_base", "Threshold counts", "select", ("discounted", "original")),
            Spec("exclusive_groups", "Groups of which one at most (a, b; c, d)", "groups"),
            Spec("forbidden_pairs", "Kinds never together (threshold, percent; …)", "groups"),
        ),
    ),
    "member_prices": (
        "Member prices",
        (
            Spec("tiers", "Percent paid by tier (silver=95, gold=90)", "map"),
            Spec(
                "items",
                "Prices by item and tier, in fen (latte: gold=2800, silver=3000; beans: gold=9000)",
                "items",
            ),
            *SCOPE,
        ),
    ),
}


def _whole(text: str) -> int | str:
    t = text.strip()
    return int(t) if re.fullmatch(r"-?\d{1,15}", t) else t


def _split(text: str, sep: str = r"[,，\s]+") -> list[str]:
    return [x.strip() for x in re.split(sep, text) if x.strip()]


def _pairs(text: str) -> list[tuple[str, str]]:
    found = []
    for item in _split(text, r"[,，]+"):
        key, _, value = item.partition("=")
        found.append((key.strip(), value.strip()))
    return found


def to_document(specs: tuple[Spec, ...], form: dict[str, str]) -> dict[str, Any]:
    """The typed form as the document's part (only what was filled in)."""
    doc: dict[str, Any] = {}
    for s in specs:
        raw = form.get(s.field, "")
        value: Any
        if s.kind == "check":
            value = bool(raw)
            if s.name == "enabled":
                doc[s.name] = value
            elif value:
                doc[s.name] = True
            continue
        if not raw.strip():
            continue
        if s.kind == "int":
            value = _whole(raw)
        elif s.kind == "list":
            value = _split(raw)
        elif s.kind == "ints":
            value = [_whole(x) for x in _split(raw)]
        elif s.kind == "map":
            value = dict(_pairs(raw))
        elif s.kind == "pairs":
            value = [{"spend_fen": _whole(k), "points": _whole(v)} for k, v in _pairs(raw)]
        elif s.kind == "groups":
            value = [_split(g, r"[,，\s]+") for g in _split(raw, r"[;；]+")]
        elif s.kind == "items":
            value = {}
            for group in _split(raw, r"[;；]+"):
                sku, _, prices = group.partition(":")
                value[sku.strip()] = {k: _whole(v) for k, v in _pairs(prices.replace("：", ""))}
        else:
            value = raw.strip()
        target = doc
        *outer, last = s.name.split(".")
        for key in outer:
            target = target.setdefault(key, {})
        target[last] = value
    return doc


def from_document(specs: tuple[Spec, ...], data: dict[str, Any]) -> dict[str, str]:
    """A part of the document as the form's typed values."""
    values: dict[str, str] = {}
    for s in specs:
        raw: Any = data
        for key in s.name.split("."):
            raw = raw.get(key) if isinstance(raw, dict) else None
        if raw is None or raw == [] or raw == {}:
            values[s.field] = ""
        elif s.kind == "check":
            values[s.field] = "on" if raw else ""
        elif s.kind in ("list", "ints"):
            values[s.field] = ", ".join(str(x) for x in raw)
        elif s.kind == "map":
            values[s.field] = ", ".join(f"{k}={v}" for k, v in raw.items())
        elif s.kind == "pairs":
            values[s.field] = ", ".join(f"{x['spend_fen']}={x['points']}" for x in raw)
        elif s.kind == "groups":
            values[s.field] = "; ".join(", ".join(g) for g in raw)
        elif s.kind == "items":
            values[s.field] = "; ".join(
                f"{sku}: " + ", ".join(f"{t}={p}" for t, p in prices.items())
                for sku, prices in raw.items()
            )
        else:
            values[s.field] = str(raw)
    return values


def _errors(
    request: Request, exc: DomainError, part: str, specs: tuple[Spec, ...]
) -> dict[str, str]:
    """The rule set's refusals next to the form's fields (or at its top)."""
    path = ".".join(rulesets.LIST_PARTS.get(part) or rulesets.OBJECT_PARTS[part])
    names = {s.name: s.field for s in specs}
    errors: dict[str, str] = {}
    problems = exc.detail.get("errors") or [
        {"field": exc.detail.get("field", ""), "message": exc.message}
    ]
    for p in problems:
        field = str(p.get("field", ""))
        rest = field[len(path) + 1 :] if field.startswith(path + ".") else ""
        if part in rulesets.LIST_PARTS:
            rest = rest.partition(".")[2]  # past the item's index
        # a kind's tag (points.earn.0.base.points) and list indexes are not fields
        parts = [x for x in rest.split(".") if x and not x.isdigit() and x not in EARN_KINDS]
        name = ".".join(parts)
        while name and name not in names:
            name = name.rpartition(".")[0]
        key = names.get(name, "form")
        errors.setdefault(key, chinese(request, str(p.get("message", ""))))
    return errors


def _guard(request: Request, csrf: str | None = None) -> Response | None:
    return shell.guard(request, Action.RULES_WRITE, "/console/rules", csrf)[1]


def _page(
    request: Request,
    version: int,
    part: str,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    item: str,
    status: int = 200,
) -> Response:
    session = shell.signed(request)
    assert session is not None
    title, specs = PARTS[part]
    focus = next((s.field for s in specs if s.field in errors), specs[0].field)
    return shell.render(
        request,
        session,
        "console/rule_part.html",
        status=status,
        active="/console/rules",
        title=title,
        version=version,
        part=part,
        specs=specs,
        values=values,
        errors=errors,
        focus=focus,
        item=item,
        listed=part in rulesets.LIST_PARTS,
        choice_labels=CHOICE_LABELS,
    )


def _current(request: Request, version: int, part: str, item: str) -> dict[str, Any] | None:
    """The part (or the list's item) as the draft has it; None: no such draft or item."""
    session = shell.signed(request)
    assert session is not None
    try:
        v = rulesets.get(ctx_of(request), session.brand_id, version)
    except NotFound:
        return None
    if v.status is not rulesets.Status.DRAFT:
        return None
    whole: Any = v.document.model_dump(mode="json")
    for key in rulesets.LIST_PARTS.get(part) or rulesets.OBJECT_PARTS[part]:
        whole = whole.get(key) if isinstance(whole, dict) else None
    if part in rulesets.LIST_PARTS:
        if not item:
            return {}
        found = [x for x in whole or [] if x.get("id") == item]
        return found[0] if found else None
    return whole if isinstance(whole, dict) else {}


@router.get("/console/rules/{version}/parts/{part}")
def part_form(
    request: Request,
    version: VersionNo,
    part: Annotated[str, Path(pattern=PART)],
    item: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    stop = _guard(request)
    if stop is not None:
        return stop
    data = _current(request, version, part, item)
    if data is None:
        return RedirectResponse(f"/console/rules/{version}", status_code=303)
    return _page(request, version, part, from_document(PARTS[part][1], data), {}, item=item)


def _save(request: Request, version: int, part: str, form: dict[str, str]) -> Response:
    stop = _guard(request, form.get("csrf", ""))
    if stop is not None:
        return stop
    session = shell.signed(request)
    assert session is not None
    _ = gettext_for(request)
    specs = PARTS[part][1]
    item = form.get("item", "")
    values = {s.field: form.get(s.field, "") for s in specs}
    try:
        rulesets.put_part(
            ctx_of(request),
            session.brand_id,
            version,
            part,
            to_document(specs, form),
            replaces=item or None,
        )
    except NotFound:
        return RedirectResponse(f"/console/rules/{version}", status_code=303)
    except Conflict:
        errors = {"form": _("This version is published: make a new draft to change it.")}
        return _page(request, version, part, values, errors, item=item, status=409)
    except InvalidInput as exc:
        errors = _errors(request, exc, part, specs)
        return _page(request, version, part, values, errors, item=item, status=400)
    return RedirectResponse(f"/console/rules/{version}#{part}", status_code=303)


@router.post("/console/rules/{version}/parts/{part}")
async def save_part(
    request: Request, version: VersionNo, part: Annotated[str, Path(pattern=PART)]
) -> Response:
    sent = await request.form(max_fields=100, max_files=0)
    form = {k: v[:20_000] for k, v in sent.items() if isinstance(v, str)}
    return await run_in_threadpool(_save, request, version, part, form)
