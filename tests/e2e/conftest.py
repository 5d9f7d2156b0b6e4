"""Fixtures of the end-to-end tests: `live_pg_server` (tests/e2e/live.py)."""

from tests.e2e.live import live_pg_server

__all__ = ["live_pg_server"]
