"""A viewer in the console: every page to look at, no button or form to change anything, and a
forged change (with the session's own CSRF token) refused by the server."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from tests.browser.conftest import BrowserLog, assert_accessible
from tests.browser.console import CONSOLE, csrf_token, new_administrator, sign_in
from tests.conftest import CTX, LiveServer
from tests.jobs.conftest import lid_source


def test_a_viewer_is_offered_no_change_and_a_forged_one_is_refused(
    page: Page, live: LiveServer, browser_log: BrowserLog
) -> None:
    source = lid_source(live.services, name="People")
    sign_in(page, new_administrator(live, Role.VIEWER))
    expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible()
    expect(page.locator("main form")).to_have_count(0)
    expect(page.get_by_role("link", name="Add one")).to_have_count(0)
    assert_accessible(page)

    page.get_by_role("link", name="Systems", exact=True).click()
    expect(page.get_by_role("link", name="People", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="New system")).to_have_count(0)
    page.get_by_role("link", name="People", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("People")
    expect(page.locator("main form")).to_have_count(0)
    expect(page.locator("main button")).to_have_count(0)
    expect(page.locator("main input:not([readonly]):not([disabled])")).to_have_count(0)
    assert_accessible(page)

    browser_log.allow(r"status of 403")
    status, text = page.evaluate(
        """async ([token, path]) => {
            const body = new URLSearchParams({csrf: token});
            const answer = await fetch(path, {method: "POST", body});
            return [answer.status, await answer.text()];
        }""",
        [csrf_token(page), f"{CONSOLE}/systems/{source.id}/disable"],
    )
    assert status == 403
    assert "needs the permission admin" in text  # refused for the role, not for the token
    assert live.services.systems.get(CTX, source.id).enabled, "the viewer changed nothing"
