"""Console fixtures: the whole application in process, administrators, signed-in browsers
(httpx clients keeping cookies)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from provisor.admins.model import Role
from provisor.asgi import create_app
from provisor.context import Context
from provisor.runtime import Services
from provisor.settings import Settings

ORIGIN = "http://console.test"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
FORM_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    """The application and a way to sign people in."""

    services: Services
    app: object

    def browser(self, origin: str = ORIGIN) -> TestClient:
        """A browser of the console at ``origin`` (in process; it keeps cookies)."""
        return TestClient(
            self.app,  # type: ignore[arg-type]
            base_url=origin,
            headers={"origin": origin},
            follow_redirects=False,
        )

    def administrator(self, name: str, role: Role = Role.ADMINISTRATOR) -> None:
        self.services.administrators.create(Context.system("test"), name, role, PASSWORD)

    def signed_in(self, name: str, role: Role = Role.ADMINISTRATOR) -> TestClient:
        """A browser signed in as a new administrator ``name`` with ``role``."""
        self.administrator(name, role)
        browser = self.browser()
        sign_in(browser, name, PASSWORD)
        return browser


def sign_in(browser: TestClient, name: str, password: str, path: str = "") -> Any:
    page = browser.get(f"{path}/console/login")
    token = FORM_CSRF.search(page.text)
    assert token, page.text
    return browser.post(
        f"{path}/console/login",
        data={"name": name, "password": password, "csrf": token.group(1)},
    )


def csrf_of(page: Any) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


@pytest.fixture
def console(sqlite_settings: Settings) -> Iterator[Console]:
    services = Services.open(sqlite_settings)
    try:
        yield Console(services, create_app(sqlite_settings, services))
    finally:
        services.close()
