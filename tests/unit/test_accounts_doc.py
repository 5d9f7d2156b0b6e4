"""docs/accounts.md shows the permission matrix of domain/accounts.py, exactly: the
table between its markers is generated from `PERMISSIONS`, and this test fails when
the two disagree (run `python tests/unit/test_accounts_doc.py` to rewrite it)."""

from __future__ import annotations

import sys
from pathlib import Path

from loyalpos.domain.accounts import LOCKOUT, PERMISSIONS, THROTTLE, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "accounts.md"
BEGIN = "<!-- permission matrix: generated from domain/accounts.py PERMISSIONS -->"
END = "<!-- end of permission matrix -->"


def matrix_table() -> str:
    roles = list(Role)
    lines = [
        "| action | what | " + " | ".join(r.value for r in roles) + " |",
        "| --- | --- | " + " | ".join(":---:" for _ in roles) + " |",
    ]
    for p in PERMISSIONS:
        cells = []
        for role in roles:
            if role not in p.roles:
                cells.append("—")
            elif role is Role.STORE_MANAGER:
                cells.append("its stores")
            else:
                cells.append("yes")
        lines.append(f"| `{p.action.value}` | {p.what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def documented_table(text: str) -> str:
    start = text.index(BEGIN) + len(BEGIN)
    return text[start : text.index(END)].strip()


def test_the_documented_matrix_is_the_one_in_force() -> None:
    assert documented_table(DOC.read_text(encoding="utf-8")) == matrix_table(), (
        "docs/accounts.md and domain/accounts.py disagree: "
        "run `python tests/unit/test_accounts_doc.py` and review the difference"
    )


def test_the_documented_policies_are_the_ones_in_force() -> None:
    text = DOC.read_text(encoding="utf-8")
    minutes = int(THROTTLE.window.total_seconds() // 60)
    assert f"{THROTTLE.per_account} failures for one login name" in text
    assert f"{THROTTLE.per_address} failures from one client address" in text
    assert f"within {minutes} minutes" in text
    lock = int(LOCKOUT.lock.total_seconds() // 60)
    assert (
        f"{LOCKOUT.wrong_pins} wrong PINs in a row lock the staff member for {lock} minutes" in text
    )


if __name__ == "__main__":  # rewrite the table in docs/accounts.md
    text = DOC.read_text(encoding="utf-8")
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{matrix_table()}\n{END}{after}", encoding="utf-8")
    sys.stdout.write(f"rewrote the matrix in {DOC}\n")
