"""Entry point for uvicorn: `uvicorn --factory loyalpos.api.main:app_from_env`."""

from __future__ import annotations

from fastapi import FastAPI

from loyalpos.api.app import create_app
from loyalpos.config import get_settings
from loyalpos.service.base.context import Context


def app_from_env() -> FastAPI:
    return create_app(Context.from_settings(get_settings()))
