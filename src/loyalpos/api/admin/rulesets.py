from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from loyalpos.api.admin.schemas import DraftIn, PublishIn, RuleSetPublic, RuleSetsPublic
from loyalpos.api.deps import CtxDep, HqBrandDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.rules.simulate import simulate
from loyalpos.service.rulebook import rulesets
from loyalpos.service.rulebook.rulesets import Version

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["rules"])

# Access: rule sets are HQ's (总部) to write and read; every route needs an HQ key.

VersionNo = Annotated[int, Path(gt=0, le=1_000_000)]


def _public(v: Version) -> RuleSetPublic:
    return RuleSetPublic(
        version=v.version,
        status=v.status.value,
        effective_from=v.effective_from,
        comment=v.comment,
        created_by=v.created_by,
        created_at=v.created_at,
        published_by=v.published_by,
        published_at=v.published_at,
        document=rulesets.as_json(v.document),
    )


@router.post(
    "/rules",
    responses=responses(400, 403, 409, 413, 422),
    response_model=RuleSetPublic,
    status_code=201,
)
def save_draft(body: DraftIn, ctx: CtxDep, brand: HqBrandDep) -> RuleSetPublic:
    """Validate a rule document and save it as the next draft version."""
    v = rulesets.save_draft(ctx, brand.id, body.document, author=body.author, comment=body.comment)
    return _public(v)


@router.get("/rules", responses=responses(403), response_model=RuleSetsPublic)
def list_versions(ctx: CtxDep, brand: HqBrandDep) -> RuleSetsPublic:
    """All rule set versions of the brand, oldest first."""
    found = [_public(v) for v in rulesets.versions(ctx, brand.id)]
    return RuleSetsPublic(data=found, count=len(found))


@router.get("/rules/{version}", responses=responses(403, 404, 422), response_model=RuleSetPublic)
def get_version(version: VersionNo, ctx: CtxDep, brand: HqBrandDep) -> RuleSetPublic:
    """One rule set version."""
    return _public(rulesets.get(ctx, brand.id, version))


@router.post(
    "/rules/{version}/publish",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=RuleSetPublic,
)
def publish(version: VersionNo, body: PublishIn, ctx: CtxDep, brand: HqBrandDep) -> RuleSetPublic:
    """Publish a draft, in force from `effective_from` (default: now)."""
    v = rulesets.publish(ctx, brand.id, version, effective_from=body.effective_from, by=body.by)
    return _public(v)


@router.post("/simulate", responses=responses(400, 403, 413, 422))
def simulate_quote(
    ctx: CtxDep, brand: HqBrandDep, document: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    """Price one cart under a rule set, as `loyalpos simulate` does (docs/simulate.md)."""
    return simulate(document)
