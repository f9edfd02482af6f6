"""Signing in to the console: passwords, the second factor, sessions and their cookies,
CSRF and origin checks, timeouts, signing out here and everywhere."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from sqlalchemy import update

from provisor.admins.model import Role
from provisor.context import Context
from provisor.errors import AuthenticationError, InputError, PermissionDeniedError
from provisor.settings import Settings
from provisor.storage import tables as t
from provisor.timestamps import format_datetime
from tests.conftest import serve
from tests.console.conftest import PASSWORD, Console, csrf_of, sign_in

CTX = Context.system("test")


def test_a_page_without_a_session_goes_to_sign_in_and_back(console: Console) -> None:
    browser = console.browser()
    page = browser.get("/console/?source=a%20b")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/login?next=%2Fconsole%2F%3Fsource%3Da%2520b"
    console.administrator("ada")
    form = browser.get(page.headers["location"])
    assert form.status_code == 200
    assert "default-src 'self'" in form.headers["content-security-policy"]
    token = form.text.split('name="csrf" value="')[1].split('"')[0]
    signed = browser.post(
        "/console/login",
        data={"name": "Ada", "password": PASSWORD, "csrf": token, "next": "/console/?a=1"},
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/console/?a=1"
    cookie = signed.headers["set-cookie"]
    assert "provisor_console=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # plain HTTP here; HTTPS sets it (test below)
    home = browser.get("/console/")
    assert home.status_code == 200
    assert "Running jobs" in home.text
    assert "app;dur=" in home.headers["server-timing"]


def test_next_never_leaves_the_console(console: Console) -> None:
    console.administrator("ada")
    for target in ("https://evil.example/", "//evil.example/console", "/scim/Users"):
        browser = console.browser()
        form = browser.get("/console/login")
        token = form.text.split('name="csrf" value="')[1].split('"')[0]
        signed = browser.post(
            "/console/login",
            data={"name": "ada", "password": PASSWORD, "csrf": token, "next": target},
        )
        assert signed.headers["location"] == "/console", target


def test_wrong_passwords_get_one_message_and_a_budget(console: Console) -> None:
    console.administrator("ada")
    browser = console.browser()
    wrong = sign_in(browser, "ada", "not the password")
    unknown = sign_in(browser, "nobody", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong name or password." in wrong.text
    assert "Wrong name or password." in unknown.text
    assert "provisor_console" not in wrong.headers.get("set-cookie", "")
    statuses = [sign_in(browser, "ada", f"wrong {i}").status_code for i in range(12)]
    assert 429 in statuses
    assert "Too many failed sign-ins" in sign_in(browser, "ada", "wrong again").text


def test_the_sign_in_form_needs_its_own_csrf_token(console: Console) -> None:
    console.administrator("ada")
    browser = console.browser()
    browser.get("/console/login")
    forged = browser.post(
        "/console/login", data={"name": "ada", "password": PASSWORD, "csrf": "guess"}
    )
    assert forged.status_code == 400
    assert "expired" in forged.text
    other_site = console.browser()
    other_site.headers["origin"] = "https://evil.example"
    page = other_site.get("/console/login")
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    refused = other_site.post(
        "/console/login", data={"name": "ada", "password": PASSWORD, "csrf": token}
    )
    assert refused.status_code == 400


def test_every_change_needs_the_session_csrf_token_and_our_origin(console: Console) -> None:
    browser = console.signed_in("ada")
    home = browser.get("/console/")
    token = csrf_of(home)
    missing = browser.post("/console/logout", data={})
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    foreign = browser.post(
        "/console/logout", data={"csrf": token}, headers={"origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    assert browser.get("/console/").status_code == 200  # still signed in
    out = browser.post("/console/logout", headers={"x-csrf-token": token})
    assert out.status_code == 303
    assert browser.get("/console/").status_code == 303


def test_second_factor(console: Console) -> None:
    browser = console.signed_in("ada")
    ctx = Context(console.services.administrators.show(CTX, "ada").actor(), "default")
    secret, uri = console.services.administrators.begin_second_factor(ctx)
    assert uri.startswith("otpauth://totp/provisor:ada?")
    console.services.administrators.confirm_second_factor(ctx, pyotp.TOTP(secret).now())
    assert console.services.administrators.show(CTX, "ada").totp_enabled
    assert browser.get("/console/").status_code == 303  # a new factor ends every session

    fresh = console.browser()
    first = sign_in(fresh, "ada", PASSWORD)
    assert first.headers["location"].startswith("/console/login/code")
    assert fresh.get("/console/").status_code == 303  # the password alone opens nothing
    form = fresh.get(first.headers["location"])
    token = form.text.split('name="csrf" value="')[1].split('"')[0]
    wrong = fresh.post("/console/login/code", data={"code": "000000", "csrf": token})
    assert wrong.status_code == 401
    # the code of the step used to confirm was spent: the next step's code is needed
    step = int(time.time()) // 30
    code = pyotp.TOTP(secret).generate_otp(step + 1)
    right = fresh.post("/console/login/code", data={"code": code, "csrf": token})
    assert right.status_code == 303, right.text
    assert fresh.get("/console/").status_code == 200
    replay = console.browser()
    sign_in(replay, "ada", PASSWORD)
    page = replay.get("/console/login/code")
    assert page.status_code == 200, page.text
    token = page.text.split('name="csrf" value="')[1].split('"')[0]
    again = replay.post("/console/login/code", data={"code": code, "csrf": token})
    assert again.status_code == 401  # a code is accepted once


def test_idle_and_absolute_timeouts(console: Console) -> None:
    browser = console.signed_in("ada")
    assert browser.get("/console/").status_code == 200
    idle = format_datetime(datetime.now(UTC) - timedelta(hours=2))
    with console.services.db.unscoped_write() as conn:
        conn.execute(update(t.console_sessions).values(last_seen=idle))
    assert browser.get("/console/").status_code == 303
    browser = console.signed_in("bob")
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=1))
    with console.services.db.unscoped_write() as conn:
        conn.execute(update(t.console_sessions).values(expires=past))
    assert browser.get("/console/").status_code == 303


def test_sign_out_everywhere(console: Console) -> None:
    console.administrator("ada")
    first, second = console.browser(), console.browser()
    sign_in(first, "ada", PASSWORD)
    sign_in(second, "ada", PASSWORD)
    token = csrf_of(first.get("/console/"))
    done = first.post("/console/logout/everywhere", data={"csrf": token})
    assert done.status_code == 303
    assert second.get("/console/").status_code == 303
    assert first.get("/console/").status_code == 303


def test_https_sets_secure_cookies(console: Console) -> None:
    console.administrator("ada")
    browser = console.browser("https://console.test")
    signed = sign_in(browser, "ada", PASSWORD)
    assert "Secure" in signed.headers["set-cookie"]


def test_a_viewer_is_refused_changes_by_the_services(console: Console) -> None:
    console.administrator("admin2")
    viewer = console.signed_in("vera", Role.VIEWER)
    ctx = Context(console.services.administrators.show(CTX, "vera").actor(), "default")
    with pytest.raises(PermissionDeniedError):
        console.services.administrators.create(ctx, "eve", Role.ADMINISTRATOR)
    assert viewer.get("/console/login").status_code == 200


def test_behind_a_trusted_proxy_forwarded_https_sets_secure_cookies(
    sqlite_settings: Settings,
) -> None:
    settings = sqlite_settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    with serve(settings) as live:
        live.services.administrators.create(CTX, "ada", Role.ADMINISTRATOR, PASSWORD)
        for forwarded, secure in (("https", True), ("http", False)):
            with httpx.Client(base_url=live.url, headers={"x-forwarded-proto": forwarded}) as web:
                form = web.get("/console/login")
                token = form.text.split('name="csrf" value="')[1].split('"')[0]
                web.cookies.set("provisor_login", token)  # httpx keeps Secure ones for https
                signed = web.post(
                    "/console/login", data={"name": "ada", "password": PASSWORD, "csrf": token}
                )
                assert signed.status_code == 303
                assert ("Secure" in signed.headers["set-cookie"]) is secure


def test_an_untrusted_peers_forwarded_proto_is_ignored(console: Console) -> None:
    console.administrator("ada")
    browser = console.browser()
    browser.headers["x-forwarded-proto"] = "https"
    assert "Secure" not in sign_in(browser, "ada", PASSWORD).headers["set-cookie"]


def test_names_that_look_like_others_are_refused_and_sso_keys_are_whole(console: Console) -> None:
    admins = console.services.administrators
    for name in ("admin\u200b", "ad\x1bmin", "<b>x</b>", "new", "x" * 300):
        with pytest.raises(InputError):
            admins.create(CTX, name, Role.ADMINISTRATOR, PASSWORD)
        with pytest.raises(AuthenticationError):
            admins.sso_login("default", "https://idp.example", "s1", name, Role.VIEWER)
    issuer = "https://idp.example/" + "i" * 600  # the subject beyond any column's length
    first = admins.sso_login("default", issuer, "alice", "alice", Role.VIEWER)
    second = admins.sso_login("default", issuer, "mallory", "mallory", Role.ADMINISTRATOR)
    assert first.id != second.id
    assert admins.show(CTX, "alice").role is Role.VIEWER
