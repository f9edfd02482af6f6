"""Every console route, walked: without a session it answers nothing but the way to sign in;
a change without the session's CSRF token is refused before it is read; a viewer can change
nothing (the services refuse, whatever the page offers)."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute

from provisor.admins.model import Role
from provisor.console.app import routers
from provisor.console.rendering import ConsoleRoute
from provisor.context import Context
from tests.console.conftest import PASSWORD, Console, csrf_of, sign_in

# POST routes a viewer may use: they change nothing of the tenant's, or only the viewer's own
# account (signing out, their password and second factor), or they only compute (checking or
# trying a transformation, validating a sample).
VIEWER_MAY = {
    "/console/logout",
    "/console/logout/everywhere",
}
VIEWER_MAY_PATTERNS = (
    re.compile(r"^/console/account(/.*)?$"),
    re.compile(r"^/console/systems/\{[a-z_]+\}/transformations/[^/]+/(check|try)$"),
    re.compile(r"^/console/systems/\{[a-z_]+\}/validate$"),
)


def console_routes() -> list[tuple[str, str]]:
    found = []
    every = [route for router in routers() for route in router.routes]
    for route in every:
        if isinstance(route, APIRoute) and isinstance(route, ConsoleRoute) and not route.public:
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    found.append((method, route.path))
    assert len(found) >= 3
    return found


def filled(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_without_a_session_every_route_leads_to_sign_in(console: Console) -> None:
    browser = console.browser()
    for method, path in console_routes():
        answer = browser.request(method, filled(path), data={"csrf": "x"})
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert "/console/login" in answer.headers["location"], (method, path)


def test_a_change_without_the_csrf_token_is_refused(console: Console) -> None:
    browser = console.signed_in("ada")
    for method, path in console_routes():
        if method == "GET":
            continue
        answer = browser.request(method, filled(path), data={"name": "x"})
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "CSRF" in answer.text, (method, path)


def test_a_viewer_changes_nothing(console: Console) -> None:
    console.administrator("ada")
    viewer = console.signed_in("vera", Role.VIEWER)
    token = csrf_of(viewer.get("/console/"))
    for method, path in console_routes():
        if method == "GET" or path in VIEWER_MAY:
            continue
        if any(pattern.match(path) for pattern in VIEWER_MAY_PATTERNS):
            continue
        answer = viewer.request(method, filled(path), data={"csrf": token})
        assert answer.status_code in (400, 403, 404), (method, path, answer.status_code)
    assert viewer.get("/console/").status_code == 200  # still signed in, nothing broke


@pytest.mark.parametrize("prefix", ["", "/t/other"])
def test_a_session_is_its_tenants_only(console: Console, prefix: str) -> None:
    ctx = Context.system("test", tenant="*")
    console.services.tenants.create(Context(ctx.actor, "_installation"), "other")
    inside = Context.system("test", tenant="other")
    console.services.administrators.create(inside, "ada", Role.ADMINISTRATOR, "p" * 12)
    console.administrator("ada")
    browser = console.browser()
    signed = sign_in(browser, "ada", PASSWORD if not prefix else "p" * 12, prefix)
    assert signed.status_code == 303, signed.text
    token = browser.cookies.get("provisor_console")
    assert token
    other = "/t/other" if not prefix else ""
    stranger = console.browser()
    stranger.cookies.set("provisor_console", token)
    answer = stranger.get(f"{other}/console/")
    assert answer.status_code == 303  # the other tenant knows no such session


def test_an_unknown_console_path_is_a_page(console: Console) -> None:
    browser = console.signed_in("ada")
    for path in ("/console/no/such/page", "/operator/console/nothing"):
        answer = browser.get(path)
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert "There is no such page." in answer.text


def test_a_viewer_is_not_offered_creation_forms(console: Console) -> None:
    console.administrator("ada")
    viewer = console.signed_in("vera", Role.VIEWER)
    for path in (
        "/console/systems/new",
        "/console/directory/users/new",
        "/console/directory/groups/new",
        "/console/administrators/new",
        "/console/clients/new",
    ):
        answer = viewer.get(path)
        assert answer.status_code == 403, path
        assert "a viewer changes nothing" in answer.text, path
