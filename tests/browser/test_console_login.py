"""Signing in to the console and out: messages, cookies, redirects, the keyboard."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from provisor.admins.model import Role
from tests.browser.conftest import BrowserLog, assert_accessible, screenshot
from tests.browser.console import (
    CONSOLE,
    SIGNED_IN,
    initial_administrator,
    new_administrator,
    sign_in,
    sign_out,
)
from tests.conftest import LiveServer

TO_SIGN_IN = re.compile(r"/console/login\?next=")


def test_a_page_without_a_session_leads_to_the_sign_in_page_and_back(
    page: Page, live: LiveServer
) -> None:
    page.goto(CONSOLE + "/?since=monday")
    expect(page).to_have_url(TO_SIGN_IN)
    expect(page.get_by_role("heading", name="provisor")).to_be_visible()
    screenshot(page, "login")
    assert_accessible(page)
    login = initial_administrator(live)
    page.get_by_label("Name").fill(login.name)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/\?since=monday$"))


def test_the_initial_administrator_signs_in_and_out(
    page: Page, live: LiveServer, browser_log: BrowserLog
) -> None:
    login = initial_administrator(live)
    browser_log.allow(r"status of 401")  # the refused sign-in's page
    page.goto(CONSOLE + "/login")
    page.get_by_label("Name").fill(login.name)
    page.get_by_label("Password").fill(login.password + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("name or password", re.I))
    expect(page.get_by_label("Name")).to_have_value(login.name)
    expect(page.get_by_label("Password")).to_have_value("")  # never sent back
    assert_accessible(page)

    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(SIGNED_IN)
    expect(page.get_by_role("heading", name="Home", level=1)).to_be_visible()
    assert_accessible(page)

    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["provisor_console"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert session["path"] == CONSOLE
    assert session["secure"] is False  # plain HTTP here; Secure under HTTPS
    assert page.evaluate("() => document.cookie") == ""  # out of the page scripts' reach

    sign_out(page)
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    assert "provisor_console" not in {c["name"] for c in page.context.cookies()}
    page.goto(CONSOLE)
    expect(page).to_have_url(TO_SIGN_IN)


def test_a_stolen_cookie_stops_working_after_signing_out(page: Page, live: LiveServer) -> None:
    login = new_administrator(live, Role.ADMINISTRATOR)
    sign_in(page, login)
    cookie = next(c for c in page.context.cookies() if c["name"] == "provisor_console")
    sign_out(page)
    # the old session's token, replayed
    page.context.add_cookies([{"name": cookie["name"], "value": cookie["value"], "url": live.url}])
    page.goto(CONSOLE)
    expect(page).to_have_url(TO_SIGN_IN)


def test_the_keyboard_reaches_the_sign_in_form_and_the_navigation(
    page: Page, live: LiveServer
) -> None:
    login = initial_administrator(live)
    page.goto(CONSOLE + "/login")
    page.locator("body").focus()
    reached = _tab_through(page, 8)
    assert {"Name", "Password", "Sign in"} <= set(reached), reached
    page.get_by_label("Name").focus()
    page.keyboard.type(login.name)
    page.keyboard.press("Tab")
    page.keyboard.type(login.password)
    page.keyboard.press("Enter")
    expect(page).to_have_url(SIGNED_IN)

    reached = _tab_through(page, 20)
    assert reached[0] == "Skip to content", reached
    assert {"Home", "Systems", "Jobs", "Certificates"} <= set(reached), reached
    page.get_by_role("link", name="Skip to content").focus()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def _tab_through(page: Page, presses: int) -> list[str]:
    """The accessible names of the elements that Tab moves the focus to, in order."""
    names = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        names.append(page.evaluate(FOCUSED_NAME))
    return names


FOCUSED_NAME = """() => {
    const element = document.activeElement;
    if (element.labels && element.labels.length) return element.labels[0].textContent.trim();
    const name = element.getAttribute("aria-label") || element.textContent || element.value;
    return (name || "").trim();
}"""
