"""The SQL a test's code sends, for tests that count statements or round trips."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from loyalpos.service.base.context import Context


def sent_statements(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL sent from now on. On PostgreSQL at psycopg's cursor, which also sees
    what db.engine.write_many/read_first send past SQLAlchemy; elsewhere through
    SQLAlchemy's events (all statements go that way there)."""
    seen: list[str] = []
    if ctx.dialect != "postgresql":
        event.listen(ctx.engine, "before_cursor_execute", lambda *a: seen.append(str(a[2])))
        return seen
    for name in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, name)

        def recorded(cursor: Any, query: Any, *args: Any, _run: Any = original, **kw: Any) -> Any:
            seen.append(" ".join(str(query).split()))
            return _run(cursor, query, *args, **kw)

        monkeypatch.setattr(psycopg.Cursor, name, recorded)
    return seen
