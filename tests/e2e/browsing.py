"""What the browser tests share: Debian's chromium (Playwright with
`executable_path`, never a download), a live server with the demo per database
(SQLite and PostgreSQL), an HQ API client for checking what a page did, and the
screenshots folder (var/screenshots/<part>-<database>/, or $LOYALPOS_SCREENSHOTS),
printed so that a person looks at them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.live import DEMO_HQ_KEY, live_server, scratch_pg_database

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(
    os.environ.get("LOYALPOS_SCREENSHOTS") or Path(__file__).parents[2] / "var" / "screenshots"
)
DATABASES = ["sqlite", "postgresql"]


class Site:
    """The server under test: its base URL, database kind and URL, an HQ client."""

    def __init__(self, base: str, db: str, url: str = "", part: str = "console") -> None:
        self.base, self.db, self.url, self.part = base, db, url, part
        self.hq = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {DEMO_HQ_KEY}"}, timeout=10
        )

    def member_id(self, phone: str) -> int:
        found = self.hq.post("/v1/members/lookup", json={"phone": phone})
        assert found.status_code == 200, found.text
        return int(found.json()["id"])

    def shots(self) -> Path:
        return shots_folder(self.part, self.db)


def shots_folder(part: str, db: str) -> Path:
    """Where a part's screenshots on database `db` go (made if missing)."""
    folder = SHOTS / f"{part}-{db}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def served(db: str, tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """`loyalpos serve` with the demo on a fresh database of kind `db` (and the
    server's environment `env`): (base URL, database URL)."""
    with ExitStack() as stack:
        if db == "sqlite":
            url = f"sqlite:///{tmp_path / 'web.db'}"
        else:
            url = stack.enter_context(scratch_pg_database())
        _proc, base, _log = stack.enter_context(live_server(url, tmp_path, env=env))
        yield base, url


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless; the test is skipped where it is not installed."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)")
    playwright_sync = pytest.importorskip("playwright.sync_api")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def screen(browser: Any, base: str, width: int = 1280, height: int = 800) -> Any:
    """A new browser context on `base` at the given screen size, in 简体中文."""
    return browser.new_context(
        base_url=base, viewport={"width": width, "height": height}, locale="zh-CN"
    )
