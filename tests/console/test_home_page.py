"""The home page: the last job of each source, the failed entities of the last jobs by name,
running jobs with their progress, held-back deletions, incomplete systems, expiring
certificates."""

from __future__ import annotations

from pathlib import Path

from provisor.context import Context
from provisor.jobs.model import JobStatus
from provisor.types import EntityType
from tests.console.conftest import Console
from tests.console.test_jobs_pages import csv_target
from tests.jobs.conftest import add_users, lid_source, run_job, system

CTX = Context.system("tests")


def test_last_jobs_failures_and_holds(console: Console, tmp_path: Path) -> None:
    ids = add_users(console.services, "ada", "bob")
    source = lid_source(console.services)
    csv_target(console, source, tmp_path)
    run_job(console.services, "LID")
    for user_id in ids.values():
        console.services.directory.delete(CTX, EntityType.USER, user_id)
    held = run_job(console.services, "LID")  # an empty full read: its deletions are held
    browser = console.signed_in("ada")
    page = browser.get("/console/")
    assert page.status_code == 200, page.text
    assert 'id="last-jobs"' in page.text
    assert f"/console/jobs/{held.id}?state=failed" in page.text
    failed = page.text.split('id="h-failed"')[1]
    assert ids["ada"] in failed and ids["bob"] in failed and "CSV" in failed  # names unknown
    attention = page.text.split('id="h-attention"')[1].split("</section>")[0]
    assert "deletions of users in CSV" in attention
    if held.status is JobStatus.FINISHED_WITH_ERROR:
        assert f"/console/jobs/{held.id}" in attention


def test_incomplete_systems_need_attention(console: Console) -> None:
    system(console.services, name="Half", type="scim", role="target", properties={})
    page = console.signed_in("ada").get("/console/")
    attention = page.text.split('id="h-attention"')[1].split("</section>")[0]
    assert "Half" in attention


def test_running_jobs_show_their_live_progress(console: Console) -> None:
    source = lid_source(console.services)
    job = console.services.jobs.start(CTX, source.id)
    claimed = console.services.jobs.claim(Context.system("worker"), "test", job.id)
    assert claimed is not None
    page = console.signed_in("ada").get("/console/")
    assert f'id="progress-{job.id}"' in page.text
    assert 'hx-trigger="every 1s"' in page.text


def test_an_empty_tenant_has_a_calm_home(console: Console) -> None:
    page = console.signed_in("ada").get("/console/")
    assert page.status_code == 200
    assert "No job is running." in page.text
    assert "No job has run yet." in page.text
    assert "Needs your attention" not in page.text


def test_certificates_expiring_within_30_days_need_attention(console: Console) -> None:
    source = lid_source(console.services)
    soon = system(console.services, name="Soon", type="scim", role="target", properties={})
    later = system(console.services, name="Later", type="scim", role="target", properties={})
    console.services.certificates.generate_outbound(CTX, soon.id, validity_days=20)
    console.services.certificates.generate_outbound(CTX, later.id, validity_days=200)
    expiring = console.services.certificates.expiring(CTX, days=30)
    assert [c.system_name for c in expiring] == ["Soon"]
    page = console.signed_in("ada").get("/console/")
    attention = page.text.split('id="h-attention"')[1].split("</section>")[0]
    assert "The certificate of Soon" in attention and "expires in 20 days" in attention
    assert "Later" not in attention.split("certificate")[-1]
    assert source.name not in attention
