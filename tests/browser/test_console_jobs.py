"""Jobs in the console: SIMULATE then READ with live progress, a failed entity with its name and
reason, a viewer's forged start refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from provisor.systems.model import System
from provisor.types import EntityType
from tests.browser.conftest import BrowserLog, assert_accessible
from tests.browser.console import (
    CONSOLE,
    csrf_token,
    initial_administrator,
    new_administrator,
    sign_in,
    start_job,
    watch_job,
)
from tests.conftest import CTX, LiveServer
from tests.helpers import USER
from tests.jobs.conftest import add_users, lid_source, system

# The CSV target's transformation with one mandatory mapping more: a user without a display name
# fails.
NAME_REQUIRED = {
    "user": {
        "mappings": [
            {"sourcePath": "$", "targetPath": "$"},
            {"type": "remove", "targetPath": "$.schemas"},
            {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
            {"sourcePath": "$.displayName", "targetPath": "$.displayName"},
        ]
    }
}


def csv_target(live: LiveServer, source: System, folder: Path) -> System:
    target = system(
        live.services,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": str(folder / "users.csv")},
    )
    live.services.systems.save_transformation(
        CTX, target.id, "write", json.dumps(NAME_REQUIRED), description="names required"
    )
    return target


def test_simulate_then_read_and_a_failed_entity(
    page: Page, live: LiveServer, tmp_path: Path
) -> None:
    add_users(live.services, "ada", "bob")
    live.services.directory.create(  # no display name: fails on the CSV target
        CTX, EntityType.USER, {"schemas": [USER], "userName": "carol"}, "/scim"
    )
    source = lid_source(live.services, name="People")
    csv_target(live, source, tmp_path)
    sign_in(page, initial_administrator(live), CONSOLE + "/jobs")
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    assert_accessible(page)

    start_job(page, "People", "SIMULATE")
    watch_job(page, live, "Finished with Error")
    assert_accessible(page)
    assert not (tmp_path / "users.csv").exists(), "SIMULATE writes nothing"

    page.get_by_role("link", name="Jobs", exact=True).click()
    start_job(page, "People", "READ")
    watch_job(page, live, "Finished with Error")
    cells = page.locator("table.job-figures tr", has_text="CSV").locator("td")
    expect(cells).to_have_text(
        ["CSV", "target", "user", "0", "2", "0", "0", "0", "0", "1", re.compile(".")]
    )
    assert_accessible(page)

    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    failed = page.locator("#entity-logs tbody tr")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("carol")
    expect(failed).to_contain_text("Mandatory value missing")
    assert_accessible(page)
    written = (tmp_path / "users.csv").read_text()
    assert "ada" in written and "bob" in written and "carol" not in written


def test_a_viewer_sees_jobs_but_cannot_start_one(
    page: Page, live: LiveServer, browser_log: BrowserLog
) -> None:
    source = lid_source(live.services, name="People")
    sign_in(page, new_administrator(live, Role.VIEWER), CONSOLE + "/jobs")
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()
    expect(page.get_by_role("button", name="Start job")).to_have_count(0)
    assert_accessible(page)

    browser_log.allow(r"status of 403")
    status = page.evaluate(
        """async ([token, source]) => {
            const body = new URLSearchParams({csrf: token, source: source, type: "READ"});
            const answer = await fetch("/console/jobs/start", {method: "POST", body});
            return answer.status;
        }""",
        [csrf_token(page), source.id],
    )
    assert status == 403
    assert live.services.jobs.all(CTX)[1] == 0, "no job was started"
