"""The SQL the jobs, home and proxy activity pages added, on PostgreSQL too: the last job of
each source with its statistics, held deletions awaiting confirmation, trigger filters, the
proxy activity log (row-level security included)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provisor.asgi import create_app
from provisor.context import Context
from provisor.jobs.model import JobType, Trigger
from provisor.proxy.activity import ProxyActivity, ProxyCall
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.timestamps import now
from provisor.types import EntityType
from tests.console.conftest import Console
from tests.console.test_jobs_pages import csv_target
from tests.jobs.conftest import add_users, lid_source, run_job

CTX = Context.system("tests")


@pytest.fixture
def pg_console(pg_database: str, tmp_path: Path) -> Iterator[Console]:
    settings = Settings(data_dir=tmp_path, database_url=pg_database)
    services = Services.open(settings)
    try:
        yield Console(services, create_app(settings, services))
    finally:
        services.close()


def test_home_and_jobs_on_postgresql(pg_console: Console, tmp_path: Path) -> None:
    console = pg_console
    ids = add_users(console.services, "ada", "bob")
    source = lid_source(console.services)
    other = lid_source(console.services, name="Other")
    csv_target(console, source, tmp_path)
    run_job(console.services, "LID")
    run_job(console.services, "Other", JobType.SIMULATE)
    for user_id in ids.values():
        console.services.directory.delete(CTX, EntityType.USER, user_id)
    held = run_job(console.services, "LID")
    latest = console.services.jobs.latest(CTX)
    assert {j.source_id: j.id for j in latest}[source.id] == held.id
    assert {j.source_id for j in latest} == {source.id, other.id}
    assert any(s.counts.failed == 2 for j in latest for s in j.statistics)
    holds = console.services.jobs.unconfirmed_holds(CTX)
    assert [(h.target_name, h.count) for h in holds] == [("CSV", 2)]
    assert console.services.jobs.all(CTX, trigger=Trigger.REPEAT)[1] == 0
    browser = console.signed_in("ada")
    home = browser.get("/console/")
    assert home.status_code == 200, home.text
    assert "deletions of users in CSV" in home.text
    page = browser.get(f"/console/jobs/{held.id}", params={"state": "failed"})
    assert ids["ada"] in page.text


def test_proxy_activity_on_postgresql(pg_console: Console) -> None:
    activity = ProxyActivity(pg_console.services.db)
    for tenant in ("default", "other"):
        activity.record(
            ProxyCall(
                tenant=tenant,
                time=now(),
                system_id="s",
                operation="get",
                endpoint="Users",
                entity_id="e",
                status=404,
                duration_us=12,
                request_id="r",
                caller="c",
            )
        )
    activity.close()
    calls, more = pg_console.services.proxy_activity.search(CTX, failed=True, entity_id="e")
    assert [c.tenant for c in calls] == ["default"] and not more
