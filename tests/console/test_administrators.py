"""The console's administrators: list and search, create (a generated password shown once),
role, password reset, second factor reset, ending sessions, deletion; viewers only look."""

from __future__ import annotations

import re

import pyotp

from provisor.admins.model import Role
from provisor.context import Context
from tests.console.conftest import PASSWORD, Console, csrf_of, sign_in

CTX = Context.system("test")


def _password(page: str) -> str:
    found = re.search(r'id="admin-password" class="secret">([^<]+)<', page)
    assert found, page
    return found.group(1)


def test_create_with_a_generated_or_typed_password(console: Console) -> None:
    browser = console.signed_in("ada")
    form = browser.get("/console/administrators/new")
    assert form.status_code == 200
    assert 'value="viewer"' in form.text and 'value="operator"' not in form.text
    token = csrf_of(form)
    made = browser.post(
        "/console/administrators/new", data={"csrf": token, "name": "bob", "role": "viewer"}
    )
    assert made.status_code == 200, made.text
    password = _password(made.text)
    assert console.services.administrators.authenticate("default", "bob", password).role is (
        Role.VIEWER
    )
    assert password not in browser.get("/console/administrators/bob").text
    typed = browser.post(
        "/console/administrators/new",
        data={"csrf": token, "name": "cy", "role": "administrator", "password": "a typed password"},
    )
    assert typed.status_code == 303
    assert typed.headers["location"] == "/console/administrators/cy"
    assert console.services.administrators.authenticate("default", "cy", "a typed password")

    short = browser.post(
        "/console/administrators/new",
        data={"csrf": token, "name": "dee", "role": "viewer", "password": "short"},
    )
    assert short.status_code == 400 and "12 characters" in short.text
    assert 'value="dee"' in short.text
    operator = browser.post(
        "/console/administrators/new", data={"csrf": token, "name": "op", "role": "operator"}
    )
    assert operator.status_code == 400 and "installation" in operator.text
    clash = browser.post(
        "/console/administrators/new", data={"csrf": token, "name": "BOB", "role": "viewer"}
    )
    assert clash.status_code == 409 and "already exists" in clash.text


def test_list_is_paged_and_searched(console: Console) -> None:
    for i in range(60):
        console.administrator(f"person-{i:02d}", Role.VIEWER)
    browser = console.signed_in("ada")
    first = browser.get("/console/administrators")
    assert first.status_code == 200
    assert "ada" in first.text and "(you)" in first.text
    assert "person-48" in first.text and "person-49" not in first.text
    following = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert following
    second = browser.get(following.group(1).replace("&amp;", "&"))
    assert "person-49" in second.text and "person-59" in second.text
    assert 'rel="next"' not in second.text
    found = browser.get("/console/administrators?search=N-5")
    assert "person-55" in found.text and "person-01" not in found.text


def test_role_password_second_factor_sessions_delete(console: Console) -> None:
    browser = console.signed_in("ada")
    console.administrator("bob")
    other = console.browser()
    sign_in(other, "bob", PASSWORD)
    assert other.get("/console/").status_code == 200
    ctx = Context(console.services.administrators.show(CTX, "bob").actor(), "default")
    secret, _ = console.services.administrators.begin_second_factor(ctx)
    console.services.administrators.confirm_second_factor(ctx, pyotp.TOTP(secret).now())

    page = browser.get("/console/administrators/bob")
    assert page.status_code == 200 and "Reset second factor" in page.text
    token = csrf_of(page)
    role = browser.post("/console/administrators/bob/role", data={"csrf": token, "role": "viewer"})
    assert role.status_code == 303
    assert console.services.administrators.show(CTX, "bob").role is Role.VIEWER
    assert other.get("/console/").status_code == 303  # signed out by the change

    reset = browser.post("/console/administrators/bob/password", data={"csrf": token})
    assert reset.status_code == 200
    assert console.services.administrators.authenticate("default", "bob", _password(reset.text))
    typed = browser.post(
        "/console/administrators/bob/password",
        data={"csrf": token, "password": "another long one"},
    )
    assert typed.status_code == 303
    short = browser.post(
        "/console/administrators/bob/password", data={"csrf": token, "password": "tiny"}
    )
    assert short.status_code == 400 and "12 characters" in short.text

    factor = browser.post("/console/administrators/bob/second-factor/reset", data={"csrf": token})
    assert factor.status_code == 303
    assert not console.services.administrators.show(CTX, "bob").totp_enabled

    sign_in(other, "bob", "another long one")
    assert other.get("/console/").status_code == 200
    ended = browser.post("/console/administrators/bob/sessions/end", data={"csrf": token})
    assert ended.status_code == 303
    assert other.get("/console/").status_code == 303

    gone = browser.post("/console/administrators/bob/delete", data={"csrf": token})
    assert gone.status_code == 303
    assert browser.get("/console/administrators/bob").status_code == 404
    last = browser.post("/console/administrators/ada/delete", data={"csrf": token})
    assert last.status_code == 400 and "last administrator" in last.text
    kept = browser.post("/console/administrators/ada/role", data={"csrf": token, "role": "viewer"})
    assert kept.status_code == 400 and "last administrator" in kept.text
    assert browser.get("/console/administrators/ghost").status_code == 404


def test_names_with_odd_characters(console: Console) -> None:
    console.administrator("r&d team/eu")
    browser = console.signed_in("ada")
    listing = browser.get("/console/administrators")
    assert "r&amp;d team/eu" in listing.text
    page = browser.get("/console/administrators/r%26d%20team/eu")
    assert page.status_code == 200, page.text
    ended = browser.post(
        "/console/administrators/r%26d%20team/eu/sessions/end", data={"csrf": csrf_of(page)}
    )
    assert ended.status_code == 303
    assert ended.headers["location"] == "/console/administrators/r%26d%20team/eu"


def test_a_viewer_sees_no_actions_and_is_refused(console: Console) -> None:
    console.administrator("bob")
    viewer = console.signed_in("vera", Role.VIEWER)
    listing = viewer.get("/console/administrators")
    assert listing.status_code == 200 and "bob" in listing.text
    assert "New administrator" not in listing.text
    page = viewer.get("/console/administrators/bob")
    assert page.status_code == 200 and "Change role" not in page.text
    token = csrf_of(page)
    for action in ("role", "password", "second-factor/reset", "sessions/end", "delete"):
        refused = viewer.post(
            f"/console/administrators/bob/{action}", data={"csrf": token, "role": "viewer"}
        )
        assert refused.status_code == 403, action
    made = viewer.post(
        "/console/administrators/new", data={"csrf": token, "name": "eve", "role": "administrator"}
    )
    assert made.status_code == 403
    assert console.services.administrators.show(CTX, "bob").role is Role.ADMINISTRATOR
