"""Jobs end to end: the Local Identity Directory to a CSV file and to another directory,
with the worked example of spec §3.3, deletion rules, conflicts, simulation and restarts."""

from __future__ import annotations

import asyncio
import csv
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisor.context import Context
from provisor.errors import ConflictError, InvalidTransformationError
from provisor.jobs.model import Job, JobStatus, JobType, ReadMode, Trigger
from provisor.jobs.runner import Runner
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems.model import SystemChanges
from provisor.types import EntityType
from tests.conftest import LiveServer, serve
from tests.helpers import group_body, patch, user_body
from tests.jobs.conftest import add_users, lid_source, remote_scim_target, run_job, stats, system

CTX = Context.system("tests")  # the service calls a test makes directly


def csv_target(services: Services, source_id: str, folder: Path, **properties: str) -> Any:
    return system(
        services,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source_id],
        properties={
            "csv.user.file": str(folder / "users.csv"),
            "csv.group.file": str(folder / "groups.csv"),
            **properties,
        },
    )


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return {row["userName"]: row for row in csv.DictReader(handle)}


def test_the_worked_example_of_the_spec(services: Services, tmp_path: Path) -> None:
    """A, B, C, D provisioned; then C updated, D deleted, E added (spec §3.3)."""
    ids = add_users(services, "a", "b", "c", "d")
    source = lid_source(services, **{"ips.delta.read": "enabled"})
    csv_target(services, source.id, tmp_path)
    first = run_job(services, "LID")
    assert first.status is JobStatus.SUCCESS, first
    assert first.read_mode is ReadMode.FULL
    assert stats(first, "CSV")["created"] == 4
    assert set(rows(tmp_path / "users.csv")) == {"a", "b", "c", "d"}

    services.directory.replace(
        CTX, EntityType.USER, ids["c"], user_body("c", displayName="Boss"), "/scim"
    )
    services.directory.delete(CTX, EntityType.USER, ids["d"])
    add_users(services, "e")

    delta = run_job(services, "LID")  # delta enabled: a delta read never deletes
    assert delta.read_mode is ReadMode.DELTA
    assert {k: stats(delta, "CSV")[k] for k in ("created", "updated", "deleted")} == {
        "created": 1,
        "updated": 1,
        "deleted": 0,
    }
    assert "delta read never deletes" in (delta.outcome or "")
    assert rows(tmp_path / "users.csv")["c"]["displayName"] == "Boss"

    resync = run_job(services, "LID", JobType.RESYNC)
    assert resync.read_mode is ReadMode.FULL
    counted = stats(resync, "CSV")
    assert (counted["created"], counted["updated"], counted["deleted"]) == (0, 4, 1)
    assert set(rows(tmp_path / "users.csv")) == {"a", "b", "c", "e"}

    unchanged = run_job(services, "LID", JobType.RESYNC)
    assert stats(unchanged, "CSV")["updated"] == 4, "a resync rewrites everything"
    services.systems.update(
        Context.administrator("t"),
        "LID",
        SystemChanges(properties={"ips.delta.read": "disabled"}),
    )
    quiet = run_job(services, "LID")
    assert quiet.status is JobStatus.SUCCESS and quiet.read_mode is ReadMode.FULL
    assert stats(quiet, "CSV")["unchanged"] == 4
    assert sum(stats(quiet, "CSV")[k] for k in ("created", "updated", "deleted")) == 0


def test_groups_carry_resolved_members(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, "m1", "m2", "m3")
    services.directory.create(
        CTX, EntityType.GROUP, group_body("Sales", list(ids.values())), "/scim"
    )
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    job = run_job(services, "LID")
    assert job.status is JobStatus.SUCCESS, job.error
    users = {r["id"]: r["userName"] for r in rows(tmp_path / "users.csv").values()}
    with (tmp_path / "groups.csv").open() as handle:
        group = next(csv.DictReader(handle))
    assert sorted(users[m] for m in group["members"].split("|")) == ["m1", "m2", "m3"]


