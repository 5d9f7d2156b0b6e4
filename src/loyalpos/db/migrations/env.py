"""Alembic environment: the engine comes from `loyalpos.db.migrate`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from loyalpos.db.tables import metadata

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `loyalpos db upgrade`")

# SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=engine.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
