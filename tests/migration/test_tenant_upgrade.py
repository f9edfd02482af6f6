"""Upgrading to tenants: today's data becomes the default tenant's (migration 0014), on SQLite
and PostgreSQL, from revision 0013 with rows in every table; and back down."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, MetaData, Table, delete, insert, select
from sqlalchemy.dialects.postgresql import JSONB

from provisor.context import DEFAULT_TENANT, Context
from provisor.runtime import Services
from provisor.scim.errors import UniquenessError
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage.database import Database
from provisor.storage.tables import TENANT_TABLES
from provisor.types import EntityType
from tests.dataset import INSTALLATION_ROWS, SOURCE_NAME, USER_NAME, Rows, ids, tenant_rows

BEFORE = "0013"  # the last revision without tenants
LATER = {  # tables of later migrations
    "administrators",
    "console_sessions",
    "console_sso",
    "installation",
    "proxy_activity",
    "notification_subscriptions",
    "notification_deliveries",
    "notification_attempts",
    "job_notification_state",
    "audit_heads",
    "job_partitions",
}
# columns of later migrations (realtime_logs; audit_log's chain)
LATER_COLUMNS = {"entity_name", "seq", "address", "prev_hash", "hash"}
OTHER = "other"  # a second tenant, made after the upgrade
TENANT_DATA = {table.name for table in TENANT_TABLES}
Snapshot = dict[str, list[dict[str, Any]]]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings on a database without any table (not the suite's migrated templates)."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path)
    else:
        yield Settings(data_dir=tmp_path, database_url=request.getfixturevalue("pg_empty_database"))


def reflect(conn: Connection) -> dict[str, Table]:
    """The database's tables as they are (not as tables.py describes head): provisor's own."""
    meta = MetaData()
    meta.reflect(conn)
    return {
        name: table
        for name, table in meta.tables.items()
        if name != "alembic_version" and migrate.ours(name, "table", None)
    }


def insert_rows(conn: Connection, rows: Rows, tenant: str) -> None:
    """Insert ``rows`` with plain SQL into the tables as they are, with ``tenant`` where a
    table has the column."""
    tables = reflect(conn)
    for name, values in rows.items():
        table = tables[name]
        conn.execute(insert(table), [_stored(table, row, tenant) for row in values])


def _stored(table: Table, row: dict[str, Any], tenant: str) -> dict[str, Any]:
    # jsonb columns (PostgreSQL) reflect as JSONB, which takes the value, not its JSON text
    stored = {
        key: orjson.loads(value) if isinstance(table.c[key].type, JSONB) else value
        for key, value in row.items()
    }
    if "tenant" in table.c:
        stored["tenant"] = tenant
    return stored


def snapshot(db: Database) -> Snapshot:
    """Every row of every table of provisor, in an order of their own."""
    with db.unscoped_read() as conn:
        return {
            name: sorted(
                (dict(row) for row in conn.execute(select(table)).mappings()),
                key=lambda row: repr(sorted(row.items(), key=lambda item: item[0])),
            )
            for name, table in reflect(conn).items()
        }


def without_tenant(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k != "tenant" and k not in LATER_COLUMNS} for row in rows
    ]


@pytest.mark.slow  # migrates from nothing, then up, down and up again: seconds
def test_todays_data_becomes_the_default_tenants_and_survives_a_downgrade(
    empty: Settings,
) -> None:
    db = Database(empty.sqlalchemy_url)
    try:
        migrate.upgrade(db, BEFORE)
        with db.unscoped_write() as conn:
            # the dataset's tables of revision 0013 (later ones are made by later migrations)
            today = {k: v for k, v in tenant_rows("today").items() if k in reflect(conn)}
            assert set(reflect(conn)) == set(today) | set(INSTALLATION_ROWS), (
                "rows in every table of revision 0013"
            )
            # the migrations seeded the schema counter: the dataset's counts one schema
            conn.execute(delete(reflect(conn)["counters"]))
            # audit_log had a tenant column already (always the default tenant then)
            insert_rows(conn, {**today, **INSTALLATION_ROWS}, DEFAULT_TENANT)
        before = snapshot(db)
        assert all(before.values()), [name for name, rows in before.items() if not rows]

        migrate.upgrade(db)
        after = snapshot(db)
        assert_default_tenants(before, after)
        assert_app_reads(empty, today)

        # A second tenant with the same natural keys fits (uniqueness is per tenant)...
        with db.unscoped_write() as conn:
            conn.execute(insert(reflect(conn)["tenants"]), [{**after["tenants"][0], "name": OTHER}])
            insert_rows(conn, tenant_rows(OTHER), OTHER)
        # ...and a downgrade keeps the default tenant's rows only (and the audit log whole)
        migrate.downgrade(db, BEFORE)
        assert migrate.current_revision(db) == BEFORE
        down = snapshot(db)
        others = [row for row in down["audit_log"] if row["tenant"] == OTHER]
        assert len(others) == 1
        down["audit_log"] = [row for row in down["audit_log"] if row["tenant"] != OTHER]
        assert down == before

        migrate.upgrade(db)
        again = snapshot(db)
        again["audit_log"] = [row for row in again["audit_log"] if row["tenant"] != OTHER]
        again["audit_heads"] = [row for row in again["audit_heads"] if row["tenant"] != OTHER]
        assert_default_tenants(before, again)
        assert again == {**after, "tenants": again["tenants"]}  # a new creation time
        assert_app_reads(empty, today)
    finally:
        db.dispose()


def assert_default_tenants(before: Snapshot, after: Snapshot) -> None:
    """Every row of ``before`` is in ``after``, with the default tenant where a table holds a
    tenant's data; the default tenant exists."""
    assert set(after) == set(before) | {"tenants"} | LATER
    for name, rows in before.items():
        if name in TENANT_DATA:
            assert {row["tenant"] for row in after[name]} == {DEFAULT_TENANT}, name
            assert without_tenant(after[name]) == without_tenant(rows), name
        else:
            assert after[name] == rows, name
    assert TENANT_DATA <= set(after)  # every tenant table holds the upgraded rows
    [tenant] = after["tenants"]
    assert (tenant["name"], tenant["kind"], tenant["enabled"]) == (DEFAULT_TENANT, "standalone", 1)
    assert tenant["bundle"] is None and json.loads(tenant["quotas"]) == {}


def assert_app_reads(settings: Settings, rows: Rows) -> None:
    """provisor, as it runs, finds the upgraded rows in the default tenant."""
    found = ids(rows)
    ctx = Context.system("tests")  # the default tenant's
    services = Services.open(settings)
    try:
        user = json.loads(
            services.directory.get(ctx, EntityType.USER, found["user"], "/scim").body or b""
        )
        assert user["userName"] == USER_NAME
        assert user["emails"][0]["value"] == "ada@example.org"
        assert [g["value"] for g in user["groups"]] == [found["group"]]
        group = json.loads(
            services.directory.get(ctx, EntityType.GROUP, found["group"], "/scim").body or b""
        )
        members = {m["value"] for m in group["members"]}
        assert members == {row["id"] for row in rows["users"]}
        with pytest.raises(UniquenessError):  # the unique keys came along
            services.directory.create(
                ctx, EntityType.USER, {"userName": USER_NAME.upper()}, "/scim"
            )
        source = services.systems.get(ctx, SOURCE_NAME)
        assert source.id == found["source"]
        assert source.properties["URL"] == "https://hr.example.org/scim"
        assert source.credential_keys == ("Password",)
        assert source.target_systems[0].name == "Directory"
    finally:
        services.close()
