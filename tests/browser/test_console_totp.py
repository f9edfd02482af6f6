"""Signing in with a second factor: the code page after the password, a wrong code refused."""

from __future__ import annotations

import time

import pyotp
from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from provisor.context import Context
from tests.browser.conftest import BrowserLog, assert_accessible, screenshot
from tests.browser.console import CONSOLE, SIGNED_IN, new_administrator
from tests.conftest import LiveServer


def test_an_administrator_with_a_second_factor_signs_in_with_a_code(
    page: Page, live: LiveServer, browser_log: BrowserLog
) -> None:
    login = new_administrator(live, Role.ADMINISTRATOR)
    admin = live.services.administrators.show(Context.system("tests"), login.name)
    own = Context(admin.actor(), "default", "tests")
    secret, _uri = live.services.administrators.begin_second_factor(own)
    totp = pyotp.TOTP(secret)
    live.services.administrators.confirm_second_factor(own, totp.now())

    page.goto(CONSOLE + "/login")
    page.get_by_label("Name").fill(login.name)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    code = page.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    screenshot(page, "login-code")
    assert_accessible(page)

    browser_log.allow(r"status of 401")  # the refused code's page
    code.fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    # The next step's code: the one the enrolment used is spent, each code counts once.
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(SIGNED_IN)
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_code_page_needs_the_password_first(page: Page, live: LiveServer) -> None:
    page.goto(CONSOLE + "/login/code")
    expect(page.get_by_label("Password")).to_be_visible()
