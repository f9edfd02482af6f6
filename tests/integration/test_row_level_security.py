"""PostgreSQL's row-level security, the second wall behind ``Transaction.scoped``: a session
whose ``provisor.tenant`` names one tenant sees, adds, changes and deletes that tenant's rows
only, in every table of tenant data, even as the tables' owner (FORCE) and with SQL that
forgets the tenant."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, create_engine, func, insert, select, text, update
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

from provisor.context import Context
from provisor.storage import auditchain
from provisor.storage import tables as t
from provisor.storage.database import TENANT_SETTING, Database
from tests.dataset import Rows, tenant_rows

INSUFFICIENT_PRIVILEGE = "42501"  # SQLSTATE of "new row violates row-level security policy"
TENANTS = ("a", "b")
TABLES = {table.name: table for table in t.TENANT_TABLES}


def insert_rows(conn: Connection, rows: Rows, tenant: str) -> None:
    for name, values in rows.items():
        conn.execute(insert(TABLES[name]), [{**row, "tenant": tenant} for row in values])


@pytest.fixture
def data(pg_database: str) -> Iterator[tuple[str, dict[str, Rows]]]:
    """A database (its URL) holding tenants a's and b's rows in every table of tenant data,
    written unscoped; each tenant's rows."""
    rows = {tenant: tenant_rows(tenant) for tenant in TENANTS}
    assert set(rows["a"]) == set(TABLES), "the dataset covers every table of tenant data"
    db = Database(pg_database)
    try:
        with db.unscoped_write() as conn:
            for tenant in TENANTS:
                insert_rows(conn, rows[tenant], tenant)
        yield pg_database, rows
    finally:
        db.dispose()


@pytest.fixture
def engine(data: tuple[str, dict[str, Rows]]) -> Iterator[Engine]:
    """Plain connections as provisor's role (not through Database: they set nothing)."""
    made = create_engine(data[0], poolclass=NullPool)
    yield made
    made.dispose()


def tenant_of(conn: Connection, tenant: str) -> None:
    conn.execute(
        text("SELECT set_config(:name, :tenant, false)"), {"name": TENANT_SETTING, "tenant": tenant}
    )


def counts(conn: Connection) -> dict[str, Counter[str]]:
    """Per table, the rows the session sees, by tenant (no WHERE: the policies decide)."""
    return {
        name: Counter(
            dict(conn.execute(select(table.c.tenant, func.count()).group_by(table.c.tenant)).all())
        )
        for name, table in TABLES.items()
    }


def expected(rows: dict[str, Rows], *tenants: str) -> dict[str, Counter[str]]:
    return {
        name: Counter({tenant: len(rows[tenant][name]) for tenant in tenants}) for name in TABLES
    }