def test_a_delta_read_sees_a_membership_only_change(services: Services, tmp_path: Path) -> None:
    """Adding a user to a group changes only the group's row in SQL, yet the user's groups:
    the next delta read must carry the user to the target."""
    ids = add_users(services, "in", "out")
    group = services.directory.create(
        CTX, EntityType.GROUP, group_body("Sales", [ids["in"]]), "/scim"
    )
    source = lid_source(services, **{"ips.delta.read": "enabled"})
    csv_target(services, source.id, tmp_path)
    first = run_job(services, "LID")
    assert first.status is JobStatus.SUCCESS and first.read_mode is ReadMode.FULL, first
    assert rows(tmp_path / "users.csv")["out"]["groups[0].display"] == ""

    add = {"op": "add", "path": "members", "value": [{"value": ids["out"]}]}
    services.directory.patch(CTX, EntityType.GROUP, group.id, patch(add), "/scim")
    delta = run_job(services, "LID")
    assert delta.read_mode is ReadMode.DELTA
    assert stats(delta, "CSV")["updated"] == 1
    assert rows(tmp_path / "users.csv")["out"]["groups[0].display"] == "Sales"


def test_deletion_threshold_and_zero_read_guard(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, *(f"u{i}" for i in range(5)))
    source = lid_source(services)
    csv_target(services, source.id, tmp_path, **{"ips.delete.threshold.users": "2"})
    run_job(services, "LID")
    for name in ("u0", "u1", "u2"):
        services.directory.delete(CTX, EntityType.USER, ids[name])
    held = run_job(services, "LID")
    assert held.status is JobStatus.FINISHED_WITH_ERROR
    assert stats(held, "CSV")["deleted"] == 0 and stats(held, "CSV")["failed"] == 3
    assert "exceed ips.delete.threshold.users=2" in (held.outcome or "")
    assert len(rows(tmp_path / "users.csv")) == 5
    failed, _ = services.jobs.entity_logs(Context.administrator("test"), held.id, ["failed"])
    assert len(failed) == 3 and "threshold" in (failed[0].reason or "")

    services.directory.delete(CTX, EntityType.USER, ids["u3"])
    services.directory.delete(CTX, EntityType.USER, ids["u4"])
    guarded = run_job(services, "LID")  # nothing read where 5 were: delete nothing
    assert stats(guarded, "CSV").get("deleted", 0) == 0
    assert "returned no users where the last complete one returned 5" in (guarded.outcome or "")
    assert len(rows(tmp_path / "users.csv")) == 5


def test_a_job_lists_what_it_changed_by_name_without_content(
    services: Services, tmp_path: Path
) -> None:
    ids = add_users(services, "ada", "bob")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    job = run_job(services, "LID")
    logs, total = services.jobs.entity_logs(Context.administrator("t"), job.id)
    created = sorted((e.name, e.entity_id, e.content) for e in logs)
    assert total == 2
    assert [(e.action, e.system_name) for e in logs] == [("created", "CSV")] * 2
    assert created == [("ada", ids["ada"], None), ("bob", ids["bob"], None)]
    in_csv = {row["id"] for row in rows(tmp_path / "users.csv").values()}
    assert {e.target_entity_id for e in logs} == in_csv


def test_deletions_follow_the_rules(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, "keep", "gone", "filtered")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    run_job(services, "LID")
    services.directory.delete(CTX, EntityType.USER, ids["gone"])
    services.systems.update(
        Context.administrator("t"),
        "LID",
        SystemChanges(properties={"idds.user.filter": 'userName ne "filtered"'}),
    )
    job = run_job(services, "LID")
    assert stats(job, "CSV")["deleted"] == 2, job.outcome
    assert set(rows(tmp_path / "users.csv")) == {"keep"}
    deleted, _ = services.jobs.entity_logs(Context.administrator("test"), job.id, ["deleted"])
    assert sorted(e.entity_id for e in deleted) == sorted([ids["gone"], ids["filtered"]])
    assert all(e.target_entity_id and e.content is None for e in deleted)


