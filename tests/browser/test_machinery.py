"""The browser tests' own checks can fail: a CSP violation, an axe violation and a request to
another host are caught."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserLog, assert_accessible

LOGIN = "/console/login"


def test_a_csp_violation_is_reported(page: Page, browser_log: BrowserLog) -> None:
    page.goto(LOGIN)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    browser_log.allow("script-src")
    with page.expect_console_message(lambda m: "CSP violation: script-src" in m.text):
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.injected = true";
                document.body.append(script);
            }"""
        )
    assert page.evaluate("() => window.injected") is None
    assert any("script-src" in error for error in browser_log.errors), browser_log.errors


def test_axe_reports_a_serious_violation(page: Page) -> None:
    page.goto(LOGIN)
    assert_accessible(page)
    page.evaluate(
        """() => {
            const image = document.createElement("img");
            image.src = "data:image/gif;base64,R0lGODlhAQABAAAAACw=";
            document.querySelector("main").prepend(image);
        }"""
    )
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page)


def test_a_request_to_another_host_is_refused_and_reported(
    page: Page, browser_log: BrowserLog
) -> None:
    browser_log.allow("example.org")
    with pytest.raises(PlaywrightError, match="ERR_FAILED"):
        page.goto("https://example.org/page")
    assert "external request: https://example.org/page" in browser_log.errors
