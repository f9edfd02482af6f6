"""Bringing the database schema up to date with Alembic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from provisor import __version__
from provisor.errors import ConfigError
from provisor.storage.database import Database

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK = 7_466_011  # advisory lock id: one node migrates at a time
_PG_SETUP_LOCK = 7_466_012  # advisory lock id: one node sets the installation up at a time


def ours(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name``: procrastinate's tables (PostgreSQL job queue, migration
    0004) and pyrate-limiter's (the inbound rate limit) belong to those libraries; the
    substring search's index (``search_``: migration 0023, a different one on each database,
    kept by the database itself) is not described by the shared tables."""
    return not (name or "").startswith(("procrastinate_", "provisor_rate_", "search_"))


def alembic_config(db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database"] = db
    return config


def upgrade(db: Database, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent; safe with concurrent nodes). A
    database a newer provisor migrated is a ConfigError: migrations go forward only."""
    _migrate(db, command.upgrade, revision)


def known_revisions() -> set[str]:
    """The migrations this provisor has."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def require_known(revision: str | None) -> None:
    """A ConfigError unless this provisor knows the migration ``revision`` (None: none yet)."""
    if revision is not None and revision not in known_revisions():
        raise ConfigError(
            f"The database is at migration {revision}, which this provisor ({__version__}) "
            "does not know: a newer provisor migrated it. Run that version (migrations go "
            "forward only), or restore the backup taken before the upgrade."
        )


def downgrade(db: Database, revision: str) -> None:
    """Undo the migrations after ``revision``, in one transaction (what a downgrade cannot
    keep, e.g. the rows of tenants other than the default one, is deleted)."""
    _migrate(db, command.downgrade, revision)


def _migrate(db: Database, step: Callable[[Config, str], None], revision: str) -> None:
    config = alembic_config(db)
    with db.unscoped_write(foreign_keys=False) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL statement_timeout = 0"))  # migrations may take long
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        config.attributes["connection"] = conn
        if step is command.upgrade:
            require_known(MigrationContext.configure(conn).get_current_revision())
        step(config, revision)


@contextmanager
def setting_up(db: Database) -> Iterator[None]:
    """One node at a time sets an installation up (migrations, then the first accounts): a
    node started together with others waits its turn and finds the work done, instead of
    failing on the accounts another made meanwhile. On PostgreSQL a session's advisory lock
    on a connection of its own, held for the block (not a write of this thread: the
    migrations' writes would become its savepoints, committed only at the block's end);
    SQLite has one node."""
    if db.dialect != "postgresql":
        yield
        return
    with db.unscoped_read() as conn:
        conn.execute(text("SET statement_timeout = 0"))  # waits as long as the other
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_SETUP_LOCK})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_SETUP_LOCK})
            conn.execute(text("RESET statement_timeout"))
            conn.commit()


def current_revision(db: Database) -> str | None:
    with db.unscoped_read() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db)).get_current_head()
