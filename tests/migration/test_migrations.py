"""The migrations build exactly the schema that the table definitions describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage.database import Database
from provisor.storage.tables import metadata


def test_upgrade_matches_the_tables(settings: Settings) -> None:
    db = Database(settings.sqlalchemy_url)
    try:
        migrate.upgrade(db)
        migrate.upgrade(db)  # idempotent
        assert migrate.current_revision(db) == migrate.head_revision(db)
        with db.unscoped_read() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": migrate.ours}
            )
            assert compare_metadata(context, metadata) == []
            if not settings.is_sqlite:  # the job queue's tables
                assert conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar()
    finally:
        db.dispose()
