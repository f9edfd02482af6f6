"""Jobs, schedules and workers across tenants: one tick fires every tenant's due schedules,
each job runs in its own tenant and writes only its tenant's rows, a tenant at its job
quota lets another tenant's job go first, and each tenant's logs are kept as long as it
says. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import insert, select, text, update

from provisor.context import ANY_TENANT, DEFAULT_TENANT, Context
from provisor.errors import NotFoundError
from provisor.jobs.model import Job, JobStatus, Trigger
from provisor.jobs.pgqueue import ProcrastinateWorker
from provisor.jobs.scheduler import SCHEDULER
from provisor.jobs.service import WORKER, AtQuota
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import tables as t
from provisor.systems.model import NewSystem, System
from provisor.timestamps import format_datetime, now
from provisor.types import EntityType
from tests.helpers import user_body
from tests.jobs.conftest import running_jobs

EVERY = Context.system(WORKER, tenant=ANY_TENANT)  # a job runner's context


def add_tenant(services: Services, name: str, **quotas: Any) -> None:
    """A row of the installation's tenants table (the operator's, not here yet)."""
    stamp = now()
    with services.db.unscoped_write() as conn:
        conn.execute(
            insert(t.tenants).values(
                name=name,
                title=name.upper(),
                kind="standalone",
                enabled=1,
                quotas=orjson.dumps(quotas).decode(),
                created=stamp,
                last_modified=stamp,
            )
        )


def admin(tenant: str) -> Context:
    return Context.administrator("t", tenant=tenant)


def new_system(services: Services, tenant: str, **data: Any) -> System:
    return services.systems.create(admin(tenant), NewSystem.model_validate(data))


def lid_to_csv(services: Services, tenant: str, folder: Path, *users: str) -> System:
    """In ``tenant``: ``users`` in its directory, its directory as the source ``LID`` and a
    CSV target in ``folder``."""
    for name in users:
        services.directory.create(admin(tenant), EntityType.USER, user_body(name), "/scim")
    source = new_system(
        services, tenant, name="LID", type="local-identity-directory", role="source"
    )
    folder.mkdir()
    new_system(
        services,
        tenant,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={
            "csv.user.file": str(folder / "users.csv"),
            "csv.group.file": str(folder / "groups.csv"),
        },
    )
    return source


def csv_sources(services: Services, tenant: str, folder: Path, count: int) -> list[System]:
    """``count`` CSV sources of ``tenant`` (their jobs are claimed here, never run)."""
    folder.mkdir()
    return [
        new_system(
            services,
            tenant,
            name=f"S{i}",
            type="csv",
            role="source",
            properties={"csv.user.file": str(folder / f"s{i}.csv")},
        )
        for i in range(count)
    ]


def user_names(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return sorted(row["userName"] for row in csv.DictReader(handle))


def wait_until_finished(services: Services, jobs: list[Job], seconds: float = 60) -> list[Job]:
    deadline = time.monotonic() + seconds
    while True:
        found = [services.jobs.get(admin(j.tenant), j.id) for j in jobs]
        if all(j.status.finished for j in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def tenants_of(services: Services, table: Any, column: Any) -> set[tuple[str, str]]:
    """(tenant, value of ``column``) of every row of ``table``, whatever its tenant."""
    with services.db.unscoped_read() as conn:
        return {(r[0], r[1]) for r in conn.execute(select(table.c.tenant, column)).all()}


def test_one_tick_fires_every_tenants_schedule_and_each_job_runs_in_its_tenant(
    services: Services, tmp_path: Path
) -> None:
    for name in ("a", "b", "c"):
        add_tenant(services, name)
    source_a = lid_to_csv(services, "a", tmp_path / "a", "ada", "alan")
    source_b = lid_to_csv(services, "b", tmp_path / "b", "bob")
    lid_to_csv(services, "c", tmp_path / "c", "cid")
    saved_at = datetime(2026, 12, 4, 8, tzinfo=UTC)
    services.schedules.put(admin("a"), "LID", {"intervalMinutes": 45}, now=saved_at)
    services.schedules.put(admin("b"), "LID", {"intervalMinutes": 60}, now=saved_at)
    services.schedules.put(admin("c"), "LID", {"intervalMinutes": 60}, now=saved_at)
    with services.db.unscoped_write() as conn:  # the operator disabled c
        conn.execute(update(t.tenants).where(t.tenants.c.name == "c").values(enabled=0))

    assert services.schedules.tick(saved_at + timedelta(minutes=44)) == []
    started = services.schedules.tick(saved_at + timedelta(minutes=61))
    assert len(started) == 2, "a's and b's schedules are due: one tick starts both"
    off = services.schedules.get(admin("c"), "LID")
    assert off.last_run is not None and off.next_run is not None
    assert off.next_run > format_datetime(saved_at + timedelta(minutes=61)), "c: taken, skipped"
    with services.db.unscoped_read() as conn:
        rows = conn.execute(select(t.jobs.c.id, t.jobs.c.tenant, t.jobs.c.source_id)).all()
    assert {(r.tenant, r.source_id) for r in rows} == {("a", source_a.id), ("b", source_b.id)}
    job_of = {r.tenant: services.jobs.get(admin(r.tenant), r.id) for r in rows}
    for tenant, job in job_of.items():
        assert job.tenant == tenant
        assert (job.trigger, job.triggered_by) == (Trigger.REPEAT, SCHEDULER)
    with pytest.raises(NotFoundError):
        services.jobs.get(admin("b"), job_of["a"].id)  # another tenant's job: not there
    assert services.schedules.tick(saved_at + timedelta(minutes=61)) == [], "taken once"

    with running_jobs(services):  # the executor: claims over every tenant
        a, b = wait_until_finished(services, [job_of["a"], job_of["b"]])
    assert (a.status, b.status) == (JobStatus.SUCCESS, JobStatus.SUCCESS)
    assert user_names(tmp_path / "a" / "users.csv") == ["ada", "alan"]
    assert user_names(tmp_path / "b" / "users.csv") == ["bob"]

    # What each job wrote is its tenant's: operational data, statistics, source state, audit.
    od = t.operational_data
    assert {tenant for tenant, _ in tenants_of(services, od, od.c.source_entity_id)} == {"a", "b"}
    assert tenants_of(services, od, od.c.source_id) == {("a", source_a.id), ("b", source_b.id)}
    js = t.job_statistics
    assert tenants_of(services, js, js.c.job_id) == {("a", a.id), ("b", b.id)}
    ss = t.source_state
    assert tenants_of(services, ss, ss.c.source_id) == {("a", source_a.id), ("b", source_b.id)}
    log = t.audit_log
    with services.db.unscoped_read() as conn:
        starts = conn.execute(
            select(log.c.tenant, log.c.actor, log.c.target).where(log.c.action == "job.start")
        ).all()
    assert sorted((r.tenant, r.actor, r.target) for r in starts) == [
        ("a", SCHEDULER, a.id),
        ("b", SCHEDULER, b.id),
    ]
    assert [s.counts.read for s in a.statistics if s.role == "source"] == [2]
    assert [s.counts.created for s in b.statistics if s.role == "target"] == [1]


def test_a_tenant_at_its_job_quota_lets_another_tenants_job_go_first(
    services: Services, tmp_path: Path
) -> None:
    add_tenant(services, "a")  # the default quota: 2 jobs at once
    add_tenant(services, "b", jobConcurrency=1)
    a1, a2, a3 = csv_sources(services, "a", tmp_path / "a", 3)
    b1, b2 = csv_sources(services, "b", tmp_path / "b", 2)
    queued = {
        s.id: services.jobs.start(admin(tenant), s.id)
        for tenant, s in (("a", a1), ("a", a2), ("a", a3), ("b", b1), ("b", b2))
    }  # in this order: a's are the oldest

    def claim() -> str | None:
        job = services.jobs.claim(EVERY, "w")
        if job is not None:
            assert job.tenant == queued[job.source_id].tenant
        return None if job is None else job.source_id

    assert claim() == a1.id
    assert claim() == a2.id
    assert claim() == b1.id, "a runs 2 jobs, its quota: b's job goes before a's older one"
    assert claim() is None, "b runs 1 job, its quota; a is at its quota"

    # In its own tenant (as procrastinate's task claims it): not claimed, AtQuota.
    a3_job = queued[a3.id]
    in_a = Context.system(WORKER, tenant="a", request_id=a3_job.id)
    assert services.jobs.claim(in_a, "w", a3_job.id) is None
    with pytest.raises(AtQuota) as waiting:
        asyncio.run(services.jobs.run_queued(in_a, a3_job.id, "w"))
    assert waiting.value.job.id == a3_job.id
    assert services.jobs.get(admin("a"), a3_job.id).status is JobStatus.QUEUED

    # A job of a ends (its source has no file: it fails): a has room again; b's second job
    # still waits for its first.
    first = queued[a1.id]
    asyncio.run(services.jobs.run(Context.system(WORKER, tenant="a"), first))
    assert services.jobs.get(admin("a"), first.id).status.finished
    assert claim() == a3.id
    assert claim() is None

    # The quota is read at each claim: b may now run 2.
    with services.db.unscoped_write() as conn:
        conn.execute(
            update(t.tenants).where(t.tenants.c.name == "b").values(quotas='{"jobConcurrency": 2}')
        )
    assert claim() == b2.id


def test_each_tenants_logs_are_kept_as_long_as_it_says(services: Services, tmp_path: Path) -> None:
    for name in ("a", "b"):
        add_tenant(services, name)
    services.jobs.set_retention_days(admin("a"), 30)
    services.jobs.set_retention_days(admin("b"), 14)  # the default tenant: 7 days
    ages = (10, 20, 40)  # days
    made: dict[tuple[str, int], str] = {}
    for tenant in ("a", "b", DEFAULT_TENANT):
        for age, source in zip(
            ages, csv_sources(services, tenant, tmp_path / tenant, 3), strict=True
        ):
            job = services.jobs.start(admin(tenant), source.id)
            services.jobs.stop(admin(tenant), job.id)  # finished before it started
            made[tenant, age] = job.id
            then = format_datetime(datetime.now(UTC) - timedelta(days=age))
            with services.db.unscoped_write() as conn:
                conn.execute(update(t.jobs).where(t.jobs.c.id == job.id).values(created=then))
                conn.execute(insert(t.realtime_logs).values(realtime_log(tenant, job.id, then)))
        fresh = services.jobs.start(admin(tenant), "S0")  # queued: never purged
        made[tenant, 0] = fresh.id

    def kept() -> set[tuple[str, int]]:
        with services.db.unscoped_read() as conn:
            jobs = set(conn.execute(select(t.jobs.c.id)).scalars())
            logs = set(conn.execute(select(t.realtime_logs.c.id)).scalars())
        assert logs == jobs - {made[tenant, 0] for tenant in ("a", "b", DEFAULT_TENANT)}
        return {key for key, job_id in made.items() if job_id in jobs}

    assert services.jobs.purge(Context.system(WORKER, tenant="b")) == 2, "b's, after b's 14 days"
    assert kept() == {(tenant, age) for tenant in ("a", DEFAULT_TENANT) for age in (0, *ages)} | {
        ("b", 0),
        ("b", 10),
    }
    assert services.jobs.purge(EVERY) == 4, "every tenant's, each after its retention"
    assert kept() == {("a", 0), ("a", 10), ("a", 20), ("b", 0), ("b", 10), (DEFAULT_TENANT, 0)}


def realtime_log(tenant: str, log_id: str, started: str) -> dict[str, Any]:
    return {
        "tenant": tenant,
        "id": log_id,
        "source_id": "s",
        "source_name": "S",
        "entity_type": "user",
        "entity_id": "u",
        "operation": "CREATE",
        "status": "Finished Successfully",
        "started": started,
        "duration_ms": 1,
        "error": None,
        "caller": "idm",
        "systems": "[]",
    }


def test_a_restarted_job_stays_in_its_tenant(services: Services, tmp_path: Path) -> None:
    add_tenant(services, "b")
    [source] = csv_sources(services, "b", tmp_path / "b", 1)
    job = services.jobs.start(admin("b"), source.id)
    assert services.jobs.claim(EVERY, "dead") is not None
    stale = format_datetime(datetime.now(UTC) - timedelta(seconds=services.jobs.stale_seconds + 5))
    with services.db.unscoped_write() as conn:
        conn.execute(update(t.jobs).where(t.jobs.c.id == job.id).values(heartbeat=stale))
    [successor] = services.jobs.recover(EVERY)
    assert (successor.tenant, successor.resumed_from) == ("b", job.id)
    assert services.jobs.get(admin("b"), successor.id).status is JobStatus.QUEUED
    claimed = services.jobs.claim(EVERY, "alive")
    assert claimed is not None and (claimed.id, claimed.tenant) == (successor.id, "b")


@contextmanager
def procrastinate_worker(services: Services, url: str) -> Iterator[None]:
    """A ``provisor worker``'s job runner on PostgreSQL, in a thread, until the block ends."""
    worker = ProcrastinateWorker(
        services.jobs, services.schedules, url, name="test-worker", concurrency=2
    )
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(worker.run(stop),))
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=60)
        loop.close()