def test_a_condition_skip_removes_from_that_target_only(services: Services, tmp_path: Path) -> None:
    add_users(services, "staff", "contractor")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    run_job(services, "LID")
    services.systems.save_transformation(
        Context.administrator("t"),
        "CSV",
        "write",
        {
            "user": {
                "condition": "$.userName != 'contractor'",
                "mappings": [
                    {"sourcePath": "$", "targetPath": "$"},
                    {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
                ],
            }
        },
        description="no contractors",
    )
    job = run_job(services, "LID")
    assert stats(job, "CSV")["skipped"] == 1 and stats(job, "CSV")["deleted"] == 1
    skipped, _ = services.jobs.entity_logs(Context.administrator("test"), job.id, ["skipped"])
    assert skipped[0].reason == "Entity condition [$.userName != 'contractor'] is not fulfilled"
    assert set(rows(tmp_path / "users.csv")) == {"staff"}


def test_simulate_writes_nothing_and_reports(services: Services, tmp_path: Path) -> None:
    ids = add_users(services, "sim1", "sim2")
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    simulated = run_job(services, "LID", JobType.SIMULATE, trace=True)
    assert simulated.status is JobStatus.SUCCESS
    assert not (tmp_path / "users.csv").exists()
    planned, _ = services.jobs.entity_logs(Context.administrator("test"), simulated.id, ["created"])
    assert len(planned) == 2
    report = json.loads(planned[0].content or "")
    assert report["trace"] and any(
        d["attribute"] == "userName" for d in json.loads(planned[0].reason or "")["diff"]
    )
    run_job(services, "LID")
    services.directory.replace(
        CTX, EntityType.USER, ids["sim1"], user_body("sim1", displayName="CTO"), "/scim"
    )
    again = run_job(services, "LID", JobType.SIMULATE)
    [update], _ = services.jobs.entity_logs(Context.administrator("test"), again.id, ["updated"])
    assert update.entity_id == ids["sim1"], "only what changed"
    diff = json.loads(update.reason or "")["diff"]
    assert diff == [{"attribute": "displayName", "before": "Barbara Jensen", "after": "CTO"}]
    assert "CTO" not in (tmp_path / "users.csv").read_text()
    assert stats(again, "CSV").get("deleted", 0) == 0, "what it read is no deletion"
    services.directory.delete(CTX, EntityType.USER, ids["sim2"])
    removal = run_job(services, "LID", JobType.SIMULATE)
    assert stats(removal, "CSV")["deleted"] == 1
    assert "1 user would be deleted in CSV." in (removal.outcome or "")
    assert set(rows(tmp_path / "users.csv")) == {"sim1", "sim2"}, "nothing written"
    assert stats(run_job(services, "LID"), "CSV")["deleted"] == 1, "operational data kept"


def test_one_job_per_source_at_a_time(services: Services) -> None:
    lid_source(services)
    first = services.jobs.start(Context.administrator("t"), "LID")
    with pytest.raises(ConflictError, match="already waiting"):
        services.jobs.start(Context.administrator("t"), "LID")
    assert services.jobs.claim(Context.system("worker"), "w", first.id) is not None
    with pytest.raises(ConflictError, match="is running"):
        services.jobs.start(Context.administrator("t"), "LID", queue_if_running=False)
    second = services.jobs.start(Context.administrator("t"), "LID")  # queued behind the running one
    assert services.jobs.claim(Context.system("worker"), "w", second.id) is None, (
        "its source is running"
    )
    stopped = services.jobs.stop(Context.administrator("test"), second.id)
    assert stopped.status is JobStatus.MANUALLY_TERMINATED


def test_a_stop_ends_the_job_at_a_page_boundary(services: Services, tmp_path: Path) -> None:
    add_users(services, *(f"s{i:03d}" for i in range(30)))
    source = lid_source(services, **{"idds.page.size": "10"})
    csv_target(services, source.id, tmp_path)
    job = services.jobs.start(Context.administrator("t"), "LID")
    services.jobs.claim(Context.system("worker"), "w", job.id)
    services.jobs.stop(Context.administrator("test"), job.id)
    asyncio.run(
        services.jobs.run(
            Context.system("worker"), services.jobs.get(Context.administrator("test"), job.id)
        )
    )
    ended = services.jobs.get(Context.administrator("test"), job.id)
    assert ended.status is JobStatus.MANUALLY_TERMINATED
    assert "stopped" in (ended.outcome or "")


def test_an_interrupted_job_continues_in_a_new_one(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_users(services, *(f"r{i:03d}" for i in range(200)))
    source = lid_source(services, **{"idds.page.size": "10"})
    csv_target(services, source.id, tmp_path, **{"csv.page.size": "5"})
    job = services.jobs.start(Context.administrator("t"), "LID")
    claimed = services.jobs.claim(Context.system("worker"), "w", job.id)
    assert claimed is not None

    # The worker dies right after its second page is committed: held there until then.
    # The next page may be under way in the target (pages flow ahead of the checkpoint):
    # whatever of it was stored counts as unchanged in the new job, never twice.
    committed, release = threading.Event(), threading.Event()
    commit = Runner.commit

    def held(runner: Runner, fields: Any, status: Any = None) -> None:
        commit(runner, fields, status)
        if runner.ledger.checkpoint.get("user") == 20 and "checkpoint" in fields:
            committed.set()
            release.wait(10)

    monkeypatch.setattr(Runner, "commit", held)

    async def interrupted(running: Job) -> None:
        task = asyncio.create_task(services.jobs.run(Context.system("worker"), running))
        assert await asyncio.to_thread(committed.wait, 30)
        task.cancel()  # the worker dies
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()

    asyncio.run(interrupted(claimed))
    monkeypatch.undo()
    assert services.jobs.get(Context.administrator("test"), job.id).status is JobStatus.RUNNING
    services.jobs.stale_seconds = 0
    [successor] = services.jobs.recover(Context.system("worker"))
    assert (
        services.jobs.get(Context.administrator("test"), job.id).status is JobStatus.PENDING_RESTART
    )
    assert successor.resumed_from == job.id and successor.chain_id == job.id
    claimed = services.jobs.claim(Context.system("worker"), "w2", successor.id)
    assert claimed is not None
    asyncio.run(services.jobs.run(Context.system("worker"), claimed))
    done = services.jobs.get(Context.administrator("test"), successor.id)
    assert done.status is JobStatus.SUCCESS, done.error
    assert stats(done, "LID")["read"] <= 190, "the committed pages are not done again"
    csv = stats(done, "CSV")
    assert csv["created"] + csv.get("unchanged", 0) == stats(done, "LID")["read"]
    assert csv.get("deleted", 0) == 0
    assert len(rows(tmp_path / "users.csv")) == 200


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[LiveServer]:
    """Another provisor, whose /scim is a SCIM target."""
    with serve(Settings(data_dir=tmp_path / "remote")) as live:
        yield live


def test_existing_entities_are_matched_and_kept(services: Services, remote: LiveServer) -> None:
    """A create that conflicts updates the existing entity found by userName; it existed
    before, so it is deleted only with ips.delete.existedbefore.entities=true."""
    add_users(services, "shared", "mine")
    with remote.client(path="/scim") as client:
        client.post("/Users", json=user_body("shared", title="theirs")).raise_for_status()
    remote_scim_target(services, lid_source(services).id, remote)
    first = run_job(services, "LID")
    assert first.status is JobStatus.SUCCESS, [
        e.reason for e in services.jobs.entity_logs(Context.administrator("test"), first.id)[0]
    ]
    assert stats(first, "Remote")["created"] == 2
    with remote.client(path="/scim") as client:
        found = client.get("/Users", params={"filter": 'userName eq "shared"'}).json()
    assert found["totalResults"] == 1 and "title" not in found["Resources"][0]
    services.directory.delete(CTX, EntityType.USER, _id(services, "shared"))
    kept = run_job(services, "LID")
    assert stats(kept, "Remote").get("deleted", 0) == 0
    assert "existed before" in (kept.outcome or "")
    services.systems.update(
        Context.administrator("t"),
        "Remote",
        SystemChanges(properties={"ips.delete.existedbefore.entities": "true"}),
    )
    removed = run_job(services, "LID")
    assert stats(removed, "Remote")["deleted"] == 1


def _q(name: str) -> Any:
    from provisor.directory.service import ListQuery

    return ListQuery(filter=f'userName eq "{name}"')


def _id(services: Services, name: str) -> str:
    found = json.loads(services.directory.search(CTX, EntityType.USER, _q(name), "/"))
    return str(found["Resources"][0]["id"])


def test_scheduled_delta_counting(services: Services, tmp_path: Path) -> None:
    add_users(services, "x")
    source = lid_source(services, **{"ips.delta.read": "enabled", "ips.full.read.force.count": "2"})
    csv_target(services, source.id, tmp_path)
    modes = []
    for _ in range(5):
        job = services.jobs.start(Context.system("Schedule"), "LID", trigger=Trigger.REPEAT)
        claimed = services.jobs.claim(Context.system("worker"), "w", job.id)
        assert claimed is not None
        asyncio.run(services.jobs.run(Context.system("worker"), claimed))
        modes.append(services.jobs.get(Context.administrator("test"), job.id).read_mode)
    assert modes == [ReadMode.FULL, ReadMode.DELTA, ReadMode.DELTA, ReadMode.FULL, ReadMode.DELTA]


def test_a_property_a_path_names_must_be_set(sqlite_services: Services, tmp_path: Path) -> None:
    """A write transformation whose target path names a property: refused on save while the
    property is not set; with it set, the column it names; once it is removed, the job fails
    to start and says which transformation and property, never a column "null"."""
    services = sqlite_services
    add_users(services, "pia")
    source = lid_source(services)
    users = tmp_path / "users.csv"
    system(
        services,
        name="HR file",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": str(users)},
    )
    write = {
        "user": {
            "mappings": [
                {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
                {"sourcePath": "$.userName", "targetPath": "$.userName"},
                {"sourcePath": "$.name.familyName", "targetPath": "$.%hr.surname.column%"},
            ]
        }
    }

    def save() -> None:
        services.systems.save_transformation(
            Context.administrator("t"),
            "HR file",
            "write",
            write,
            description="surname column",
        )

    with pytest.raises(InvalidTransformationError, match=r"hr\.surname\.column is not set"):
        save()
    services.systems.update(
        Context.administrator("t"),
        "HR file",
        SystemChanges(properties={"hr.surname.column": "surname"}),
    )
    save()
    first = run_job(services, "LID")
    assert first.status is JobStatus.SUCCESS, first.error
    with users.open() as handle:
        assert [row["surname"] for row in csv.DictReader(handle)] == ["Jensen"]

    services.systems.update(
        Context.administrator("t"),
        "HR file",
        SystemChanges(properties={"hr.surname.column": None}),
    )
    failed = run_job(services, "LID")
    assert failed.status is JobStatus.FINISHED_WITH_ERROR
    assert failed.error is not None
    assert "The job could not start" in failed.error
    assert "the write transformation of HR file" in failed.error
    assert "user.mappings[2].targetPath: the property hr.surname.column is not set" in failed.error
    assert "null" not in users.read_text().splitlines()[0]


def test_bulk_creates_go_in_several_requests_at_once(
    services: Services, remote: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page's creates for a SCIM target that takes Bulk are spread over the requests the
    target takes at once (ips.write.concurrency), each of at most the Bulk size: every user
    created once, recorded, and unchanged in the next job."""
    from provisor.connectors.scim.connector import SCIMConnector

    add_users(services, *(f"b{i:02d}" for i in range(45)))
    remote_scim_target(
        services,
        lid_source(services).id,
        remote,
        **{
            "scim.support.bulk.operation": "true",
            "scim.bulk.operations.max.count": "20",
            "ips.write.concurrency": "8",
        },
    )
    sizes: list[int] = []
    flying = [0, 0]  # now, most
    bulk = SCIMConnector._bulk

    async def counted(self: SCIMConnector, entity_type: str, entities: Any) -> Any:
        sizes.append(len(entities))
        flying[0] += 1
        flying[1] = max(flying)
        try:
            return await bulk(self, entity_type, entities)
        finally:
            flying[0] -= 1

    monkeypatch.setattr(SCIMConnector, "_bulk", counted)
    first = run_job(services, "LID")
    assert first.status is JobStatus.SUCCESS, first.error
    assert sorted(sizes) == [3] + [6] * 7  # 45 users over 8 requests, not 20 + 20 + 5
    assert flying[1] > 1, "the requests went one after the other"
    assert stats(first, "Remote")["created"] == 45
    with remote.client(path="/scim") as client:
        assert client.get("/Users", params={"count": 0}).json()["totalResults"] == 45
    again = run_job(services, "LID")
    assert stats(again, "Remote").get("unchanged") == 45
    assert stats(again, "Remote").get("created", 0) == 0
