"""Issue 14, item 2: a full read that returns nothing (or far fewer entities than the last
complete one) deletes nothing, on every run, until an administrator confirms, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from provisor.context import Context
from provisor.jobs.model import Job, JobStatus, JobType, ReadMode, Trigger
from provisor.runtime import Services
from provisor.systems.model import SystemChanges
from provisor.types import EntityType
from tests.conftest import CLI, LiveServer
from tests.helpers import group_body
from tests.jobs.conftest import add_users, lid_source, run_job, stats
from tests.jobs.test_pipeline import csv_target, rows

CTX = Context.system("tests")  # the service calls a test makes directly

PROBLEM = "application/problem+json"


def _forget(services: Services, ids: dict[str, str], *names: str) -> None:
    for name in names:
        services.directory.delete(CTX, EntityType.USER, ids[name])


def _held(services: Services, job: Job, count: int, entity_type: str = "user") -> None:
    """The job deleted nothing, marked what it held back failed and said so."""
    assert job.status is JobStatus.FINISHED_WITH_ERROR
    assert stats(job, "CSV", entity_type).get("deleted", 0) == 0
    assert stats(job, "CSV", entity_type)["failed"] == count
    plural = "" if count == 1 else "s"
    assert f"{count} {entity_type}{plural} not deleted in CSV: " in (job.outcome or "")
    assert "provisor jobs confirm-deletions LID" in (job.outcome or "")
    logs, _ = services.jobs.entity_logs(Context.administrator("test"), job.id, ["failed"])
    failed = [e for e in logs if e.entity_type == entity_type]
    assert len(failed) == count and "until an administrator confirms" in (failed[0].reason or "")


def test_an_empty_read_is_held_on_every_run_until_confirmed(
    services: Services, tmp_path: Path
) -> None:
    ids = add_users(services, "e1", "e2", "e3")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    assert run_job(services, "LID").status is JobStatus.SUCCESS
    _forget(services, ids, "e1", "e2", "e3")
    for _ in range(3):  # the old guard held once, then its empty read became the baseline
        held = run_job(services, "LID")
        _held(services, held, 3)
        assert "returned no users where the last complete one returned 3" in (held.outcome or "")
        assert len(rows(tmp_path / "users.csv")) == 3
        assert (
            services.jobs.operational(Context.system("test"))
            .source_state(source.id, "user")
            .last_full_count
            == 3
        )
    [hold] = services.jobs.deletion_holds(Context.administrator("test"), "LID")
    assert (hold.count, hold.reason, hold.job_id, hold.confirmed) == (3, "empty", held.id, None)

    [confirmed] = services.jobs.confirm_deletions(Context.administrator("ada"), "LID")
    assert confirmed.confirmed_by == "ada" and confirmed.confirmed is not None
    released = run_job(services, "LID")
    assert released.status is JobStatus.SUCCESS, released.outcome
    assert stats(released, "CSV")["deleted"] == 3
    assert f"3 users deleted in CSV, as ada confirmed on {confirmed.confirmed}" in (
        released.outcome or ""
    )
    assert rows(tmp_path / "users.csv") == {}
    assert services.jobs.deletion_holds(Context.administrator("test"), "LID") == [], (
        "the confirmation is spent"
    )
    after = run_job(services, "LID")
    assert after.status is JobStatus.SUCCESS and "No users to delete in CSV." in (
        after.outcome or ""
    )


def test_an_empty_read_is_held_when_only_delta_reads_saw_the_entities(
    services: Services, tmp_path: Path
) -> None:
    first = add_users(services, "d0")
    source = lid_source(services, **{"ips.delta.read": "enabled"})
    csv_target(services, source.id, tmp_path)
    run_job(services, "LID")
    _forget(services, first, "d0")
    _held(services, run_job(services, "LID", JobType.RESYNC), 1)
    services.jobs.confirm_deletions(Context.administrator("ada"), "LID")
    emptied = run_job(services, "LID", JobType.RESYNC)  # the last complete read: 0 users
    assert stats(emptied, "CSV")["deleted"] == 1
    ids = add_users(services, "d1", "d2")
    delta = run_job(services, "LID")
    assert delta.read_mode is ReadMode.DELTA and stats(delta, "CSV")["created"] == 2
    _forget(services, ids, "d1", "d2")
    _held(services, run_job(services, "LID", JobType.RESYNC), 2)
    assert len(rows(tmp_path / "users.csv")) == 2


def test_the_threshold_holds_until_confirmed_once(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, *(f"t{i}" for i in range(6)))
    source = lid_source(services)
    csv_target(services, source.id, tmp_path, **{"ips.delete.threshold.users": "1"})
    run_job(services, "LID")
    _forget(services, ids, "t0", "t1")
    for _ in range(2):
        held = run_job(services, "LID")
        _held(services, held, 2)
        assert (
            "2 users to delete exceed ips.delete.threshold.users=1 (the full read returned "
            "4 users, the last complete one 6)" in (held.outcome or "")
        ), "relative to the last complete read, not to the held one"
    services.jobs.confirm_deletions(Context.administrator("ada"), "LID")
    _forget(services, ids, "t2")  # more to delete than was confirmed: held again
    grown = run_job(services, "LID")
    _held(services, grown, 3)
    assert "ada confirmed 2 on " in (grown.outcome or "")
    services.jobs.confirm_deletions(Context.administrator("grace"), "LID")

    simulated = run_job(services, "LID", JobType.SIMULATE)
    assert "3 users would be deleted in CSV, as grace confirmed" in (simulated.outcome or "")
    assert (
        services.jobs.deletion_holds(Context.administrator("test"), "LID")[0].confirmed_by
        == "grace"
    ), "a simulation looks"

    released = run_job(services, "LID")
    assert stats(released, "CSV")["deleted"] == 3 and released.status is JobStatus.SUCCESS
    assert set(rows(tmp_path / "users.csv")) == {"t3", "t4", "t5"}
    _forget(services, ids, "t3", "t4")
    again = run_job(services, "LID")  # the confirmation was spent: the threshold holds again
    _held(services, again, 2)
    assert "confirmed" not in (again.outcome or "")
    services.jobs.reset_system(Context.administrator("test"), "CSV")
    assert services.jobs.deletion_holds(Context.administrator("test"), "LID") == [], (
        "a reset forgets the holds"
    )


def test_holds_are_per_entity_type_and_the_empty_read_switch_releases(
    services: Services, tmp_path: Path
) -> None:
    ids = add_users(services, "g1", "g2")
    group = services.directory.create(
        CTX, EntityType.GROUP, group_body("Crew", list(ids.values())), "/scim"
    )
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    run_job(services, "LID")
    services.directory.delete(CTX, EntityType.GROUP, group.id)
    _forget(services, ids, "g1", "g2")
    held = run_job(services, "LID")
    _held(services, held, 2, "user")
    _held(services, held, 1, "group")
    assert [
        (h.entity_type, h.count)
        for h in services.jobs.deletion_holds(Context.administrator("test"), "LID")
    ] == [
        ("user", 2),
        ("group", 1),
    ]
    [confirmed] = services.jobs.confirm_deletions(
        Context.administrator("ada"), "LID", entity_type="group"
    )
    assert confirmed.entity_type == "group"
    groups_only = run_job(services, "LID")
    assert stats(groups_only, "CSV", "group")["deleted"] == 1
    _held(services, groups_only, 2, "user")

    services.systems.update(
        Context.administrator("t"),
        "LID",
        SystemChanges(properties={"ips.delete.after.empty.read": "true"}),
    )
    switched = run_job(services, "LID")
    assert stats(switched, "CSV")["deleted"] == 2 and switched.status is JobStatus.SUCCESS
    assert services.jobs.deletion_holds(Context.administrator("test"), "LID") == [], (
        "nothing is held any more"
    )


def test_scheduled_runs_are_held_too(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, "s1", "s2")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    run_job(services, "LID")
    _forget(services, ids, "s1", "s2")
    scheduler = services.schedules
    admin = Context.administrator("test")
    scheduler.put(admin, "LID", {"intervalMinutes": 45}, now=datetime(2026, 12, 4, 8, tzinfo=UTC))
    due = scheduler.get(admin, "LID").next_run
    assert due is not None
    tick = datetime.fromisoformat(due.replace("Z", "+00:00"))
    for _ in range(2):
        [job_id] = scheduler.tick(tick)
        claimed = services.jobs.claim(Context.system("worker"), "scheduler", job_id)
        assert claimed is not None and claimed.trigger is Trigger.REPEAT
        asyncio.run(services.jobs.run(Context.system("worker"), claimed))
        _held(services, services.jobs.get(Context.administrator("test"), job_id), 2)
        tick += timedelta(minutes=45)
    assert len(rows(tmp_path / "users.csv")) == 2


def test_holds_through_the_admin_api(server: LiveServer, tmp_path: Path) -> None:
    services = server.services
    ids = add_users(services, "a1", "a2")
    source = lid_source(services)
    target = csv_target(services, source.id, tmp_path)
    run_job(services, "LID")
    with server.client(path="/api/v1") as api:
        nothing = api.post(f"/systems/{source.id}/confirm-deletions")
        assert nothing.status_code == 409 and nothing.headers["content-type"] == PROBLEM
        assert "No deletions of LID are held back" in nothing.json()["detail"]
        _forget(services, ids, "a1", "a2")
        held = run_job(services, "LID")
        [hold] = api.get(f"/systems/{source.id}/deletion-holds").json()["items"]
        assert hold["heldBack"] == 2 and hold["jobId"] == held.id
        assert (hold["reason"], hold["lastFullCount"], hold["targetSystemName"]) == (
            "empty",
            2,
            "CSV",
        )
        assert (
            f"/api/v1/systems/{source.id}/confirm-deletions"
            in api.get(f"/jobs/{held.id}").json()["executionOutcome"]
        )
        bad = api.post(f"/systems/{source.id}/confirm-deletions", json={"entityType": "role"})
        assert bad.status_code == 400 and bad.headers["content-type"] == PROBLEM
        none = api.post(f"/systems/{source.id}/confirm-deletions", json={"entityType": "group"})
        assert none.status_code == 409
        assert api.post("/systems/nope/confirm-deletions").status_code == 404
        done = api.post(f"/systems/{source.id}/confirm-deletions", json={"target": "CSV"})
        assert done.status_code == 200, done.text
        [confirmed] = done.json()["confirmed"]
        assert confirmed["confirmedBy"] == "initial-admin"
        assert confirmed["targetSystemId"] == target.id
        assert stats(run_job(services, "LID"), "CSV")["deleted"] == 2
        assert api.get(f"/systems/{source.id}/deletion-holds").json() == {"items": []}
    with server.client(auth=server.new_client("manage_users"), path="/api/v1") as other:
        assert other.post(f"/systems/{source.id}/confirm-deletions").status_code == 403


def test_holds_through_the_cli(cli: CLI) -> None:
    services = cli.server.services
    ids = add_users(services, "c1", "c2")
    source = lid_source(services)
    csv_target(services, source.id, cli.cwd)
    run_job(services, "LID")
    _forget(services, ids, "c1", "c2")
    run_job(services, "LID")
    listed = cli.invoke("jobs", "holds", "LID").stdout
    assert "empty read" in listed and "no" in listed
    wrong = cli.invoke("jobs", "confirm-deletions", "LID", "--entity-type", "role", check=False)
    assert wrong.returncode == 2 and "'user', 'group'" in wrong.stderr
    unconfirmed = cli.invoke("jobs", "confirm-deletions", "LID", check=False)
    assert unconfirmed.returncode == 1 and "--yes" in " ".join(unconfirmed.stderr.split())
    assert "empty read" in unconfirmed.stdout, "it shows what it would confirm"
    confirmed = cli.invoke("jobs", "confirm-deletions", "LID", "--yes").stdout
    assert "The next full read deletes them" in confirmed
    done = run_job(services, "LID")
    assert done.status is JobStatus.SUCCESS and "as initial-admin" in (done.outcome or "")
    again = cli.invoke("jobs", "confirm-deletions", "LID", "--yes", check=False)
    assert again.returncode == 1 and "No deletions of LID are held back" in again.stderr