def tasks_of(services: Services, job_id: str) -> list[Any]:
    """procrastinate's tasks of a job: (status, args, scheduled_at in the future)."""
    query = text(
        "SELECT status, args, scheduled_at > now() AS later FROM procrastinate_jobs "
        "WHERE args->>'job_id' = :job ORDER BY id"
    )
    with services.db.unscoped_read() as conn:
        return list(conn.execute(query, {"job": job_id}).all())


def test_procrastinate_tasks_run_in_their_tenant_and_wait_for_its_quota(
    pg_database: str, tmp_path: Path
) -> None:
    services = Services.open(Settings(data_dir=tmp_path, database_url=pg_database))
    try:
        add_tenant(services, "b", jobConcurrency=1)
        lid_to_csv(services, "b", tmp_path / "b", "bob")
        [busy] = csv_sources(services, "b", tmp_path / "busy", 1)
        lid_to_csv(services, DEFAULT_TENANT, tmp_path / "default", "dora")
        elsewhere = services.jobs.start(admin("b"), busy.id)
        in_b = Context.system(WORKER, tenant="b")
        assert services.jobs.claim(in_b, "elsewhere", elsewhere.id) is not None  # b: at quota
        held = services.jobs.start(admin("b"), "LID")
        [(_, args, _)] = tasks_of(services, held.id)
        assert args == {"job_id": held.id, "tenant": "b"}, "the task carries the tenant"
        legacy = services.jobs.start(admin(DEFAULT_TENANT), "LID")
        with services.db.unscoped_write() as conn:  # a task deferred before tenants
            conn.execute(
                text(
                    "UPDATE procrastinate_jobs SET args = args - 'tenant' "
                    "WHERE args->>'job_id' = :job"
                ),
                {"job": legacy.id},
            )

        with procrastinate_worker(services, pg_database):
            [done] = wait_until_finished(services, [legacy])
            assert done.status is JobStatus.SUCCESS, "no tenant: the default tenant's job"
            deadline = time.monotonic() + 30
            while not any(later for status, _, later in tasks_of(services, held.id)):
                assert time.monotonic() < deadline, "b's job is handed over again later"
                time.sleep(0.05)
            assert services.jobs.get(admin("b"), held.id).status is JobStatus.QUEUED
            asyncio.run(services.jobs.run(in_b, elsewhere))  # b's running job ends
            [ran] = wait_until_finished(services, [held])
        assert ran.status is JobStatus.SUCCESS
        assert ran.started is not None and ran.started >= (
            services.jobs.get(admin("b"), elsewhere.id).ended or ""
        ), "b's second job ran after its first ended"
        assert user_names(tmp_path / "b" / "users.csv") == ["bob"]
        assert user_names(tmp_path / "default" / "users.csv") == ["dora"]
        assert tasks_of(services, held.id) == [], "done: no task left"
    finally:
        services.close()
