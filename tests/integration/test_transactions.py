"""Scoped transactions: the call's tenant limits every statement, and an audit entry commits
(or rolls back) with the change it records."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, select

from provisor.context import ANY_TENANT, Context
from provisor.runtime import Services
from provisor.storage import tables as t


def test_an_audit_entry_commits_with_the_change(services: Services) -> None:
    ctx = Context.administrator("ops", request_id="req-1")
    with services.db.write(ctx) as tx:
        tx.audit("system.update", "s1", {"changed": ["properties"]})
    with pytest.raises(RuntimeError), services.db.write(ctx) as tx:
        tx.audit("system.delete", "s2")
        raise RuntimeError("the change failed")
    with services.db.read(ctx) as tx:
        rows = tx.execute(select(t.audit_log)).mappings().all()
    assert [(r["action"], r["target"], r["actor"], r["actor_kind"]) for r in rows] == [
        ("system.update", "s1", "ops", "administrator")
    ]
    assert rows[0]["request_id"] == "req-1" and rows[0]["tenant"] == "default"
    assert orjson.loads(rows[0]["detail"]) == {"changed": ["properties"]}


def test_a_read_transaction_records_no_audit_entry(services: Services) -> None:
    with (
        pytest.raises(RuntimeError, match="write transaction"),
        services.db.read(Context.system("test")) as tx,
    ):
        tx.audit("system.update", "s1")


def test_a_table_with_a_tenant_column_is_scoped_to_the_calls_tenant(services: Services) -> None:
    table = Table("scoped_probe", MetaData(), Column("tenant", String(64)), Column("v", String(8)))
    table.create(services.db.write_engine)
    try:
        for tenant, value in (("a", "1"), ("b", "2")):
            ctx = Context.system("test", tenant=tenant)
            with services.db.write(ctx) as tx:
                tx.execute(insert(table).values(tx.tenant_values(table, {"v": value})))
        with services.db.read(Context.system("test", tenant="a")) as tx:
            seen = tx.execute(tx.scoped(select(table.c.v), table)).scalars().all()
        assert seen == ["1"]
        # provisor's own work over every tenant sees every tenant's rows, and names each
        # row's tenant when it inserts
        every = Context.system("test", tenant=ANY_TENANT)
        with services.db.write(every) as tx:
            seen = tx.execute(tx.scoped(select(table.c.v), table)).scalars().all()
            assert sorted(seen) == ["1", "2"]
            with pytest.raises(RuntimeError):
                tx.tenant_values(table, {"v": "3"})
            assert tx.tenant_values(table, {"v": "3", "tenant": "b"})["tenant"] == "b"
        # a table without the column holds the installation's rows, whatever the tenant
        with services.db.read(Context.system("test", tenant="a")) as tx:
            statement = tx.scoped(select(t.job_runners.c.name), t.job_runners)
        assert "tenant" not in str(statement)
    finally:
        table.drop(services.db.write_engine)
