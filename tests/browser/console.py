"""What the console journeys share: administrators, signing in, the console's CSRF token."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from provisor.admins.service import INITIAL_FILE
from tests.conftest import CTX, LiveServer

CONSOLE = "/console"
SIGNED_IN = re.compile(r"/console/?$")  # the home page, where signing in leads by default


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
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def csrf_token(page: Page) -> str:
    """The session's CSRF token, as the console's script finds it."""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    assert token, "a signed-in page carries the CSRF token"
    return token


def accept_confirmations(page: Page) -> None:
    """Answer yes to every confirmation the page asks (Playwright dismisses them by default)."""
    page.on("dialog", lambda dialog: dialog.accept())
