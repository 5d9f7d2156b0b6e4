"""The shared live server on PostgreSQL answers for both brands, and each key
sees only its own brand."""

from __future__ import annotations

import pytest

from tests.e2e.live import Live

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_live_server_serves_two_brands_apart(live_pg_server: Live) -> None:
    live = live_pg_server
    with live.client(live.hq_key) as demo, live.client(live.other_hq_key) as other:
        assert demo.get("/healthz").json()["database"] == "postgresql"
        demo_keys = demo.get("/v1/keys").json()
        other_keys = other.get("/v1/keys").json()
        assert demo_keys["count"] == 3
        assert other_keys["count"] == 2
        ids = {k["id"] for k in demo_keys["data"]} & {k["id"] for k in other_keys["data"]}
        assert not ids
