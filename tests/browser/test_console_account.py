"""An administrator's own account: setting up a second factor from the enrolment page (codes
from pyotp), signing in with it, signing out everywhere."""

from __future__ import annotations

import re
import time

import pyotp
from playwright.sync_api import Browser, Page, expect

from provisor.admins.model import Role
from tests.browser.conftest import VIEWPORT, BrowserLog, assert_accessible, screenshot
from tests.browser.console import (
    CONSOLE,
    SIGNED_IN,
    accept_confirmations,
    new_administrator,
    sign_in,
    sign_out,
)
from tests.conftest import LiveServer

TO_SIGN_IN = re.compile(r"/console/login(\?|$)")


def test_a_second_factor_set_up_on_the_account_page(
    page: Page, live: LiveServer, browser_log: BrowserLog
) -> None:
    login = new_administrator(live, Role.ADMINISTRATOR)
    sign_in(page, login)
    page.get_by_role("link", name=login.name).click()
    expect(page.get_by_role("heading", name="My account", level=1)).to_be_visible()
    expect(page.locator("#totp-state")).to_have_text("off")
    assert_accessible(page)

    page.get_by_role("button", name="Set up a second factor").click()
    expect(page.get_by_role("img", name=re.compile("QR code"))).to_be_visible()
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    screenshot(page, "account-second-factor")
    assert_accessible(page)
    browser_log.allow(r"status of 40[01]")  # the refused codes' pages
    page.get_by_label("Code from the app").fill(_wrong(totp))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("alert")).to_contain_text("code")
    page.get_by_label("Code from the app").fill(totp.now())
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#totp-state")).to_have_text("on")

    sign_out(page)
    page.get_by_label("Name").fill(login.name)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    code = page.get_by_label("Code from your authenticator app")
    expect(code).to_be_focused()
    screenshot(page, "login-code")
    assert_accessible(page)
    code.fill(_wrong(totp))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    # The next step's code: the one the set-up used is spent, each code counts once.
    page.get_by_label("Code from your authenticator app").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(SIGNED_IN)


def _wrong(totp: pyotp.TOTP) -> str:
    """A code that is none of the accepted ones (the current step's and its neighbours')."""
    now = time.time()
    accepted = {totp.at(now + shift) for shift in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in accepted)


def test_the_code_page_needs_the_password_first(page: Page, live: LiveServer) -> None:
    page.goto(CONSOLE + "/login/code")
    expect(page.get_by_label("Password")).to_be_visible()


def test_signing_out_everywhere_ends_the_other_browsers_session(
    page: Page, browser: Browser, live: LiveServer
) -> None:
    login = new_administrator(live, Role.ADMINISTRATOR)
    other = browser.new_context(viewport=VIEWPORT, base_url=live.url)
    elsewhere = other.new_page()
    sign_in(elsewhere, login)
    sign_in(page, login)
    accept_confirmations(page)
    page.get_by_role("link", name=login.name).click()
    page.get_by_role("button", name="Sign out everywhere").click()
    expect(page.get_by_role("status")).to_contain_text("Signed out everywhere (2 sessions ended)")
    elsewhere.reload()
    expect(elsewhere).to_have_url(TO_SIGN_IN)
    other.close()
