"""Jobs and schedules as services: every call carries a context, the services authorise,
record who started what, and audit the administrators' changes in the same commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from provisor.context import Actor, ActorKind, Context, Permission
from provisor.errors import InputError, PermissionDeniedError
from provisor.jobs import present
from provisor.jobs.model import JobStatus, Trigger
from provisor.jobs.ports import Hold
from provisor.jobs.scheduler import SCHEDULER
from provisor.jobs.service import JobService
from provisor.runtime import Services
from provisor.storage import tables as t
from tests.jobs.conftest import add_users, lid_source
from tests.jobs.test_pipeline import csv_target


def client(*permissions: Permission, system: str | None = None) -> Context:
    return Context(Actor(ActorKind.CLIENT, "idm", frozenset(permissions), system))


def audited(services: Services) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(action, actor kind, actor, target, detail) of every audit entry of jobs, schedules
    and resets, oldest first (the fixtures' systems are audited too: not here)."""
    a = t.audit_log.c
    with services.db.read(Context.system("test")) as tx:
        rows = tx.execute(
            select(a.action, a.actor_kind, a.actor, a.target, a.detail)
            .where(a.action.not_like("system.create"))
            .order_by(a.id)
        ).all()
    return [(r.action, r.actor_kind, r.actor, r.target, orjson.loads(r.detail)) for r in rows]


def test_operations_declare_and_check_their_permissions(services: Services) -> None:
    source = lid_source(services)
    jobs = services.jobs
    for operation in (JobService.start, JobService.get, JobService.stop, JobService.export):
        with pytest.raises(PermissionDeniedError):
            operation(jobs, client(Permission.TENANT_ADMIN_API), "x")  # type: ignore[call-arg]
    with pytest.raises(PermissionDeniedError):
        services.schedules.all(client(Permission.MANAGE_USERS))
    with pytest.raises(PermissionDeniedError):
        jobs.public_start(client(Permission.MANAGE_USERS), source.id, "READ")

    public = jobs.public_start(client(Permission.TENANT_ADMIN_API), source.id, "read")
    assert public.triggered_by == "Identity Provisioning API - idm"
    assert jobs.public_get(client(Permission.TENANT_ADMIN_API), public.id).id == public.id
    with pytest.raises(InputError, match="READ or RESYNC"):
        jobs.public_start(client(Permission.TENANT_ADMIN_API), source.id, "SIMULATE")
    bound = client(Permission.TENANT_ADMIN_API, system="another-system")
    with pytest.raises(PermissionDeniedError, match="attached to system"):
        jobs.public_start(bound, source.id, "READ")
    with pytest.raises(PermissionDeniedError, match="attached to system"):
        jobs.public_get(bound, public.id)


def test_the_actor_is_recorded_and_changes_are_audited(services: Services, tmp_path: Path) -> None:
    add_users(services, "ada")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    ada = Context.administrator("cli:ada")
    job = services.jobs.start(ada, "LID")
    assert job.triggered_by == "cli:ada"
    services.jobs.stop(ada, job.id)
    services.jobs.set_retention_days(ada, 14)
    assert services.jobs.retention_days(ada) == 14
    assert services.jobs.delete_logs(ada) == 1
    saved_at = datetime(2026, 12, 4, 8, tzinfo=UTC)
    services.schedules.put(ada, "LID", {"intervalMinutes": 45}, now=saved_at)
    services.schedules.disable(ada, "LID")
    services.schedules.delete(ada, "LID")
    assert [(a, kind, actor, target) for a, kind, actor, target, _ in audited(services)] == [
        ("job.start", "administrator", "cli:ada", job.id),
        ("job.stop", "administrator", "cli:ada", job.id),
        ("job_settings.update", "administrator", "cli:ada", "logRetentionDays"),
        ("job.delete", "administrator", "cli:ada", "*"),
        ("schedule.update", "administrator", "cli:ada", source.id),
        ("schedule.update", "administrator", "cli:ada", source.id),
        ("schedule.delete", "administrator", "cli:ada", source.id),
    ]
    details = [detail for *_, detail in audited(services)]
    assert details[0] == {"sourceSystemId": source.id, "type": "READ", "triggerType": "IMMEDIATE"}
    assert details[4] == {"enabled": True, "intervalMinutes": 45}
    assert details[5] == {"enabled": False, "intervalMinutes": 45}


