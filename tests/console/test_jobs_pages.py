"""The jobs pages: history with filters and paging, starting, a job's live progress, its
entities with names and reasons, a simulation's diff, stopping, exporting, deletion holds."""

from __future__ import annotations

from pathlib import Path

from provisor.context import Context
from provisor.jobs.model import JobStatus
from provisor.systems.model import System
from tests.console.conftest import Console, csrf_of
from tests.jobs.conftest import add_users, lid_source, system

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
    import asyncio

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
