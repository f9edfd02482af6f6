"""The suite's reused PostgreSQL databases (tests/pg_databases.py): a database given back
holds again exactly what the template holds, and one whose structure a test changed is dropped,
never handed to another test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import pg_connect, pg_reused_databases
from tests.pg_databases import LARGE, Databases

AUDIT = (
    "INSERT INTO audit_log (at, tenant, actor_kind, actor, request_id, action, target, detail) "
    "SELECT '2026-01-01', 'default', 'system', 'test', 'r', 'x.y', 't', repeat('d', %s) "
    "FROM generate_series(1, %s)"
)


@pytest.fixture
def databases(pg_template: str) -> Iterator[Databases]:
    made = pg_reused_databases(pg_template, "provisor_pool_")
    yield made
    made.close()


def _contents(name: str) -> dict[str, Any]:
    with pg_connect(name) as conn:
        return {
            "tenants": conn.execute("SELECT name, kind FROM tenants ORDER BY name").fetchall(),
            "audit": conn.execute("SELECT count(*) FROM audit_log").fetchone(),
            "users": conn.execute("SELECT count(*) FROM users").fetchone(),
            "next_audit_id": conn.execute(
                "SELECT nextval(pg_get_serial_sequence('audit_log', 'id'))"
            ).fetchone(),
        }


def _exists(name: str) -> bool:
    with pg_connect("postgres") as conn:
        row = conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name])
        return bool(row.fetchone() == (1,))


def test_a_database_given_back_holds_what_the_template_holds(databases: Databases) -> None:
    name = databases.take()
    fresh = _contents(name)
    with pg_connect(name) as conn:
        conn.execute(
            "INSERT INTO tenants (name, kind, enabled, created, last_modified) "
            "VALUES ('acme', 'standalone', 1, 'x', 'x')"
        )
        conn.execute(AUDIT, [10, 5])  # an append-only table: its trigger refuses DELETE
        conn.execute(
            "INSERT INTO users (tenant, id, user_name, user_name_key, created, last_modified,"
            " version, doc) VALUES ('default', 'u1', 'A', 'a', 'x', 'x', 1, '{}')"
        )
        conn.execute(
            "INSERT INTO user_emails (tenant, user_id, value_key) VALUES ('default', 'u1', 'a@b')"
        )
    other = pg_connect(name)  # a session the test left open
    databases.give_back(name)

    with pytest.raises(psycopg.OperationalError):  # ended by the server
        other.execute("SELECT 1")
    other.close()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        pg_connect(name)  # what the test left running cannot reach the next test's database
    again = databases.take()
    assert again != name
    assert _contents(again) == fresh
    databases.give_back(again)


def test_a_large_table_is_emptied_too(databases: Databases) -> None:
    name = databases.take()
    fresh = _contents(name)
    with pg_connect(name) as conn:
        conn.execute(AUDIT, [1000, 2 * LARGE // 1000])
        size = conn.execute("SELECT pg_relation_size('audit_log')").fetchone()
        assert size is not None and size[0] >= LARGE
    databases.give_back(name)

    again = databases.take()
    assert not _exists(name) and _contents(again) == fresh
    with pg_connect(again) as conn:  # truncated, not deleted: no dead rows left behind
        size = conn.execute("SELECT pg_relation_size('audit_log')").fetchone()
        assert size == (0,)
    databases.give_back(again)


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
        "ALTER TABLE users ADD COLUMN extra TEXT",
        "CREATE INDEX ix_extra ON users (doc)",
        "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
        "GRANT SELECT ON users TO PUBLIC",
        "CREATE TABLE leftover (x INT)",
        "ALTER DATABASE {name} SET work_mem = '8MB'",
    ],
)
def test_a_database_whose_structure_changed_is_dropped(databases: Databases, change: str) -> None:
    name = databases.take()
    with pg_connect(name) as conn:
        conn.execute(change.format(name=name))
    free = list(databases._free)
    databases.give_back(name)

    assert not _exists(name)
    assert databases._free == free, "nothing given back to reuse"
