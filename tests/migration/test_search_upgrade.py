"""Migration 0023 indexes the users, e-mails and groups already stored (SQLite: a value per
row of search_values; PostgreSQL: the trigrams of each value), and its downgrade drops the
index and keeps the rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage.database import Database

BEFORE = "0022"
ROWS = [
    "INSERT INTO users (tenant, id, user_name, user_name_key, display_name, display_name_key, "
    "created, last_modified, version, doc) VALUES ('default', 'u1', 'Old.Name', 'old.name', "
    "'Dis Play', 'dis play', 'x', 'x', 1, '{}')",
    "INSERT INTO user_emails (tenant, user_id, value_key) VALUES ('default', 'u1', 'a@b.example')",
    "INSERT INTO user_emails (tenant, user_id, value_key) VALUES ('default', 'u1', 'c@b.example')",
    "INSERT INTO groups (tenant, id, display_name, display_name_key, created, last_modified, "
    "version, doc) VALUES ('default', 'g1', 'Grp', 'grp', 'x', 'x', 1, '{}')",
]
VALUES = ("old.name", "dis play", "a@b.example", "c@b.example", "grp")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database without any table (not the suite's migrated templates)."""
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path)
    else:
        url = request.getfixturevalue("pg_empty_database")
        settings = Settings(data_dir=tmp_path, database_url=url)
    database = Database(settings.sqlalchemy_url)
    yield database
    database.dispose()


def test_the_upgrade_indexes_what_is_stored_and_the_downgrade_drops_the_index(
    db: Database,
) -> None:
    migrate.upgrade(db, BEFORE)
    with db.unscoped_write() as conn:
        for statement in ROWS:
            conn.execute(text(statement))
    migrate.upgrade(db)
    table = "search_values" if db.is_sqlite else "search_trigrams"
    with db.unscoped_read() as conn:
        held = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        if db.is_sqlite:  # one row per value, found by the trigram index
            assert held == len(VALUES)
            found = conn.execute(
                text("SELECT rowid FROM search_text WHERE search_text MATCH '\"b.exa\"'")
            ).all()
            assert len(found) == 2
        else:  # each value between \x02 and \x03: as many trigrams as characters, e-mails
            # sharing trigrams ("@b.example") holding one posting each
            assert held == sum(len(value) for value in VALUES)
    with db.unscoped_write() as conn:  # the e-mail left is still wholly indexed
        conn.execute(text("DELETE FROM user_emails WHERE value_key = 'a@b.example'"))
        held = int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
        left = [value for value in VALUES if value != "a@b.example"]
        assert held == (len(left) if db.is_sqlite else sum(len(value) for value in left))
    migrate.downgrade(db, BEFORE)
    with db.unscoped_read() as conn:
        names = set(inspect(conn).get_table_names())
        assert not {n for n in names if n.startswith("search_")}
        assert conn.execute(text("SELECT count(*) FROM users")).scalar_one() == 1
