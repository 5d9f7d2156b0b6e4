"""The HQ console (总部后台): one module per part, each with its own router,
all through `shell` (who is signed in, what they may do, the menu, the forms'
CSRF). `router` gathers them for the app."""

from fastapi import APIRouter

from loyalpos.web.console import (
    holds,
    home,
    keys,
    members,
    orders,
    reconcile,
    rule_parts,
    rules,
    staff,
    stores,
    users,
    webhooks,
)

router = APIRouter(include_in_schema=False)
for part in (
    home,
    stores,
    rule_parts,
    rules,
    members,
    orders,
    reconcile,
    holds,
    webhooks,
    staff,
    users,
    keys,
):
    router.include_router(part.router)
