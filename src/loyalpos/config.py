"""Settings from the environment (LOYALPOS_*), validated with pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-do-not-use-in-production"
DEFAULT_DB = Path("var") / "loyalpos.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LOYALPOS_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{DEFAULT_DB}"
    secret_key: str = DEV_SECRET
    member_code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    claim_valid_days: int = Field(default=30, ge=1, le=365)
    default_region: str = "CN"
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # How long a quote holds its coupons and points for the till (预占).
    quote_hold_seconds: int = Field(default=300, ge=10, le=3600)
    held_cart_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    # Threads per server process for the till's calls (identify, quote, confirm);
    # more requests wait their turn on the event loop (see api/till/threads.py).
    till_threads: int = Field(default=2, ge=1, le=64)
    # Webhooks to loopback, private and link-local addresses (an on-premise ERP):
    # off, so that an HQ key cannot point the worker at the server's own network.
    webhook_private_network: bool = False
    # An HQ console session ends after this long without a request, and after
    # `session_max_hours` however busy (service/admin/accounts.py).
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=30 * 24)

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Settings:
        if self.env == "production" and (
            self.secret_key == DEV_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError("set LOYALPOS_SECRET_KEY to a random string of 32+ characters")
        return self

    @property
    def secret(self) -> bytes:
        return self.secret_key.encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
