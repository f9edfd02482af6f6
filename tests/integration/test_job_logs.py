"""Job log exports (spec §3.9, §3.11): the zip, the tenant admin API, the admin API, the CLI."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest

from provisor.context import Context
from provisor.errors import InputError, NotFoundError
from provisor.jobs.export import HIDDEN_CONTENT, export_zip
from provisor.jobs.model import Action, Counts, Job, JobStatus
from provisor.jobs.ports import EntityLog
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.systems.model import NewSystem
from provisor.timestamps import parse_datetime
from tests.conftest import CLI, LiveServer

PROBLEM = "application/problem+json"
PUBLIC = ("/ips/service/publicapi/v1", "/ips/publicapi/v1")
KIND_FILES = {
    "failed": "ips_jobErrorLogs",
    "skipped": "ips_jobSkippedEntitiesLogs",
    "created": "ips_jobCreatedEntitiesLogs",
    "updated": "ips_jobUpdatedEntitiesLogs",
    "deleted": "ips_jobDeletedEntitiesLogs",
}
STARTED = "2024-03-05T06:58:00.000001Z"
ENDED = "2024-03-05T07:08:09.123456Z"
STAMP = "20240305_070809"


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    opened = Services.open(settings)
    migrate.upgrade(opened.db)
    try:
        yield opened
    finally:
        opened.close()


def make_job(services: Services, *, logs: list[EntityLog] | None = None) -> Job:
    """A finished job of a local source ``LID`` with an entity log of every kind."""
    system = services.systems.create(
        Context.administrator("t"),
        NewSystem.model_validate(
            {"name": "LID", "type": "local-identity-directory", "role": "source"}
        ),
    )
    job = services.jobs.start(Context.administrator("t"), "LID")
    src = (system.id, "LID")
    hr = ("hr-1", "HR Target")
    entries = logs
    if entries is None:
        entries = [
            EntityLog("failed", "user", *src, "u-1", "emails is missing", None),
            EntityLog("failed", "user", *hr, "u-1", "HTTP 409: uniqueness", '{\n  "a": 1\n}'),
            EntityLog("failed", "user", *src, "u-2", "no userName", None),
            EntityLog("skipped", "user", *src, "u-3", "inactive", None),
            EntityLog("created", "user", *hr, "u-4", None, '{"userName": "ü-4"}'),
            EntityLog("updated", "group", *hr, "g-1", None, None),
            EntityLog("deleted", "user", *hr, "u-5", None, None),
            EntityLog("failed", "user", *src, "u-2", "no userName", None),  # a restart's twin
        ]
    source_counts, target_counts = Counts(), Counts()
    source_counts.add(Action.READ, 5)
    source_counts.add(Action.FAILED, 2)
    source_counts.add(Action.SKIPPED)
    target_counts.add(Action.CREATED)
    target_counts.add(Action.FAILED)
    services.jobs.journal_of(Context.system("test")).commit(
        job.id,
        entries,
        {
            ("user", system.id, "LID", "source"): source_counts,
            ("user", "hr-1", "HR Target", "target"): target_counts,
        },
        status=JobStatus.FINISHED_WITH_ERROR,
        started=STARTED,
        ended=ENDED,
        error="2 entities failed.",
        outcome="Read 5 users.",
    )
    return services.jobs.get(Context.administrator("test"), job.id)


def unzip(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def blocks(text: str) -> dict[str, str]:
    """Entity id -> its part of an entity log file."""
    parts = text.split("\n==== Entity ID: ")[1:]
    return {part.split(" ====\n", 1)[0]: part for part in parts}


# -- the zip ------------------------------------------------------------------------------------


def test_common_log_holds_the_job_a_summary_and_every_kind(services: Services) -> None:
    job = make_job(services)
    name, data = services.jobs.export(Context.administrator("test"), job.id, "commonLog")
    assert name == f"ips_jobLogs_{job.id}_{STAMP}.zip"
    files = unzip(data)
    assert sorted(files) == sorted(
        ["job.json", "summary.txt", *(f"{p}_{job.id}_{STAMP}.txt" for p in KIND_FILES.values())]
    )
    document = json.loads(files["job.json"])
    assert document["id"] == job.id
    assert document["status"] == "Finished with Error"
    assert document["errorMessage"] == "2 entities failed."
    assert document["executionOutcome"] == "Read 5 users."
    assert document["entityLogs"] == {
        "failed": 3,
        "skipped": 1,
        "created": 1,
        "updated": 1,
        "deleted": 1,
    }
    source = next(r for r in document["statistics"] if r["role"] == "source")
    assert source["numberRead"] == 5 and "read" not in source
    assert source["failed"] == 2 and source["skipped"] == 1

    summary = files["summary.txt"]
    assert f"Job ID: {job.id}" in summary
    assert "Source System: LID" in summary
    assert "Status: Finished with Error" in summary
    assert "Error Message: 2 entities failed." in summary
    assert "Job Execution Outcome: Read 5 users." in summary
    assert "user · LID (Read): Read 5, Skipped 1, Failed 2" in summary
    assert "user · HR Target (Write): Created 1, Updated 0, Deleted 0, Skipped 0, Failed 1" in (
        summary
    )
    assert f"Failed entities: 3 in ips_jobErrorLogs_{job.id}_{STAMP}.txt" in summary

    errors = files[f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]
    assert "Error Message: 2 entities failed." in errors
    created = blocks(files[f"ips_jobCreatedEntitiesLogs_{job.id}_{STAMP}.txt"])
    assert list(created) == ["u-4"]
    assert '{"userName": "ü-4"}' in created["u-4"]
    assert list(blocks(files[f"ips_jobUpdatedEntitiesLogs_{job.id}_{STAMP}.txt"])) == ["g-1"]
    assert list(blocks(files[f"ips_jobDeletedEntitiesLogs_{job.id}_{STAMP}.txt"])) == ["u-5"]


def test_failed_entities_are_grouped_by_entity_one_block_per_system(services: Services) -> None:
    job = make_job(services)
    name, data = services.jobs.export(Context.administrator("test"), job.id, "failedEntitiesLog")
    assert name == f"ips_jobErrorLogs_{job.id}_{STAMP}.zip"
    files = unzip(data)
    assert list(files) == [f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]
    text = files[f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]
    assert text.startswith(f"Failed entities of the job {job.id}\nJob ID: {job.id}\n")
    assert "Error Message" not in text  # that is allErrorsLog
    assert "Entities: 2 (3 records)" in text
    found = blocks(text)
    assert list(found) == ["u-1", "u-2"]
    u1 = found["u-1"]
    assert u1.count("-- System: ") == 2
    assert "-- System: LID (" in u1 and "-- System: HR Target (hr-1)" in u1
    assert "Reason: emails is missing" in u1 and "Reason: HTTP 409: uniqueness" in u1
    assert f"Content:\n      {HIDDEN_CONTENT}\n" in u1  # not traced
    assert 'Content:\n      {\n        "a": 1\n      }\n' in u1  # traced, kept as written
    assert found["u-2"].count("Reason: no userName") == 1  # a restart's duplicate is dropped


@pytest.mark.parametrize(
    ("log_type", "action"),
    [
        ("skippedEntitiesLog", "skipped"),
        ("createdEntitiesLog", "created"),
        ("updatedEntitiesLog", "updated"),
        ("deletedEntitiesLog", "deleted"),
    ],
)
def test_each_kind_has_its_sap_file(services: Services, log_type: str, action: str) -> None:
    job = make_job(services)
    expected = {
        "skipped": ["u-3"],
        "created": ["u-4"],
        "updated": ["g-1"],
        "deleted": ["u-5"],
    }[action]
    prefix = KIND_FILES[action]
    name, data = services.jobs.export(Context.administrator("test"), job.id, log_type)
    assert name == f"{prefix}_{job.id}_{STAMP}.zip"
    files = unzip(data)
    assert list(files) == [f"{prefix}_{job.id}_{STAMP}.txt"]
    text = files[f"{prefix}_{job.id}_{STAMP}.txt"]
    assert list(blocks(text)) == expected
    assert f"Action: {action}\n" in text
    assert "Action: failed" not in text


def test_all_errors_are_the_failed_entities_and_the_job_error(services: Services) -> None:
    job = make_job(services)
    name, data = services.jobs.export(Context.administrator("test"), job.id, "allErrorsLog")
    assert name == f"ips_jobAllErrorLogs_{job.id}_{STAMP}.zip"
    files = unzip(data)
    assert list(files) == [f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]
    text = files[f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]
    assert "Error Message: 2 entities failed.\n" in text
    assert list(blocks(text)) == ["u-1", "u-2"]


def test_an_empty_kind_says_so(services: Services) -> None:
    job = make_job(services, logs=[])
    files = unzip(
        services.jobs.export(Context.administrator("test"), job.id, "deletedEntitiesLog")[1]
    )
    (text,) = files.values()
    assert "Entities: 0 (0 records)\n\nNo entities.\n" in text


def test_unknown_log_type_and_job(services: Services) -> None:
    job = make_job(services)
    with pytest.raises(InputError) as caught:
        services.jobs.export(Context.administrator("test"), job.id, "auditLog")
    assert "commonLog" in caught.value.message and "allErrorsLog" in caught.value.message
    with pytest.raises(InputError):
        export_zip(job, [], "failedEntitiesLogs")
    with pytest.raises(NotFoundError):
        services.jobs.export(Context.administrator("test"), "no-such-job", "commonLog")


def test_a_job_not_ended_is_named_by_its_start(services: Services) -> None:
    job = make_job(services)
    name, _ = export_zip(replace(job, ended=None), [], "commonLog")
    assert name == f"ips_jobLogs_{job.id}_20240305_065800.zip"
    name, _ = export_zip(replace(job, ended=None, started=None), [], "commonLog")
    stamp = parse_datetime(job.created).strftime("%Y%m%d_%H%M%S")
    assert name == f"ips_jobLogs_{job.id}_{stamp}.zip"


def test_a_hundred_thousand_failed_entities(services: Services) -> None:
    system_id = "src-1"
    logs = [
        EntityLog("failed", "user", system_id, "LID", f"user-{i:06d}", "emails is missing", None)
        for i in range(100_000)
    ]
    job = make_job(services, logs=logs)
    _, data = services.jobs.export(Context.administrator("test"), job.id, "failedEntitiesLog")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        (info,) = archive.infolist()
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.compress_size < info.file_size / 5
        with archive.open(info) as entry:
            lines = sum(1 for line in entry if line.startswith(b"==== Entity ID: "))
    assert lines == 100_000


# -- over HTTP ----------------------------------------------------------------------------------


def test_tenant_admin_api_exports_job_logs(server: LiveServer) -> None:
    job = make_job(server.services)
    with server.client(auth=server.new_client("tenant_admin_api")) as client:
        for prefix in PUBLIC:
            answer = client.get(f"{prefix}/jobLogs/{job.id}", params={"action": "export"})
            assert answer.status_code == 200, answer.text
            assert answer.headers["content-type"] == "application/zip"
            assert answer.headers["content-disposition"] == (
                f'attachment; filename="ips_jobLogs_{job.id}_{STAMP}.zip"'
            )
            assert "job.json" in unzip(answer.content)
        answer = client.get(
            f"{PUBLIC[0]}/jobLogs/{job.id}",
            params={"action": "export", "logType": "failedEntitiesLog"},
        )
        assert answer.status_code == 200
        assert list(unzip(answer.content)) == [f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]

        for params in (
            {},
            {"action": "delete"},
            {"action": "export", "logType": "auditLog"},
        ):
            bad = client.get(f"{PUBLIC[0]}/jobLogs/{job.id}", params=params)
            assert bad.status_code == 400, params
            assert bad.headers["content-type"] == PROBLEM
            assert bad.json()["status"] == 400
        assert "logType" in bad.json()["detail"]
        missing = client.get(f"{PUBLIC[0]}/jobLogs/no-such-job", params={"action": "export"})
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM

    with server.client(auth=server.new_client("manage_users")) as client:
        denied = client.get(f"{PUBLIC[0]}/jobLogs/{job.id}", params={"action": "export"})
        assert denied.status_code == 403
        assert denied.headers["content-type"] == PROBLEM
    anonymous = httpx.get(f"{server.url}{PUBLIC[0]}/jobLogs/{job.id}?action=export")
    assert anonymous.status_code == 401


def test_admin_api_exports_job_logs(server: LiveServer) -> None:
    job = make_job(server.services)
    with server.client(path="/api/v1") as api:
        answer = api.get(f"/jobs/{job.id}/logs", params={"logType": "allErrorsLog"})
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/zip"
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="ips_jobAllErrorLogs_{job.id}_{STAMP}.zip"'
        )
        assert "Error Message: 2 entities failed." in next(iter(unzip(answer.content).values()))
        assert "job.json" in unzip(api.get(f"/jobs/{job.id}/logs").content)
        assert api.get(f"/jobs/{job.id}/logs", params={"logType": "x"}).status_code == 400
        assert api.get("/jobs/no-such-job/logs").status_code == 404
    with server.client(auth=server.new_client("tenant_admin_api"), path="/api/v1") as api:
        assert api.get(f"/jobs/{job.id}/logs").status_code == 403


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_exports_job_logs(cli: CLI) -> None:
    job = make_job(cli.server.services)
    target = cli.cwd / "errors.zip"
    done = cli.invoke("jobs", "export", job.id, "--log-type", "allErrorsLog", "-o", str(target))
    assert str(target) in done.stdout.replace("\n", "")
    assert list(unzip(target.read_bytes())) == [f"ips_jobErrorLogs_{job.id}_{STAMP}.txt"]

    cli.invoke("jobs", "export", job.id)  # SAP's file name, in the current folder
    written = cli.cwd / f"ips_jobLogs_{job.id}_{STAMP}.zip"
    assert "job.json" in unzip(written.read_bytes())

    bad = cli.invoke("jobs", "export", job.id, "--log-type", "nope", check=False)
    assert bad.returncode == 2 and "allErrorsLog" in bad.stderr
    unknown = cli.invoke("jobs", "export", "no-such-job", check=False)
    assert unknown.returncode == 1 and "no-such-job" in unknown.stderr
