"""The import-linter contracts (.importlinter) hold on the tree, and each kind of
break fails with the contract's name: a copy of the source is given one bad
import and checked with the same contracts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo", str(ROOT / ".importlinter")],
        capture_output=True,
        text=True,
        env=env,
        cwd=src,
    )


def test_the_tree_keeps_every_contract() -> None:
    done = lint(ROOT / "src")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


BREAKS = [
    # (file to change, line added, contract name expected in the report)
    ("domain/money.py", "from loyalpos.service.base import context", "domain imports nothing"),
    ("domain/money.py", "import sqlalchemy", "domain imports nothing"),
    ("db/tables.py", "from loyalpos.service.loyalty import points", "db does not import service"),
    ("service/loyalty/points.py", "from loyalpos.api import errors", "service does not import api"),
    ("rules/schema.py", "from loyalpos.db import tables", "Layers: cli above api"),
    # a circle between contexts: loyalty would import events, which imports loyalty
    (
        "service/loyalty/members.py",
        "from loyalpos.service.events import webhooks",
        "Service contexts",
    ),
    # a chapter of the engine reaching up to a later one
    ("domain/pricing/applying.py", "from loyalpos.domain.pricing import search", "Pricing engine"),
    # another context reaching into the till's inner rooms instead of its face
    ("service/events/worker.py", "from loyalpos.service.till import _booking", "inner rooms"),
]


@pytest.mark.parametrize(("path", "line", "contract"), BREAKS, ids=[b[1] for b in BREAKS])
def test_a_bad_import_fails_with_the_contracts_name(
    tmp_path: Path, path: str, line: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "loyalpos",
        src / "loyalpos",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    target = src / "loyalpos" / path
    target.write_text(f"{line}  # noqa\n" + target.read_text(encoding="utf-8"), encoding="utf-8")
    done = lint(src)
    assert done.returncode != 0
    assert contract in broken_contracts(done.stdout), done.stdout


def broken_contracts(report: str) -> str:
    """The names of the broken contracts in lint-imports' summary (it wraps names)."""
    summary = report.split("Analyzed", 1)[1].split("Contracts:", 1)[0].replace("\n", " ")
    parts = re.split(r"\b(KEPT|BROKEN)\b", summary)
    return " | ".join(
        name for name, verdict in zip(parts, parts[1:], strict=False) if verdict == "BROKEN"
    )
