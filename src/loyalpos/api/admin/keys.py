"""API keys (接口密钥): HQ creates, lists and revokes its brand's keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from loyalpos.api.admin.schemas import KeyCreate, KeyCreated, KeyPublic, KeysPublic
from loyalpos.api.deps import CtxDep, HqDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.fields import MAX_ID
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import ApiKey, Scope

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["keys"])

KeyId = Annotated[int, Path(gt=0, le=MAX_ID)]

# Access: every route needs an HQ key and sees only its own brand's keys.


def key_public(k: ApiKey) -> KeyPublic:
    return KeyPublic(
        id=k.id,
        scope=k.scope.value,
        name=k.name,
        store_id=k.store_id,
        prefix=k.prefix,
        created_at=k.created_at,
        revoked_at=k.revoked_at,
    )


@router.post(
    "/keys",
    responses=responses(400, 403, 404, 413, 422),
    response_model=KeyCreated,
    status_code=201,
)
def create_key(body: KeyCreate, ctx: CtxDep, who: HqDep) -> KeyCreated:
    """Create a key: `cashier` for one store (`store_id` required) or `hq` for the
    brand. The answer holds the whole key, this once; only its hash is kept."""
    new = apikeys.create_key(
        ctx, who.brand_id, Scope(body.scope), body.name, store_id=body.store_id
    )
    return KeyCreated(**key_public(new.key).model_dump(), key=new.secret)


@router.get("/keys", responses=responses(403), response_model=KeysPublic)
def list_keys(ctx: CtxDep, who: HqDep) -> KeysPublic:
    """The brand's keys, revoked ones included, without their secrets."""
    found = [key_public(k) for k in apikeys.list_keys(ctx, who.brand_id)]
    return KeysPublic(data=found, count=len(found))


@router.post("/keys/{key_id}/revoke", responses=responses(403, 404, 422), response_model=KeyPublic)
def revoke_key(key_id: KeyId, ctx: CtxDep, who: HqDep) -> KeyPublic:
    """Revoke a key at once (repeating it is harmless); requests with it answer 401."""
    return key_public(apikeys.revoke_key(ctx, who.brand_id, key_id))
