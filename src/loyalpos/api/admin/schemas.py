"""The bodies of the health, API-key and rule-set routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from loyalpos.api.fields import (
    SINGLE_LINE,
    TEXT,
    DbId,
    IsoDateTime,
)
from loyalpos.api.models import Strict


class Health(BaseModel):
    status: str
    database: str
    version: str


class KeyCreate(Strict):
    """A new API key: `cashier` (needs `store_id`, acts for that store) or `hq`."""

    scope: Literal["cashier", "hq"]
    name: Annotated[
        str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True), SINGLE_LINE
    ]
    store_id: DbId | None = None


class KeyPublic(BaseModel):
    """An API key as listed: never its secret nor its hash."""

    id: int
    scope: str
    name: str
    store_id: int | None
    prefix: str = Field(description="the key's public first part, e.g. lp_3f9a0c1b2d4e")
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyPublic):
    key: str = Field(description="the whole key; shown this once, store it now")


class KeysPublic(BaseModel):
    data: list[KeyPublic]
    count: int


class RuleSetPublic(BaseModel):
    version: int
    status: str
    effective_from: datetime | None
    comment: str
    created_by: str | None
    created_at: datetime
    published_by: str | None
    published_at: datetime | None
    document: dict[str, Any]


class RuleSetsPublic(BaseModel):
    data: list[RuleSetPublic]
    count: int


class PublishIn(Strict):
    effective_from: IsoDateTime | None = None
    by: Annotated[str, StringConstraints(max_length=80), SINGLE_LINE] | None = None


class DraftIn(Strict):
    document: dict[str, Any]
    comment: Annotated[str, StringConstraints(max_length=500), TEXT] = ""
    author: Annotated[str, StringConstraints(max_length=80), SINGLE_LINE] | None = None
