"""What the console journeys share: administrators, signing in, the CSRF token, jobs."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from provisor.admins.service import INITIAL_FILE
from tests.conftest import CTX, LiveServer
from tests.jobs.conftest import running_jobs

CONSOLE = "/console"
SIGNED_IN = re.compile(r"/console/?$")  # the home page, where signing in leads by default
JOB_ENDS = 30_000  # ms: a job of a few users ends well within this on a loaded machine


@dataclass(frozen=True)
class Login:
    name: str
    password: str


def initial_administrator(live: LiveServer) -> Login:
    """The first administrator, as ``provisor serve`` wrote it for the operator."""
    written = json.loads((live.settings.data_dir / INITIAL_FILE).read_text())
    return Login(written["name"], written["password"])


def new_administrator(live: LiveServer, role: Role) -> Login:
    """Another administrator of the default tenant, created with the service."""
    name = f"{role.value}-{uuid.uuid4().hex[:6]}"
    password = f"pw-{uuid.uuid4().hex}"
    live.services.administrators.create(CTX, name, role, password)
    return Login(name, password)


def sign_in(page: Page, login: Login, path: str = CONSOLE) -> None:
    """Open ``path``, sign in on the page it leads to, wait for the page behind it."""
    page.goto(path)
    page.get_by_label("Name").fill(login.name)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def csrf_token(page: Page) -> str:
    """The session's CSRF token, as the console's script finds it."""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token, "a signed-in page carries the CSRF token"
    return token


def accept_confirmations(page: Page) -> None:
    """Answer yes to every confirmation the page asks (Playwright dismisses them by default)."""
    page.on("dialog", lambda dialog: dialog.accept())


def start_job(page: Page, source: str, kind: str) -> None:
    """Start a job on the jobs page; its page opens."""
    page.get_by_label("Source system").select_option(label=source)
    page.get_by_label("Job", exact=True).select_option(kind)
    page.get_by_role("button", name="Start job").click()
    expect(page.get_by_role("status")).to_contain_text(f"{kind} job of {source} started")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{kind} job of {source}")


def watch_job(page: Page, live: LiveServer, ends: str) -> None:
    """The job waits in the queue (no runner yet) while its page polls; a runner then runs it,
    and the same document, never reloaded, shows it end in the state ``ends``."""
    expect(page.locator(".job-state")).to_contain_text("Queued")
    expect(page.locator(".job-progress")).to_have_attribute("hx-trigger", "every 1s")
    page.evaluate("() => { window.sameDocument = true; }")
    with running_jobs(live.services):
        expect(page.locator(".job-state")).to_contain_text(ends, timeout=JOB_ENDS)
    expect(page.locator(".job-progress")).not_to_have_attribute("hx-trigger", "every 1s")
    assert page.evaluate("() => window.sameDocument") is True, "the page was reloaded"
