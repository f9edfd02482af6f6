"""Every console page, as an administrator and as a viewer: it opens without an error, under
its CSP, with no serious accessibility violation (axe); screenshots of each for docs/console."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from provisor.types import EntityType
from tests.browser.conftest import assert_accessible, screenshot
from tests.browser.console import CONSOLE, initial_administrator, new_administrator, sign_in
from tests.conftest import CTX, LiveServer
from tests.helpers import group_body
from tests.jobs.conftest import add_users, lid_source, run_job, system


def pages(live: LiveServer, folder: Path) -> dict[str, str]:
    """Some data, and the pages that show it: screenshot name -> path below /console."""
    users = add_users(live.services, "ada", "bob")
    group = live.services.directory.create(
        CTX, EntityType.GROUP, group_body("Engineers", list(users.values())), "/scim"
    )
    source = lid_source(live.services, name="People")
    target = system(
        live.services,
        name="CSV",
        type="csv",
        role="target",
        sourceSystemIds=[source.id],
        properties={"csv.user.file": str(folder / "users.csv")},
    )
    live.services.certificates.generate_outbound(CTX, target.id)
    with ThreadPoolExecutor(1) as thread:  # a loop of its own: Playwright's runs in this one
        job = thread.submit(run_job, live.services, source.id).result()
    admin = new_administrator(live, Role.VIEWER)
    client_id, _secret = live.new_client("view")
    transformation = f"/systems/{target.id}/transformations/write"
    return {
        "home": "/",
        "systems": "/systems",
        "system-source": f"/systems/{source.id}",
        "system-target": f"/systems/{target.id}",
        "transformations": f"/systems/{target.id}/transformations",
        "transformation-editor": transformation,
        "transformation-table": transformation + "/table",
        "transformation-versions": transformation + "/versions",
        "transformation-try": transformation + "/try",
        "validate": f"/systems/{source.id}/validate",
        "certificates": "/certificates",
        "system-certificates": f"/systems/{target.id}/certificates",
        "directory-users": "/directory/users",
        "directory-user": f"/directory/users/{users['ada']}",
        "directory-groups": "/directory/groups",
        "directory-group": f"/directory/groups/{group.id}",
        "directory-schemas": "/directory/schemas",
        "timeline": "/timeline?q=ada",
        "jobs": "/jobs",
        "jobs-of-source": f"/jobs?source={source.id}",
        "job-finished": f"/jobs/{job.id}",
        "schedules": "/schedules",
        "schedule": f"/schedules/{source.id}",
        "realtime": "/realtime",
        "proxy-activity": "/proxy",
        "administrators": "/administrators",
        "administrator": f"/administrators/{admin.name}",
        "clients": "/clients",
        "client": f"/clients/{client_id}",
        "account": "/account",
        "sso": "/sso",
        "audit": "/audit",
        "notifications": "/notifications",
    }


# The forms that create things: an administrator's pages.
FORMS = {
    "system-new": "/systems/new",
    "system-new-form": "/systems/new?role=target&type=csv",
    "directory-user-new": "/directory/users/new",
    "directory-group-new": "/directory/groups/new",
    "administrator-new": "/administrators/new",
    "client-new": "/clients/new",
}


@pytest.mark.parametrize("role", [Role.ADMINISTRATOR, Role.VIEWER])
def test_every_page_opens_and_is_accessible(
    page: Page, live: LiveServer, tmp_path: Path, role: Role
) -> None:
    visits = pages(live, tmp_path)
    if role is Role.ADMINISTRATOR:
        sign_in(page, initial_administrator(live))
        visits.update(FORMS)
    else:
        sign_in(page, new_administrator(live, role))
    problems = []
    for name, path in visits.items():
        answer = page.goto(CONSOLE + path)
        assert answer is not None
        if answer.status != 200:
            problems.append(f"{path}: status {answer.status}")
            continue
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        if role is Role.ADMINISTRATOR:
            screenshot(page, name)
        try:
            assert_accessible(page)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)
