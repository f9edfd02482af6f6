"""The jobs pages: history with filters and paging, starting, a job's live progress, its
entities with names and reasons, a simulation's diff, stopping, exporting, deletion holds."""

from __future__ import annotations

import asyncio
import io
import re
import zipfile
from pathlib import Path

import pytest

from provisor.admins.model import Role
from provisor.console.pages import jobs as jobs_pages
from provisor.context import Context
from provisor.jobs.model import JobStatus, JobType
from provisor.systems.model import System
from provisor.types import EntityType
from tests.console.conftest import Console, csrf_of
from tests.helpers import user_body
from tests.jobs.conftest import add_users, lid_source, run_job, system

CTX = Context.system("tests")


def csv_target(console: Console, source: System, folder: Path) -> System:
    return system(
        console.services,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": str(folder / "users.csv")},
    )


def test_history_start_and_progress(console: Console, tmp_path: Path) -> None:
    add_users(console.services, "ada", "bob")
    source = lid_source(console.services)
    csv_target(console, source, tmp_path)
    browser = console.signed_in("ada")
    page = browser.get("/console/jobs")
    assert page.status_code == 200, page.text
    assert 'id="start-job"' in page.text
    started = browser.post(
        "/console/jobs/start", data={"csrf": csrf_of(page), "source": source.id, "type": "READ"}
    )
    assert started.status_code == 303, started.text
    job_id = started.headers["location"].rsplit("/", 1)[1]
    job = console.services.jobs.get(CTX, job_id)
    assert job.status is JobStatus.QUEUED
    fragment = browser.get(f"/console/jobs/{job_id}/progress")
    assert 'hx-trigger="every 1s"' in fragment.text
    assert "<html" not in fragment.text
    claimed = console.services.jobs.claim(Context.system("worker"), "test", job_id)
    assert claimed is not None
    asyncio.run(console.services.jobs.run(Context.system("worker"), claimed))
    ended = browser.get(f"/console/jobs/{job_id}/progress")
    assert "hx-trigger" not in ended.text
    assert "Success" in ended.text
    page = browser.get(f"/console/jobs/{job_id}")
    assert page.status_code == 200, page.text
    assert "ada" in page.text and "bob" in page.text
    listing = browser.get("/console/jobs", params={"source": source.id, "state": "Success"})
    assert job_id in listing.text
    assert browser.get("/console/jobs", params={"state": "Nope"}).status_code == 400


def test_simulate_shows_each_entity_diff_and_exports(console: Console, tmp_path: Path) -> None:
    ids = add_users(console.services, "ada")
    source = lid_source(console.services)
    csv_target(console, source, tmp_path)
    run_job(console.services, "LID")
    console.services.directory.replace(
        CTX, EntityType.USER, ids["ada"], user_body("ada", displayName="Countess"), "/scim"
    )
    simulated = run_job(console.services, "LID", JobType.SIMULATE)
    browser = console.signed_in("ada")
    page = browser.get(f"/console/jobs/{simulated.id}", params={"state": "updated"})
    assert page.status_code == 200, page.text
    assert "Changes (simulated)" in page.text
    assert "displayName" in page.text and "Countess" in page.text
    download = browser.get(
        f"/console/jobs/{simulated.id}/export", params={"logType": "updatedEntitiesLog"}
    )
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    bad = browser.get(f"/console/jobs/{simulated.id}/export", params={"logType": "nope"})
    assert bad.status_code == 400
    assert "<h1>That did not work</h1>" in bad.text


def test_entities_are_paged_and_filtered_by_state_and_system(
    console: Console, tmp_path: Path
) -> None:
    add_users(console.services, *(f"user{i:02}" for i in range(7)))
    source = lid_source(console.services)
    target = csv_target(console, source, tmp_path)
    job = run_job(console.services, "LID")
    browser = console.signed_in("ada")
    page = browser.get(
        f"/console/jobs/{job.id}", params={"state": "created", "system": target.id, "limit": 3}
    )
    assert page.status_code == 200
    assert len(re.findall(r"badge-created\">created", page.text)) == 3
    assert "1\u20133 of 7" in page.text
    assert 'rel="next"' in page.text
    none = browser.get(f"/console/jobs/{job.id}", params={"state": "failed"})
    assert "No entity matches" in none.text
    assert browser.get(f"/console/jobs/{job.id}", params={"system": "other"}).status_code == 400
    assert browser.get(f"/console/jobs/{job.id}", params={"limit": "100000"}).status_code == 400
    assert browser.get("/console/jobs/no-such-job").status_code == 404