def test_scheduled_jobs_are_started_by_the_schedule(services: Services) -> None:
    lid_source(services)
    admin = Context.administrator("test")
    saved_at = datetime(2026, 12, 4, 8, tzinfo=UTC)
    services.schedules.put(admin, "LID", {"intervalMinutes": 45}, now=saved_at)
    due = services.schedules.get(admin, "LID").next_run
    assert due is not None
    [job_id] = services.schedules.tick(datetime.fromisoformat(due.replace("Z", "+00:00")))
    job = services.jobs.get(admin, job_id)
    assert (
        (job.trigger, job.triggered_by)
        == (Trigger.REPEAT, SCHEDULER)
        == (
            Trigger.REPEAT,
            "Schedule",
        )
    )
    worker = Context.system("worker")
    claimed = services.jobs.claim(worker, "w", job_id)
    assert claimed is not None
    assert asyncio.run(services.jobs.run(worker, claimed)) is JobStatus.SUCCESS
    started = [(a, kind, actor) for a, kind, actor, *_ in audited(services)]
    assert started[-1] == ("job.start", "system", "Schedule")


def test_the_presenters_give_the_admin_api_json(services: Services) -> None:
    lid_source(services)
    admin = Context.administrator("test")
    job = services.jobs.start(admin, "LID")
    found, total = services.jobs.all(admin)
    assert present.jobs(found, total) == {"items": [job.to_dict()], "total": 1}
    assert present.jobs(found, total, offset=0, limit=20) == {
        "items": [job.to_dict()],
        "total": 1,
        "offset": 0,
        "limit": 20,
    }
    assert present.public_job(job) == {"jobId": job.id, **job.to_dict()}
    assert present.public_started(job) == {"jobId": job.id, "status": "Queued"}
    assert present.entity_logs([], 0) == {"items": [], "total": 0}


def test_resets_and_confirmations_are_audited(services: Services, tmp_path: Path) -> None:
    source = lid_source(services)
    admin = Context.administrator("cli:grace")
    assert services.jobs.reset_system(admin, "LID") == 0
    with pytest.raises(InputError, match="user or group"):
        services.jobs.confirm_deletions(admin, "LID", entity_type="users")
    with pytest.raises(InputError, match='"confirm": true'):
        services.jobs.reset_tenant(admin, confirm=False)
    assert services.jobs.reset_tenant(admin, confirm=True) == 1
    assert [(a, actor, target, detail) for a, _, actor, target, detail in audited(services)] == [
        ("system.reset", "cli:grace", source.id, {"removedRecords": 0}),
        ("tenant.reset", "cli:grace", "default", {"deletedSystems": 1}),
    ]


def test_confirmed_deletions_are_audited(services: Services, tmp_path: Path) -> None:
    source = lid_source(services)
    target = csv_target(services, source.id, tmp_path)
    services.jobs.operational(Context.system("test")).hold(
        Hold(
            source_id=source.id,
            target_id=target.id,
            entity_type="user",
            reason=Hold.EMPTY,
            count=3,
            read=0,
            last_full_count=3,
            threshold=None,
            job_id="a-job",
            held="2026-12-04T08:00:00Z",
        )
    )
    [confirmed] = services.jobs.confirm_deletions(Context.administrator("ada"), "LID")
    assert confirmed.confirmed_by == "ada"
    [entry] = audited(services)
    assert entry == (
        "deletions.confirm",
        "administrator",
        "ada",
        source.id,
        {"holds": [{"targetSystemId": target.id, "entityType": "user", "heldBack": 3}]},
    )
