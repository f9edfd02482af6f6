"""Every table holding a tenant's data has the tenant column, keys unique per tenant and, on
PostgreSQL, row-level security forced with the tenant_isolation policy (the migrated
database as it is, not tables.py's description of it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text

from provisor.settings import Settings
from provisor.storage import migrate, tables
from provisor.storage.database import TENANT_SETTING, Database

# The installation's tables: rows of no tenant.
INSTALLATION = {"tenants", "job_runners", "installation", "alembic_version"}
# Keys unique across tenants without a tenant column: SHA-256 fingerprints of the certificates
# provisor issues itself (a fresh key pair and a random serial each), which no two tenants share.
GLOBAL_KEYS = {
    ("outbound_certificates", ("fingerprint",)),
    ("certificate_events", ("fingerprint", "kind")),
}
POLICY = "tenant_isolation"
# Tables of tenant data that tables.py does not describe: PostgreSQL's substring search index
# (migration 0023, kept by triggers; SQLite's is an FTS5 table joined back through the rows).
SEARCH_INDEX = {"search_trigrams"}


@pytest.fixture
def conn(settings: Settings) -> Iterator[Connection]:
    db = Database(settings.sqlalchemy_url)
    try:
        with db.unscoped_read() as connection:
            yield connection
    finally:
        db.dispose()


def tenant_tables(conn: Connection) -> list[str]:
    """provisor's tables in the database, but the installation's."""
    names = inspect(conn).get_table_names()
    return sorted(n for n in names if migrate.ours(n, "table", None) and n not in INSTALLATION)


def test_the_tables_of_tenant_data_are_those_tables_py_lists(conn: Connection) -> None:
    described = {table.name for table in tables.metadata.sorted_tables} - INSTALLATION
    assert set(tenant_tables(conn)) == described
    assert {table.name for table in tables.TENANT_TABLES} == described
    assert len(described) >= 31  # the 31 tables of tenant data of migration 0014


def test_every_table_of_tenant_data_has_a_tenant_column_that_is_required(
    conn: Connection,
) -> None:
    inspector = inspect(conn)
    postgresql = conn.dialect.name == "postgresql"
    for name in tenant_tables(conn):
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        assert "tenant" in columns, name
        assert columns["tenant"]["nullable"] is False, name
        if postgresql:  # a row written without its tenant fails rather than land somewhere
            assert columns["tenant"]["default"] is None, name
    for name in INSTALLATION - {"alembic_version"}:
        assert "tenant" not in {c["name"] for c in inspector.get_columns(name)}, name


def test_the_unique_keys_are_per_tenant(conn: Connection) -> None:
    """Every primary key and unique constraint or index of a tenant's table names the tenant,
    or a surrogate id (the row's own generated ``id``, or a foreign key to a tenant's row):
    two tenants can hold the same userName, system name, setting, CA or caller certificate."""
    inspector = inspect(conn)
    for name in tenant_tables(conn):
        keys = [tuple(inspector.get_pk_constraint(name)["constrained_columns"])]
        keys += [tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)]
        keys += [
            tuple(str(c) for c in i["column_names"])
            for i in inspector.get_indexes(name)
            if i["unique"]
        ]
        references = {
            column
            for fk in inspector.get_foreign_keys(name)
            if fk["referred_table"] not in INSTALLATION
            for column in fk["constrained_columns"]
        }
        for key in keys:
            per_tenant = "tenant" in key or "id" in key or bool(references & set(key))
            assert per_tenant or (name, key) in GLOBAL_KEYS, f"{name}: unique {key} of every tenant"
    for name, key in GLOBAL_KEYS:  # the exceptions are still there (else drop them)
        uniques = [tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)]
        assert key in [tuple(inspector.get_pk_constraint(name)["constrained_columns"]), *uniques]


def test_natural_keys_are_per_tenant(conn: Connection) -> None:
    inspector = inspect(conn)
    primary = {
        "unique_values": ["tenant", "scope", "value_key"],
        "custom_schemas": ["tenant", "id"],
        "counters": ["tenant", "name"],
        "tenant_settings": ["tenant", "key"],
        "echoes": ["tenant", "endpoint", "entity_type", "entity_id"],
        "certificate_authority": ["tenant", "id"],
        "inbound_certificates": ["tenant", "fingerprint"],
        "revoked_certificates": ["tenant", "fingerprint"],
    }
    for name, columns in primary.items():
        assert inspector.get_pk_constraint(name)["constrained_columns"] == columns, name
    # A name first, then the tenant: an index led by the tenant would tempt SQLite's planner
    # into scanning a tenant's rows for "tenant = ? AND id > ? ORDER BY id" (paging).
    unique = {
        "clients": ["name", "tenant"],
        "users": ["user_name_key", "tenant"],
        "systems": ["name_key", "tenant"],
    }
    for name, columns in unique.items():
        assert [u["column_names"] for u in inspector.get_unique_constraints(name)] == [columns]


def _policies(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT tablename, policyname, permissive, roles, cmd, qual, with_check "
            "FROM pg_policies WHERE schemaname = current_schema()"
        )
    ).mappings()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        assert row["tablename"] not in found, f"{row['tablename']}: one policy only"
        found[row["tablename"]] = dict(row)
    return found


def test_postgresql_forces_row_level_security_on_every_table_of_tenant_data(
    pg_database: str,
) -> None:
    db = Database(pg_database)
    try:
        with db.unscoped_read() as conn:
            flags: dict[str, bool] = dict(
                conn.execute(
                    text(
                        "SELECT relname, (relrowsecurity AND relforcerowsecurity) "
                        "FROM pg_class WHERE relnamespace = current_schema()::regnamespace "
                        "AND relkind = 'r'"
                    )
                ).all()
            )
            names = sorted({*tenant_tables(conn), *(SEARCH_INDEX & set(flags))})
            policies = _policies(conn)
            owners = set(
                conn.execute(
                    text(
                        "SELECT DISTINCT tableowner FROM pg_tables "
                        "WHERE schemaname = current_schema() AND tablename = ANY(:names)"
                    ),
                    {"names": names},
                ).scalars()
            )
            role = conn.execute(
                text(
                    "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles "
                    "WHERE rolname = current_user"
                )
            ).one()
    finally:
        db.dispose()
    assert SEARCH_INDEX <= set(names)
    assert [name for name in names if not flags[name]] == []  # enabled and forced
    assert sorted(policies) == names  # no policy on the installation's tables
    for name, policy in policies.items():
        assert policy["policyname"] == POLICY, name
        assert (policy["permissive"], policy["roles"], policy["cmd"]) == (
            "PERMISSIVE",
            ["public"],
            "ALL",
        ), name
        for clause in (policy["qual"], policy["with_check"]):
            assert "tenant" in clause and f"current_setting('{TENANT_SETTING}'" in clause, name
            assert "'*'" in clause, name
    # The tables belong to the role provisor connects as, which is neither a superuser nor
    # BYPASSRLS: FORCE makes the policies hold for the owner too.
    assert owners == {role.rolname}
    assert (role.rolsuper, role.rolbypassrls) == (False, False)