def test_stop_a_queued_job_and_bad_starts(console: Console) -> None:
    source = lid_source(console.services)
    browser = console.signed_in("ada")
    token = csrf_of(browser.get("/console/jobs"))
    started = browser.post("/console/jobs/start", data={"csrf": token, "source": source.id})
    job_id = started.headers["location"].rsplit("/", 1)[1]
    page = browser.get(f"/console/jobs/{job_id}")
    assert "Stop job" in page.text
    stopped = browser.post(f"/console/jobs/{job_id}/stop", data={"csrf": token})
    assert stopped.status_code == 303
    assert console.services.jobs.get(CTX, job_id).status is JobStatus.MANUALLY_TERMINATED
    again = browser.post(f"/console/jobs/{job_id}/stop", data={"csrf": token})
    assert again.status_code == 409
    empty = browser.post("/console/jobs/start", data={"csrf": token, "source": ""})
    assert empty.status_code == 400
    assert "Choose the source system" in empty.text
    wrong = browser.post(
        "/console/jobs/start", data={"csrf": token, "source": source.id, "type": "DELETE"}
    )
    assert wrong.status_code == 400
    assert "job type" in wrong.text
    browser.post("/console/jobs/start", data={"csrf": token, "source": source.id})
    twice = browser.post("/console/jobs/start", data={"csrf": token, "source": source.id})
    assert twice.status_code == 409
    assert "already waiting" in twice.text


def test_a_viewer_sees_jobs_and_changes_nothing(console: Console) -> None:
    source = lid_source(console.services)
    queued = console.services.jobs.start(CTX, source.id)
    viewer = console.signed_in("vic", Role.VIEWER)
    page = viewer.get("/console/jobs")
    assert page.status_code == 200
    assert 'id="start-job"' not in page.text
    job_page = viewer.get(f"/console/jobs/{queued.id}")
    assert "Stop job" not in job_page.text
    token = csrf_of(page)
    refused = viewer.post("/console/jobs/start", data={"csrf": token, "source": source.id})
    assert refused.status_code == 403
    assert console.services.jobs.all(CTX)[1] == 1
    assert viewer.post(f"/console/jobs/{queued.id}/stop", data={"csrf": token}).status_code == 403
    assert console.services.jobs.get(CTX, queued.id).status is JobStatus.QUEUED


def test_held_deletions_are_shown_and_confirmed(console: Console, tmp_path: Path) -> None:
    ids = add_users(console.services, "ada", "bob")
    source = lid_source(console.services)
    csv_target(console, source, tmp_path)
    run_job(console.services, "LID")
    for user_id in ids.values():
        console.services.directory.delete(CTX, EntityType.USER, user_id)
    held = run_job(console.services, "LID")
    assert console.services.jobs.deletion_holds(CTX, source.id)
    browser = console.signed_in("ada")
    page = browser.get("/console/jobs", params={"source": source.id})
    assert "Deletions held back" in page.text
    job_page = browser.get(f"/console/jobs/{held.id}")
    assert "Confirm 2 deletions" in job_page.text
    done = browser.post(
        f"/console/jobs/sources/{source.id}/confirm-deletions",
        data={"csrf": csrf_of(page), "back": f"/jobs/{held.id}"},
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/console/jobs/{held.id}"
    assert all(h.confirmed for h in console.services.jobs.deletion_holds(CTX, source.id))


def test_history_is_paged_and_filtered_by_trigger_and_type(console: Console) -> None:
    source = lid_source(console.services)
    for _ in range(4):
        job = console.services.jobs.start(CTX, source.id)
        console.services.jobs.stop(CTX, job.id)
    browser = console.signed_in("ada")
    page = browser.get("/console/jobs", params={"limit": 3, "trigger": "IMMEDIATE"})
    assert "1\u20133 of 4" in page.text
    assert page.text.count("/console/jobs/") >= 3
    assert "No job matches" in browser.get("/console/jobs", params={"trigger": "REPEAT"}).text
    assert "1\u20134 of 4" in browser.get("/console/jobs", params={"type": "READ"}).text
    assert browser.get("/console/jobs", params={"offset": "x"}).status_code == 400


def test_a_big_job_is_counted_up_to_a_bound(
    console: Console, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs_pages, "COUNTED", 5)  # a job logging millions is not counted whole
    add_users(console.services, *(f"user{i:02}" for i in range(7)))
    source = lid_source(console.services)
    target = csv_target(console, source, tmp_path)
    job = run_job(console.services, "LID")
    browser = console.signed_in("ada")
    page = browser.get(f"/console/jobs/{job.id}", params={"system": target.id, "limit": 3})
    assert "5+ (the first 5 are paged" in page.text
    assert "1\u20133 of 5" in page.text
    last = browser.get(f"/console/jobs/{job.id}", params={"offset": 100, "limit": 3})
    assert last.status_code == 200
    assert "3\u20135 of 5" in last.text  # a deep offset is brought back within the bound
    _, exact = console.services.jobs.entity_logs(CTX, job.id, system_id=target.id)
    assert exact == 7
