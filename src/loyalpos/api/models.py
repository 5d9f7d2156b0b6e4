"""The two kinds of body every context's `schemas.py` builds on: requests are
`Strict` (an unknown field is a 422, so a typo in a POS integration is seen at
once), responses are `Open` or plain models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from loyalpos.characters import check_tree


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_control(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL, UTF-8 cannot hold a lone surrogate: refuse
        # them here, not with a 500 there. Typed fields (api/fields.py) have their own
        # rule; any other string is text, in free JSON (a held cart) too.
        return check_tree(value)


class Open(BaseModel):
    """Responses keep every field the service gives; the ones named are documented."""

    model_config = ConfigDict(extra="allow")
