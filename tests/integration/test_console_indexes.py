"""The indexes of the console's biggest pages, in SQLite's plans: a job's entity logs of some
actions (its failed or created entities) are found and counted through the (job, action,
tenant) index, so a job with 400,000 created entities does not read them all to show its 3
failures; a tenant's newest real-time logs are read in the order of the (tenant, started)
index, not all read and sorted for each page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from provisor.context import Context
from provisor.jobs import store
from provisor.jobs.model import Job, JobStatus, JobType, ReadMode, Trigger
from provisor.jobs.ports import EntityLog
from provisor.realtime import store as realtime_store
from provisor.realtime.model import Operation, RealtimeLog, Status
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import NewSystem
from provisor.types import EntityType

ADMIN = Context.administrator("tester")
INDEX = "ix_job_entities_job_id_action_tenant"
NEWEST = "ix_realtime_logs_tenant_started"


@contextmanager
def statements(services: Services) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) the services run meanwhile."""
    seen: list[tuple[str, Any]] = []
    engine = services.db.read_engine

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", keep)


def a_job_with_logs(services: Services, created: int, failed: int) -> str:
    source = services.systems.create(
        ADMIN,
        NewSystem.model_validate(
            {"name": "HR", "type": "Local Identity Directory", "role": "source"}
        ),
    )
    job_id = str(uuid.uuid4())
    job = Job(
        id=job_id,
        source_id=source.id,
        source_name=source.name,
        type=JobType.READ,
        trigger=Trigger.IMMEDIATE,
        triggered_by="tester",
        status=JobStatus.FINISHED_WITH_ERROR,
        read_mode=ReadMode.FULL,
        created="2026-12-05T10:00:00.000000Z",
        chain_id=job_id,
    )
    logs = [
        EntityLog("created", "user", source.id, "Target", f"u{n}", name=f"user{n}")
        for n in range(created)
    ] + [
        EntityLog("failed", "user", source.id, "Target", f"f{n}", "refused", name=f"bad{n}")
        for n in range(failed)
    ]
    with services.db.write(ADMIN) as tx:
        store.insert_job(tx, job, {})
        store.add_entity_logs(tx, job_id, logs)
    return job_id


def test_a_jobs_logs_of_some_actions_are_read_through_the_index(
    sqlite_settings: Settings,
) -> None:
    services = Services.open(sqlite_settings)
    try:
        job_id = a_job_with_logs(services, created=300, failed=3)
        with statements(services) as seen:
            failures, total = services.jobs.entity_logs(ADMIN, job_id, ["failed"], limit=50)
        assert total == 3
        assert [e.name for e in failures] == ["bad0", "bad1", "bad2"]
        assert all(e.reason == "refused" for e in failures)
        reading = [(sql, p) for sql, p in seen if "job_entities" in sql]
        assert len(reading) == 2, "a count and a page"
        with services.db.read_engine.connect() as conn:
            for sql, parameters in reading:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
                assert any(INDEX in str(step) for step in plan), (sql, plan)
    finally:
        services.close()


def plans(services: Services, seen: list[tuple[str, Any]], table: str) -> list[list[str]]:
    """SQLite's plan of each statement on ``table``."""
    with services.db.read_engine.connect() as conn:
        return [
            [str(step[-1]) for step in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", p)]
            for sql, p in seen
            if f"FROM {table}" in sql
        ]


def test_a_tenants_newest_real_time_logs_are_read_in_index_order(
    sqlite_settings: Settings,
) -> None:
    services = Services.open(sqlite_settings)
    try:
        with services.db.write(ADMIN) as tx:
            for n in range(30):
                realtime_store.add(
                    tx,
                    RealtimeLog(
                        id=str(uuid.uuid4()),
                        source_id="source",
                        source_name="HR",
                        entity_type=EntityType.USER,
                        entity_id=f"u{n}",
                        operation=Operation.PATCH,
                        status=Status.SUCCESS,
                        started=f"2026-12-05T10:{n:02d}:00.000000Z",
                        duration_ms=12,
                        error=None,
                        caller="hr-sync",
                    ),
                )
        with statements(services) as seen:
            logs, total = services.realtime.search(ADMIN, limit=10)
        assert total == 30
        assert [log.entity_id for log in logs] == [f"u{n}" for n in range(29, 19, -1)]
        found = plans(services, seen, "realtime_logs")
        newest = [plan for plan in found if any(NEWEST in step for step in plan)]
        assert newest, found
        for plan in newest:  # in the index's order: no sort of every log
            assert not any("USE TEMP B-TREE FOR ORDER BY" in step for step in plan), plan
    finally:
        services.close()
