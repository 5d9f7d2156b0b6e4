"""The real server: `loyalpos serve` in a subprocess, on a fresh SQLite file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

PHONE = "13800138000"  # a demo member
DEMO_HQ_KEY = "lp_demohq_publicdemokey"
DEMO_CASHIER_KEY = "lp_demosh001_publicdemokey"
STARTUP_TIMEOUT = 30.0


def loyalpos_bin() -> str:
    beside = Path(sys.executable).parent / "loyalpos"
    found = str(beside) if beside.exists() else shutil.which("loyalpos")
    if found is None:
        pytest.fail("the `loyalpos` script is not installed (pip install -e .)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(tmp_path: Path, args: list[str], extra_env: dict[str, str]) -> Iterator[Path]:
    """Run `loyalpos serve ARGS`, yield the path of its log, and stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALPOS_") and k != "PORT"}
    env.update(
        LOYALPOS_DATABASE_URL=f"sqlite:///{tmp_path / 'e2e.db'}",
        PYTHONUNBUFFERED="1",
        **extra_env,
    )
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [loyalpos_bin(), "serve", *args],
            cwd=tmp_path,  # no stray .env or var/ from the work tree
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield log_path
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
    assert proc.returncode is not None


def wait_healthy(base: str, log_path: Path) -> dict[str, str]:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{base}/healthz", timeout=2)
            if response.status_code == 200:
                body: dict[str, str] = response.json()
                return body
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.2)
    pytest.fail(
        f"server not healthy within {STARTUP_TIMEOUT}s ({last!r}); its output:\n"
        + log_path.read_text(errors="replace")
    )


def check_demo_is_served(port: int, log_path: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    health = wait_healthy(base, log_path)
    assert (health["status"], health["database"]) == ("ok", "sqlite")
    cashier = {"Authorization": f"Bearer {DEMO_CASHIER_KEY}"}
    found = httpx.post(
        f"{base}/v1/members/lookup", json={"phone": PHONE}, headers=cashier, timeout=10
    )
    assert found.status_code == 200, found.text
    member = found.json()
    assert member["phone"] == "138****8000"
    assert member["points_balance"] == 1200
    assert PHONE not in found.text
    missing = httpx.post(f"{base}/v1/members/lookup", json={"phone": PHONE}, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "api_key_required"
    # The cashier key may not adjust points; the HQ key may list the keys.
    adjust = httpx.post(
        f"{base}/v1/members/{member['id']}/points/adjust",
        json={"points": 1, "operator": "e2e", "reason": "test"},
        headers=cashier,
        timeout=10,
    )
    assert adjust.status_code == 403
    assert adjust.json()["error"]["code"] == "hq_key_required"
    listed = httpx.get(
        f"{base}/v1/keys", headers={"Authorization": f"Bearer {DEMO_HQ_KEY}"}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    assert listed.json()["count"] == 3
    assert "publicdemokey" not in listed.text
    # The demo keys are printed at start-up, once each.
    output = log_path.read_text(errors="replace")
    assert output.count(DEMO_HQ_KEY) == 1 and output.count(DEMO_CASHIER_KEY) == 1


@pytest.mark.slow
def test_serve_with_port_option(tmp_path: Path) -> None:
    port = free_port()
    with server(tmp_path, ["--port", str(port)], {}) as log_path:
        check_demo_is_served(port, log_path)
    output = log_path.read_text(errors="replace")
    assert f"http://127.0.0.1:{port}" in output
    assert PHONE not in output


@pytest.mark.slow
def test_serve_with_port_env_var(tmp_path: Path) -> None:
    port = free_port()
    with server(tmp_path, [], {"PORT": str(port)}) as log_path:
        check_demo_is_served(port, log_path)
    assert f"http://127.0.0.1:{port}" in log_path.read_text(errors="replace")
