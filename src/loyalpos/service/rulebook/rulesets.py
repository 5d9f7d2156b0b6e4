"""Versioned rule sets (规则版本): draft → published, effective from a time.

A brand's rules are one document (see docs/simulate.md for its format). HQ
saves drafts, publishes one with an `effective_from` time, and every order is
priced with the published version in force at the order's time — so a late
booking (补单) uses the rules of the day it happened. Published versions never
change; a change is a new version.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from loyalpos.db.tables import inserted_id, rule_sets
from loyalpos.domain.errors import Conflict, NotFound
from loyalpos.domain.pricing.rules import RuleSet
from loyalpos.domain.times import check_instant
from loyalpos.rules import convert
from loyalpos.rules.schema import RuleSetDoc
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context


class Status(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


@dataclass(frozen=True, slots=True)
class Version:
    id: int
    brand_id: int
    version: int
    status: Status
    document: RuleSetDoc
    comment: str
    effective_from: datetime | None
    created_by: str | None
    created_at: datetime
    published_by: str | None
    published_at: datetime | None


def _version(row: Any) -> Version:
    doc = RuleSetDoc.model_validate_json(row.document)
    return Version(
        row.id,
        row.brand_id,
        row.version,
        Status(row.status),
        doc,
        row.comment,
        row.effective_from,
        row.created_by,
        row.created_at,
        row.published_by,
        row.published_at,
    )


def _load(conn: Connection, brand_id: int, version: int) -> Version:
    row = conn.execute(
        select(rule_sets).where(rule_sets.c.brand_id == brand_id, rule_sets.c.version == version)
    ).first()
    if row is None:
        raise NotFound(
            f"规则版本 {version} 不存在 (rule set version {version} not found)",
            code="rule_set_not_found",
            version=version,
        )
    return _version(row)


def _document(data: Any) -> RuleSetDoc:
    if isinstance(data, RuleSetDoc):
        return data
    if isinstance(data, str):
        data = convert.load_text(data)
    return convert.parse_rule_set(data)


def save_draft(
    ctx: Context,
    brand_id: int,
    data: Any,
    *,
    author: str | None = None,
    comment: str = "",
    now: datetime | None = None,
) -> Version:
    """Validate a rule document (YAML text, JSON text or data) and save it as the
    next version's draft. A wrong rule is refused naming its field."""
    doc = _document(data)
    at = ctx.now(now)

    def run(conn: Connection) -> Version:
        load_brand(conn, brand_id)
        latest = conn.execute(
            select(func.coalesce(func.max(rule_sets.c.version), 0)).where(
                rule_sets.c.brand_id == brand_id
            )
        ).scalar_one()
        new_id = inserted_id(
            conn.execute(
                insert(rule_sets).values(
                    brand_id=brand_id,
                    version=int(latest) + 1,
                    status=Status.DRAFT.value,
                    document=doc.model_dump_json(),
                    comment=comment,
                    created_by=author,
                    created_at=at,
                )
            )
        )
        row = conn.execute(select(rule_sets).where(rule_sets.c.id == new_id)).one()
        return _version(row)

    return ctx.run(run)


def publish(
    ctx: Context,
    brand_id: int,
    version: int,
    *,
    effective_from: datetime | None = None,
    by: str | None = None,
    now: datetime | None = None,
) -> Version:
    """Publish a draft; it governs orders from `effective_from` (default: now)."""
    at = ctx.now(now)
    start = check_instant(effective_from or at, "effective_from")

    def run(conn: Connection) -> Version:
        current = _load(conn, brand_id, version)
        if current.status is not Status.DRAFT:
            raise Conflict(f"version {version} is already published", code="already_published")
        conn.execute(
            update(rule_sets)
            .where(rule_sets.c.id == current.id)
            .values(
                status=Status.PUBLISHED.value,
                effective_from=start,
                published_by=by,
                published_at=at,
            )
        )
        return _load(conn, brand_id, version)

    published = ctx.run(run)
    ctx.forget(("published", brand_id))
    return published


