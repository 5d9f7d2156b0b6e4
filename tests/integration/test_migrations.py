from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from loyalpos.db.migrate import downgrade, upgrade
from loyalpos.db.tables import metadata
from loyalpos.service.base.context import Context


def test_migrations_produce_exactly_the_tables_the_code_uses(ctx: Context) -> None:
    with ctx.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrations_go_down_and_up_again(ctx: Context) -> None:
    downgrade(ctx.engine, "base")
    upgrade(ctx.engine)
    with ctx.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
