from __future__ import annotations

from fastapi import APIRouter

from loyalpos.api.deps import BrandDep, CtxDep, MemberId, PrincipalDep
from loyalpos.api.errors import V1_ERRORS, responses
from loyalpos.api.loyalty.schemas import (
    ClaimCreate,
    ClaimIn,
    ClaimPublic,
    ClaimToken,
    IdentityIn,
    MemberCodePublic,
    MemberCreate,
    MemberLookup,
    MemberPublic,
)
from loyalpos.domain.errors import InvalidInput
from loyalpos.service.admin.apikeys import Principal
from loyalpos.service.loyalty import members
from loyalpos.service.loyalty.members import Identity, Member

router = APIRouter(prefix="/v1", responses=V1_ERRORS, tags=["members"])

# Access: every route here is open to cashier keys (the till registers, looks
# up and identifies members, and prints receipt claims) and to HQ keys. Where a
# body names a store, a cashier key may only name its own; without one, a
# cashier key's own store is used.


def acting_store(who: Principal, store_id: int | None) -> int | None:
    """The store a request acts for: the one named (a cashier key: only its own),
    else a cashier key's own store, else none."""
    if store_id is None:
        return who.store_id
    who.require_store(store_id)
    return store_id


def member_public(m: Member) -> MemberPublic:
    return MemberPublic(
        id=m.id,
        phone=m.phone_masked,
        name=m.name,
        birthday=m.birthday,
        card_no=m.card_no,
        tier=m.tier,
        points_balance=m.points_balance,
        referrer_id=m.referrer_id,
        store_id=m.store_id,
        created_at=m.created_at,
    )


def _identity(i: IdentityIn) -> Identity:
    return Identity(i.provider, i.kind, i.value)


@router.post(
    "/members",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=MemberPublic,
    status_code=201,
)
def register_member(
    body: MemberCreate, ctx: CtxDep, brand: BrandDep, who: PrincipalDep
) -> MemberPublic:
    """Register a member (会员注册), optionally binding identities and claiming an order.
    A cashier key registers at its own store."""
    member = members.register(
        ctx,
        brand.id,
        phone=body.phone,
        name=body.name,
        birthday=body.birthday,
        referrer_id=body.referrer_id,
        store_id=acting_store(who, body.store_id),
        identities=[_identity(i) for i in body.identities],
        claim_token=body.claim_token,
    )
    return member_public(member)


@router.post(
    "/members/lookup", responses=responses(400, 404, 413, 422), response_model=MemberPublic
)
def lookup_member(body: MemberLookup, ctx: CtxDep, brand: BrandDep) -> MemberPublic:
    """Find a member by phone, card number, dynamic member code or WeChat/Alipay id."""
    keys = [k for k in ("phone", "card_no", "code", "identity") if getattr(body, k) is not None]
    if len(keys) != 1:
        raise InvalidInput(
            "请只提供一种识别方式 (give exactly one of phone, card_no, code, identity)",
            code="one_key_required",
            given=keys,
        )
    if body.phone is not None:
        member = members.by_phone(ctx, brand.id, body.phone)
    elif body.card_no is not None:
        member = members.by_card(ctx, brand.id, body.card_no)
    elif body.code is not None:
        member = members.by_code(ctx, brand.id, body.code)
    else:
        assert body.identity is not None
        member = members.by_identity(ctx, brand.id, _identity(body.identity))
    return member_public(member)


@router.get("/members/{member_id}", responses=responses(404, 422), response_model=MemberPublic)
def get_member(member_id: MemberId, ctx: CtxDep, brand: BrandDep) -> MemberPublic:
    """One member of the caller's brand."""
    return member_public(members.get(ctx, brand.id, member_id))


@router.post(
    "/members/{member_id}/identities",
    responses=responses(400, 404, 409, 413, 422),
    response_model=MemberPublic,
)
def bind_identity(
    member_id: MemberId, body: IdentityIn, ctx: CtxDep, brand: BrandDep
) -> MemberPublic:
    """Bind a WeChat/Alipay openid, unionid or buyer id to the member."""
    return member_public(members.bind_identity(ctx, brand.id, member_id, _identity(body)))


@router.post(
    "/members/{member_id}/code", responses=responses(404, 422), response_model=MemberCodePublic
)
def member_code(member_id: MemberId, ctx: CtxDep, brand: BrandDep) -> MemberCodePublic:
    """A fresh dynamic member code (会员码) for the member's phone to show."""
    code, ttl = members.issue_code(ctx, brand.id, member_id)
    return MemberCodePublic(code=code, expires_in=ttl)


@router.post(
    "/members/{member_id}/claims",
    responses=responses(400, 404, 409, 413, 422),
    response_model=ClaimPublic,
)
def claim_order(member_id: MemberId, body: ClaimIn, ctx: CtxDep, brand: BrandDep) -> ClaimPublic:
    """Claim an anonymous order's points with the code on its receipt (once)."""
    result = members.claim(ctx, brand.id, member_id, body.token)
    return ClaimPublic(
        member_id=result.member_id,
        points=result.points,
        order_ref=result.order_ref,
        entry_id=result.entry_id,
    )


@router.post(
    "/claims",
    responses=responses(400, 403, 404, 409, 413, 422),
    response_model=ClaimToken,
    status_code=201,
)
def create_claim(body: ClaimCreate, ctx: CtxDep, brand: BrandDep, who: PrincipalDep) -> ClaimToken:
    """Make a claim token for an anonymous order (printed on the receipt); a cashier
    key makes it for its own store."""
    token = members.create_claim(
        ctx,
        brand.id,
        order_ref=body.order_ref,
        points=body.points,
        store_id=acting_store(who, body.store_id),
        description=body.description,
    )
    return ClaimToken(token=token)
