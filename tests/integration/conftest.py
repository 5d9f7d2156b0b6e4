"""Fixtures shared by the integration tests: the command line on the test's database."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from loyalpos.config import get_settings
from tests.conftest import TEST_SECRET


@pytest.fixture
def runner(db_url: str) -> Iterator[CliRunner]:
    """The command line on the test's database (settings are cached per process)."""
    get_settings.cache_clear()
    yield CliRunner(
        env={
            "LOYALPOS_DATABASE_URL": db_url,
            "LOYALPOS_ENV": "test",
            "LOYALPOS_SECRET_KEY": TEST_SECRET,
        }
    )
    get_settings.cache_clear()
    gc.collect()  # the command's engine and its pooled connections
