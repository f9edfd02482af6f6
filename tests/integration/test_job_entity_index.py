"""A job's entity logs of some actions (the console's failed or created entities of a job)
are found and counted through the (job, action, tenant) index: SQLite's plan for each
statement of ``JobService.entity_logs`` names it, so a job with 400,000 created entities
does not read them all to show its 3 failures."""

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
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import NewSystem

ADMIN = Context.administrator("tester")
INDEX = "ix_job_entities_job_id_action_tenant"


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
