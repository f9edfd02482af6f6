"""The browser tests' machinery on the API documentation: chromium, axe-core, the error log."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserLog, assert_accessible, screenshot


def test_swagger_ui_loads_under_its_csp(page: Page) -> None:
    """No console error and no CSP violation (the page fixture's check)."""
    page.goto("/docs")
    expect(page.get_by_role("heading", name="provisor")).to_be_visible()
    screenshot(page, "api-docs")


def test_csp_violation_is_reported(page: Page, browser_log: BrowserLog) -> None:
    page.goto("/docs")
    expect(page.get_by_role("heading", name="provisor")).to_be_visible()
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
    page.goto("/docs")
    page.evaluate(
        """() => {
            const image = document.createElement("img");
            image.src = "/static/swagger-ui/favicon-32x32.png";
            document.body.prepend(image);
        }"""
    )
    with pytest.raises(AssertionError, match="image-alt"):
        assert_accessible(page)