def refused(conn: Connection, statement: Executable) -> bool:
    """Whether PostgreSQL refuses ``statement`` for the policy (in a savepoint)."""
    try:
        with conn.begin_nested():
            conn.execute(statement)
    except ProgrammingError as exc:
        return getattr(exc.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
    return False


def test_a_session_of_one_tenant_sees_its_rows_only(
    engine: Engine, data: tuple[str, dict[str, Rows]]
) -> None:
    rows = data[1]
    with engine.connect() as conn:
        for tenant in TENANTS:
            tenant_of(conn, tenant)
            assert counts(conn) == expected(rows, tenant)
        tenant_of(conn, "*")  # provisor's own work over every tenant (and migrations)
        seen = counts(conn)
        for name in TABLES:
            assert seen[name]["a"] == len(rows["a"][name]), name
            assert seen[name]["b"] == len(rows["b"][name]), name


def test_a_session_without_a_tenant_sees_and_adds_nothing(
    engine: Engine, data: tuple[str, dict[str, Rows]]
) -> None:
    with engine.connect() as conn:
        assert (
            conn.execute(text("SELECT current_setting(:n, true)"), {"n": TENANT_SETTING}).scalar()
            is None
        )
        assert all(not seen for seen in counts(conn).values())
        row = {**data[1]["a"]["tenant_settings"][0], "key": "new"}
        assert refused(conn, insert(t.tenant_settings).values(tenant="a", **row))
        tenant_of(conn, "")  # set, then emptied
        assert all(not seen for seen in counts(conn).values())


def test_a_session_of_one_tenant_cannot_write_another_tenants_rows(
    engine: Engine, data: tuple[str, dict[str, Rows]]
) -> None:
    rows = data[1]
    with engine.connect() as conn, conn.begin():
        tenant_of(conn, "a")
        for name, table in TABLES.items():
            row = {**rows["b"][name][0], "tenant": "b"}
            assert refused(conn, insert(table).values(**row)), f"{name}: b's row added"
            # b's rows are not there to change or delete: the statements meet a's only
            with conn.begin_nested() as savepoint:
                changed = conn.execute(
                    update(table).where(table.c.tenant == "b").values(tenant="b")
                )
                assert changed.rowcount == 0, name
                if name == "audit_log":  # append-only: removal is the purge's (its trigger)
                    auditchain.allow_removal(conn)
                deleted = conn.execute(table.delete())
                assert deleted.rowcount == len(rows["a"][name]), name
                savepoint.rollback()
            # nor can a's rows be handed to b
            assert refused(conn, update(table).values(tenant="b")), f"{name}: a's row moved"
    with engine.connect() as conn:
        tenant_of(conn, "*")
        seen = counts(conn)
        for name in TABLES:
            assert (seen[name]["a"], seen[name]["b"]) == (
                len(rows["a"][name]),
                len(rows["b"][name]),
            ), name


def test_a_session_of_a_tenant_adds_its_own_rows_to_every_table(engine: Engine) -> None:
    own = tenant_rows("c")
    with engine.connect() as conn, conn.begin():
        tenant_of(conn, "c")
        insert_rows(conn, own, "c")  # the same natural keys as a's and b's: per tenant
        assert counts(conn) == {name: Counter({"c": len(values)}) for name, values in own.items()}


def test_a_service_calls_sql_that_forgets_the_tenant_meets_its_tenants_rows_only(
    data: tuple[str, dict[str, Rows]],
) -> None:
    """Through Database, as every store: a statement without ``scoped()`` still reads and
    writes the call's tenant only. One pooled connection serves each call in turn: the tenant
    set for one call never leaks into the next."""
    url, rows = data
    users = {tenant: {row["id"] for row in rows[tenant]["users"]} for tenant in TENANTS}
    ctx = {tenant: Context.system("tests", tenant=tenant) for tenant in TENANTS}
    db = Database(url, pool_size=1)
    try:
        for tenant in ("a", "b", "a", "b"):
            with db.read(ctx[tenant]) as tx:
                assert set(tx.execute(text("SELECT id FROM users")).scalars()) == users[tenant]
        with db.write(ctx["b"]) as tx:
            assert set(tx.execute(text("SELECT id FROM users")).scalars()) == users["b"]
            renamed = tx.execute(text("UPDATE users SET display_name = 'renamed'"))
            assert renamed.rowcount == len(users["b"])
        with db.read(ctx["a"]) as tx:  # after b's write, on the same connection
            names = tx.execute(text("SELECT id, display_name FROM users")).all()
            assert {row.id for row in names} == users["a"]
            assert "renamed" not in {row.display_name for row in names}
        with pytest.raises(ProgrammingError) as refusal, db.write(ctx["a"]) as tx:
            row = {**rows["b"]["tenant_settings"][0], "key": "new"}
            tx.execute(insert(t.tenant_settings).values(tenant="b", **row))
        assert getattr(refusal.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE
        with db.unscoped_read() as conn:
            renamed_rows = conn.execute(
                text(
                    "SELECT tenant, count(*) FROM users "
                    "WHERE display_name = 'renamed' GROUP BY tenant"
                )
            ).all()
            assert renamed_rows == [("b", len(users["b"]))]
    finally:
        db.dispose()


def test_start_up_warns_when_the_role_bypasses_the_policies(
    pg_database: str, tmp_path: Path
) -> None:
    """The suite's role is held to the policies; a superuser is not, and the start-up says so
    (``Database.bypasses_row_security``)."""
    ours = Database(pg_database)
    superuser = Database(pg_database.replace("provisor_app@", "postgres@", 1))
    try:
        assert not ours.bypasses_row_security()
        assert superuser.bypasses_row_security()
    finally:
        ours.dispose()
        superuser.dispose()
    in_memory = Database(f"sqlite:///{tmp_path / 'x.db'}")
    assert not in_memory.bypasses_row_security()
    in_memory.dispose()
