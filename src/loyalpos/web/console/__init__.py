"""The HQ console (总部后台): one module per part, each with its own router,
all through `shell` (who is signed in, what they may do, the menu, the forms'
CSRF). `router` gathers them for the app."""

from fastapi import APIRouter

from loyalpos.web.console import home, keys, staff, stores, users

router = APIRouter(include_in_schema=False)
for part in (home, stores, staff, users, keys):
    router.include_router(part.router)
