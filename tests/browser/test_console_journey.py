"""An administrator's first day in the console: a source and two targets (one tested), a
transformation with a mistake marked then fixed, SIMULATE then READ followed live, a failed
entity, two certificates, signing out."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.sync_api import Locator, Page, expect

from provisor.types import EntityType
from tests.browser.conftest import assert_accessible, screenshot
from tests.browser.console import (
    accept_confirmations,
    initial_administrator,
    sign_in,
    sign_out,
    start_job,
    watch_job,
)
from tests.conftest import CTX, LiveServer
from tests.connectors.scim_peers import scim2_server
from tests.helpers import USER
from tests.jobs.conftest import add_users

# The CSV target's user mappings, and one more that is mandatory: a user without a display name
# fails on that target.
USER_MAPPINGS = """{
  "user": {
    "mappings": [
      {"sourcePath": "$", "targetPath": "$"},
      {"type": "remove", "targetPath": "$.schemas"},
      {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
      {"sourcePath": "$.displayName", "targetPath": "$.displayName"%s}
    ]
  }
}"""


def test_first_day(page: Page, live: LiveServer, tmp_path: Path) -> None:
    accept_confirmations(page)
    add_users(live.services, "ada", "bob")
    live.services.directory.create(  # no display name
        CTX, EntityType.USER, {"schemas": [USER], "userName": "carol"}, "/scim"
    )
    sign_in(page, initial_administrator(live))

    page.get_by_role("link", name="Add one").first.click()  # the source systems' card
    _new_system(page, "source", "Local Identity Directory", "People")
    screenshot(page, "system-created")
    assert_accessible(page)
    with scim2_server() as peer:
        page.get_by_role("link", name="Systems", exact=True).click()
        page.get_by_role("link", name="New system").click()
        _new_system(
            page, "target", "CSV File", "CSV", {"csv.user.file": str(tmp_path / "users.csv")}
        )
        page.get_by_role("link", name="Systems", exact=True).click()
        page.get_by_role("link", name="New system").click()
        _new_system(
            page,
            "target",
            "SCIM System",
            "Peer",
            {"URL": peer.url},
            {"Authentication": "NoAuthentication"},
        )
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("#test-result")).to_contain_text("Connection works")
        page.get_by_role("link", name="Systems", exact=True).click()
        assert_accessible(page)
        page.get_by_role("link", name="CSV", exact=True).first.click()
        _edit_transformation(page)
        _run_jobs(page, live)
        listed = httpx.get(peer.url + "/Users").json()
        assert {u["userName"] for u in listed["Resources"]} == {"ada", "bob", "carol"}
    written = (tmp_path / "users.csv").read_text()
    assert "ada" in written and "bob" in written and "carol" not in written
    _certificate(page)
    sign_out(page)


def _run_jobs(page: Page, live: LiveServer) -> None:
    """SIMULATE, then READ: both followed live; the READ's failed entity, named, with its
    reason."""
    page.get_by_role("link", name="Jobs", exact=True).click()
    start_job(page, "People", "SIMULATE")
    watch_job(page, live, "Finished with Error")
    screenshot(page, "job-simulate")
    assert_accessible(page)
    page.get_by_role("link", name="Jobs", exact=True).click()
    start_job(page, "People", "READ")
    watch_job(page, live, "Finished with Error")
    screenshot(page, "job")
    page.get_by_label("State").select_option("failed")
    page.get_by_role("button", name="Filter").click()
    failed = page.locator("#entity-logs > tbody > tr")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text("carol")
    expect(failed).to_contain_text("Mandatory value missing")
    assert_accessible(page)


def _paste_document(page: Page, text: str) -> None:
    """Replace the editor's text as a person pastes a document: select all, paste."""
    editor = page.get_by_label("Document", exact=True)  # the editor's text (contenteditable)
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    editor.evaluate(PASTE, text)


PASTE = """(element, text) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    element.dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true}));
}"""


def _certificate(page: Page) -> None:
    """Two outbound certificates of the SCIM target; the second one activated."""
    page.get_by_role("link", name="Systems", exact=True).click()
    page.get_by_role("link", name="Peer", exact=True).first.click()
    page.get_by_role("link", name="Outbound certificates").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Certificates of Peer")
    page.get_by_role("button", name="Generate", exact=True).click()
    rows = page.locator("#outbound > tbody > tr")
    expect(rows).to_have_count(1)
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(rows).to_have_count(2)
    second = rows.filter(has_text="inactive")
    fingerprint = second.locator(".fingerprint").inner_text()
    second.get_by_role("button", name="Activate").click()
    expect(rows.filter(has_text=fingerprint)).to_contain_text("active")
    expect(rows.filter(has_text=fingerprint)).not_to_contain_text("inactive")
    screenshot(page, "system-certificates-activated")
    assert_accessible(page)


def _edit_transformation(page: Page) -> None:
    """A mistake is marked where it is while typing; the fixed document is saved."""
    page.get_by_role("link", name="Transformations").click()
    page.get_by_role("link", name="write", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Write transformation of CSV")
    _paste_document(page, USER_MAPPINGS % ', "functions": [{"type": "noSuchFunction"}]')
    problems = page.locator("#problems")
    expect(problems).to_contain_text(re.compile(r"line 7, column \d+: .*noSuchFunction"))
    expect(page.locator(".CodeMirror-lint-mark-error").first).to_be_visible()
    screenshot(page, "transformation-editor-problem")
    assert_accessible(page)
    _paste_document(page, USER_MAPPINGS % "")
    expect(problems).to_have_text("No problem: this document can be saved.")
    expect(page.locator(".CodeMirror-lint-mark-error")).to_have_count(0)
    page.get_by_label("Description of the change").fill("display names are required")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("version 2")


def _new_system(
    page: Page,
    role: str,
    kind: str,
    name: str,
    properties: dict[str, str] | None = None,
    choices: dict[str, str] | None = None,
) -> None:
    """Create a system on the new system pages: role and type, then its form."""
    expect(page.get_by_role("heading", name="New system", level=1)).to_be_visible()
    page.get_by_label(role.capitalize(), exact=True).check()
    page.get_by_label(kind, exact=True).check()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"New {role} system: {kind}")
    page.get_by_label("Name").fill(name)
    if role == "target":
        page.get_by_label("People", exact=True).check()
    for key, value in (properties or {}).items():
        _property(page, key).fill(value)
    for key, value in (choices or {}).items():
        _property(page, key).select_option(value)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)


def _property(page: Page, key: str) -> Locator:
    """The form control of a system's property (its label is the key, maybe "(required)")."""
    return page.get_by_label(re.compile(rf"^{re.escape(key)}( \(required\))?$"))
