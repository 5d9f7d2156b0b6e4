"""What the account tests share: a cheap password hasher, and two brands with stores."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher

from loyalpos.service.admin import _passwords
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context


@pytest.fixture
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2id with the least work, so that tests making dozens of attempts take
    milliseconds; hashes made with the real parameters (the demo's) still verify,
    since a hash carries its own parameters."""
    monkeypatch.setattr(
        _passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    yield


@dataclass
class Brands:
    a: int
    a_sh: int
    a_bj: int
    b: int
    b_store: int


def two_brands(ctx: Context) -> Brands:
    a = brands.create_brand(ctx, "alpha", "Alpha")
    sh = brands.create_store(ctx, a.id, "SH001", "上海店")
    bj = brands.create_store(ctx, a.id, "BJ001", "北京店")
    b = brands.create_brand(ctx, "beta", "Beta")
    b_store = brands.create_store(ctx, b.id, "SH001", "Beta 上海店")
    return Brands(a.id, sh.id, bj.id, b.id, b_store.id)