def get(ctx: Context, brand_id: int, version: int) -> Version:
    with ctx.transaction(read_only=True) as conn:
        return _load(conn, brand_id, version)


def versions(ctx: Context, brand_id: int) -> list[Version]:
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(rule_sets).where(rule_sets.c.brand_id == brand_id).order_by(rule_sets.c.version)
        )
        return [_version(r) for r in rows]


# Which versions are published is read at most this often per process; a
# publish shows within this many seconds (the versions themselves never change).
PUBLISHED_CACHE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class InForce:
    """The published version governing a moment: engine rules and the document
    (tiers, campaigns, coupon templates' validity)."""

    version: int
    rules: RuleSet
    document: RuleSetDoc


EMPTY = InForce(0, RuleSet(), RuleSetDoc())


def rules_at(conn: Connection, ctx: Context, brand_id: int, when: datetime) -> InForce:
    """The version in force at `when`, in an open transaction.

    Published versions never change, so their converted form is cached by id.
    """

    def published() -> list[tuple[int, int, datetime]]:
        rows = conn.execute(
            select(rule_sets.c.id, rule_sets.c.version, rule_sets.c.effective_from)
            .where(
                rule_sets.c.brand_id == brand_id,
                rule_sets.c.status == Status.PUBLISHED.value,
            )
            .order_by(rule_sets.c.effective_from.desc(), rule_sets.c.version.desc())
        )
        return [(int(r.id), int(r.version), r.effective_from) for r in rows]

    index = ctx.remember(("published", brand_id), PUBLISHED_CACHE_SECONDS, published)
    row = next(((i, v) for i, v, start in index if start <= when), None)
    if row is None:
        return EMPTY
    return _converted(conn, ctx, row[0], row[1])


def _converted(conn: Connection, ctx: Context, row_id: int, version: int) -> InForce:
    """A published version, converted once per process (it never changes)."""
    key = ("rule_set", row_id)
    cached = ctx.cache.get(key)
    if cached is None:
        document = conn.execute(
            select(rule_sets.c.document).where(rule_sets.c.id == row_id)
        ).scalar_one()
        doc = RuleSetDoc.model_validate_json(document)
        cached = InForce(version, convert.rule_set(doc), doc)
        ctx.cache[key] = cached
    assert isinstance(cached, InForce)
    return cached


def rules_of_version(conn: Connection, ctx: Context, brand_id: int, version: int) -> InForce:
    """A version by number, as `rules_at` gives it: what an order was priced
    with (`orders.rule_version`, always published, so never changing, and cached
    as `rules_at` caches it); the empty rule set for version 0 (no rules)."""
    row = conn.execute(
        select(rule_sets.c.id).where(
            rule_sets.c.brand_id == brand_id,
            rule_sets.c.version == version,
            rule_sets.c.status == Status.PUBLISHED.value,
        )
    ).first()
    if row is None:
        return EMPTY
    return _converted(conn, ctx, int(row.id), version)


def in_force(ctx: Context, brand_id: int, at: datetime | None = None) -> tuple[int, RuleSet]:
    """(version, engine rules) in force at `at`; an empty rule set if none is."""
    with ctx.transaction(read_only=True) as conn:
        found = rules_at(conn, ctx, brand_id, ctx.now(at))
    return found.version, found.rules


def export_yaml(ctx: Context, brand_id: int, version: int) -> str:
    return convert.dump_yaml(get(ctx, brand_id, version).document)


def as_json(doc: RuleSetDoc) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(doc.model_dump_json(exclude_defaults=True))
    return data


# -- HQ's console: drafts edited part by part, tried, compared ---------------------

SECTIONS = ("coupons", "promotions")


def draft_from(
    ctx: Context,
    brand_id: int,
    *,
    author: str | None = None,
    now: datetime | None = None,
) -> Version:
    """A new draft holding the version in force now (an empty set if none is)."""
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        base = rules_at(conn, ctx, brand_id, at)
    comment = f"基于版本 {base.version} (from version {base.version})" if base.version else ""
    return save_draft(ctx, brand_id, base.document, author=author, comment=comment, now=at)


