"""The cashier page in a real browser: from the Enter of a scan to the new total
drawn, on the demo data.

`loyalpos serve` runs on a fresh SQLite (or PostgreSQL) database with the demo
brand; Debian's chromium (Playwright, headless, 1024x768) signs in as cashier 1001
at SH001 and sells: each sale identifies a member by phone (or none), then scans
four items, one after the other, as a scanner does (the code typed, then Enter);
after the fourth the sale is voided (F10) and the next begins. The page itself
measures each scan (`window.loyalposTill.timings()`: performance.now() at the Enter,
and again once the quote's total is drawn): that is the cashier's wait, network,
server (scan lookup, then quote with reservation) and drawing together.

Target: p95 <= 150 ms over 200 scans on this machine. Also printed: the first
load of the page (bytes over the wire, uncached, all resources) against its
300 KB target.

Usage:
    .venv/bin/python bench/bench_till_browser.py [--scans 200] [--db sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from benchlib import print_machine, scratch_database
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ITEMS = ["6901234000016", "6901234000047", "6901234000054", "6901234000023", "6901234000030"]
MEMBERS = ["13912345678", "13800138000", "", "15000002222", "13700001111"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALPOS_")}
    env.update(
        LOYALPOS_DATABASE_URL=url,
        LOYALPOS_SECRET_KEY="bench-secret-" + "x" * 32,
        LOYALPOS_ENV="test",
    )
    binary = str(Path(sys.executable).parent / "loyalpos")
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [binary, "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not start: see {workdir / 'server.log'}")


def sign_in(page: Page) -> None:
    page.goto("/till/sign-in")
    page.fill("#brand", "demo")
    page.fill("#store", "SH001")
    page.fill("#terminal", "B1")
    page.fill("#number", "1001")
    page.fill("#pin", "1234")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def first_load_bytes(browser: object, base: str) -> tuple[int, int]:
    """(bytes of the page and everything it loads, number of requests), uncached."""
    context = browser.new_context(base_url=base)  # type: ignore[attr-defined]
    page = context.new_page()
    sign_in(page)
    sizes: list[int] = []
    fresh = browser.new_context(base_url=base)  # type: ignore[attr-defined]
    fresh.add_cookies(context.cookies())
    loaded = fresh.new_page()
    loaded.on("response", lambda r: sizes.append(len(r.body()) + sum(map(len, r.headers))))
    loaded.goto("/till")
    loaded.wait_for_load_state("networkidle")
    context.close()
    fresh.close()
    return sum(sizes), len(sizes)


def scan(page: Page, text: str, expect_total: bool) -> None:
    before = page.evaluate("window.loyalposTill.timings().length")
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    if expect_total:
        page.wait_for_function(f"window.loyalposTill.timings().length > {before}")
    else:
        page.wait_for_function("document.querySelector('#banners .banner.ok') !== null")


def run(base: str, scans: int) -> list[float]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        total_bytes, requests = first_load_bytes(browser, base)
        print(
            f"first load of /till: {total_bytes / 1024:.1f} KB in {requests} requests (target < 300 KB)"
        )
        context = browser.new_context(base_url=base, viewport={"width": 1024, "height": 768})
        page = context.new_page()
        sign_in(page)
        page.wait_for_load_state("networkidle")
        done = 0
        sale = 0
        while done < scans:
            member = MEMBERS[sale % len(MEMBERS)]
            if member:
                scan(page, member, expect_total=False)
            for i in range(4):
                if done >= scans:
                    break
                scan(page, ITEMS[(sale + i) % len(ITEMS)], expect_total=True)
                done += 1
            page.keyboard.press("F10")
            page.wait_for_selector("#void-dialog[open]")
            page.keyboard.press("Enter")
            page.wait_for_function("window.loyalposTill.state().lines.length === 0")
            page.wait_for_function("document.activeElement.id === 'scan'")
            sale += 1
        timings: list[float] = page.evaluate("window.loyalposTill.timings()")
        browser.close()
    return timings[-scans:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install chromium")
    print_machine(
        "bench_till_browser: scan to total drawn in chromium", postgres=args.db != "sqlite"
    )
    with tempfile.TemporaryDirectory() as tmp, scratch_database(args.db) as url:
        proc, base = start_server(url, Path(tmp))
        try:
            timings = run(base, args.scans)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
    timings.sort()
    p95 = timings[max(0, int(len(timings) * 0.95) - 1)]
    print(
        f"scan to total drawn, {len(timings)} scans on {args.db}: "
        f"median {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
        f"max {timings[-1]:.1f} ms (target p95 <= 150 ms)"
    )


if __name__ == "__main__":
    main()
