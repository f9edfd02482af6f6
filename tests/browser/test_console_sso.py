"""Single sign-on in a real browser: an administrator sets the provider up on the console's page
(with "Test discovery"), then people sign in through the provider (oidc-provider-mock on
loopback, at another site: localhost against the console's 127.0.0.1), with the role their claim
maps to."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BrowserLog, assert_accessible, screenshot
from tests.browser.console import CONSOLE, SIGNED_IN, initial_administrator, sign_in, sign_out
from tests.conftest import LiveServer
from tests.oidc_provider import ADMINS, VIEWERS, mock_provider


@pytest.fixture
def issuer() -> Iterator[str]:
    """The provider's issuer, at localhost: another site than the console's 127.0.0.1, so the
    browser treats the way back from the provider as a cross-site navigation."""
    with mock_provider() as url:
        yield url.replace("127.0.0.1", "localhost")


def test_people_sign_in_through_the_provider(
    page: Page, live: LiveServer, issuer: str, browser_log: BrowserLog
) -> None:
    browser_log.allow(r"cdn\.jsdelivr\.net")  # the provider's page asks the internet for CSS
    sign_in(page, initial_administrator(live), CONSOLE + "/sso")
    expect(page.get_by_role("heading", name="Single sign-on", level=1)).to_be_visible()
    page.get_by_label("Button label").fill("Mock IdP")
    page.get_by_label("Issuer URL").fill(issuer)
    page.get_by_label("Client id").fill("provisor-console")
    page.get_by_label("Client secret").fill("client-secret-value")
    page.get_by_label("Role claim").fill("groups")
    page.get_by_label("Administrator values").fill(ADMINS)
    page.get_by_label("Viewer values").fill(VIEWERS)
    page.get_by_role("button", name="Test discovery").click()
    expect(page.get_by_role("heading", name="Discovery works")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Client secret").fill("client-secret-value")  # never sent back
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Configured")).to_be_visible()
    screenshot(page, "sso-configured")
    assert_accessible(page)
    sign_out(page)

    page.goto(CONSOLE + "/?from=sso")
    page.get_by_role("link", name="Sign in with Mock IdP").click()
    expect(page).to_have_url(re.compile("^" + re.escape(issuer)))
    page.get_by_placeholder("sub").fill("alice")
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(re.compile(r"/console/\?from=sso$"))
    expect(page.get_by_role("button", name="Sign out", exact=True)).to_be_visible()
    expect(page.locator("header")).to_contain_text("alice")
    expect(page.locator("header .role")).to_have_text("administrator")
    sign_out(page)

    page.get_by_role("link", name="Sign in with Mock IdP").click()
    page.get_by_placeholder("sub").fill("victor")
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(SIGNED_IN)
    expect(page.locator("header .role")).to_have_text("viewer")