def replace_draft(ctx: Context, brand_id: int, version: int, data: Any) -> Version:
    """Change a draft's whole document (validated as `save_draft` does); a
    published version never changes (409)."""
    doc = _document(data)

    def run(conn: Connection) -> Version:
        current = _load(conn, brand_id, version)
        if current.status is not Status.DRAFT:
            raise Conflict(
                f"规则版本 {version} 已发布，不能修改 (version {version} is published)",
                code="already_published",
            )
        conn.execute(
            update(rule_sets)
            .where(rule_sets.c.id == current.id)
            .values(document=doc.model_dump_json())
        )
        return _load(conn, brand_id, version)

    return ctx.run(run)


# The parts of the document a form changes: lists of things with an id, and
# single settings; each by its path in the document.
LIST_PARTS: dict[str, tuple[str, ...]] = {
    "coupons": ("coupons",),
    "promotions": ("promotions",),
    "earn": ("points", "earn"),
    "tiers": ("tiers",),
    "campaigns": ("campaigns",),
}
OBJECT_PARTS: dict[str, tuple[str, ...]] = {
    "offset": ("points", "offset"),
    "change_rounding": ("change_rounding",),
    "stacking": ("stacking",),
    "member_prices": ("member_prices",),
}


def put_part(
    ctx: Context,
    brand_id: int,
    version: int,
    part: str,
    data: dict[str, Any],
    *,
    replaces: str | None = None,
) -> Version:
    """Change one part of a draft: add an item to a list part (coupons,
    promotions, earning rules, tiers, campaigns) or change the one with id
    `replaces`; or set a single part (points offset, 抹零, stacking, member
    prices). The whole set is validated again; a wrong field is refused naming
    it (e.g. `coupons.2.threshold_fen`, `points.offset.step`)."""
    if part not in LIST_PARTS and part not in OBJECT_PARTS:
        raise NotFound(f"no part {part}", code="rule_section_not_found")
    current = get(ctx, brand_id, version)
    if current.status is not Status.DRAFT:
        raise Conflict(
            f"规则版本 {version} 已发布，不能修改 (version {version} is published)",
            code="already_published",
        )
    whole = as_json(current.document)
    path = LIST_PARTS.get(part) or OBJECT_PARTS[part]
    parent = whole
    for key in path[:-1]:
        parent = parent.setdefault(key, {})
    if part in OBJECT_PARTS:
        parent[path[-1]] = data
        return replace_draft(ctx, brand_id, version, whole)
    items: list[dict[str, Any]] = list(parent.get(path[-1], []))
    at = next((i for i, b in enumerate(items) if b.get("id") == replaces), None)
    if replaces is not None and at is None:
        raise NotFound(f"{part} {replaces} not found", code="rule_not_found")
    if at is None:
        items.append(data)
    else:
        items[at] = data
    parent[path[-1]] = items
    return replace_draft(ctx, brand_id, version, whole)


def put_benefit(
    ctx: Context,
    brand_id: int,
    version: int,
    section: str,
    data: dict[str, Any],
    *,
    replaces: str | None = None,
) -> Version:
    """Add a coupon template or promotion (`section`) to a draft, or change the
    one with id `replaces` (see `put_part`)."""
    if section not in SECTIONS:
        raise NotFound(f"no section {section}", code="rule_section_not_found")
    return put_part(ctx, brand_id, version, section, data, replaces=replaces)


def trial(v: Version) -> InForce:
    """A version (a draft too) as the engine prices with it, to try a cart."""
    return InForce(v.version, convert.rule_set(v.document), v.document)


def compare(ctx: Context, brand_id: int, old: int, new: int) -> list[str]:
    """The difference between two versions, as a unified diff of their YAML."""
    a = export_yaml(ctx, brand_id, old).splitlines()
    b = export_yaml(ctx, brand_id, new).splitlines()
    return list(difflib.unified_diff(a, b, f"version {old}", f"version {new}", lineterm="", n=3))
