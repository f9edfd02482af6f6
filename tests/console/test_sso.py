"""Single sign-on through the console's routes, browserless: the console in process (httpx
with cookies), the OpenID provider (oidc-provider-mock) on loopback, the browser's visit to the
provider followed with httpx; and the settings page with "Test discovery"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from provisor.admins.model import Role, SsoSettings
from provisor.context import Context
from tests.console.conftest import Console, csrf_of
from tests.oidc_provider import ADMINS, VIEWERS, consent, mock_provider

CTX = Context.system("test")
CALLBACK = "http://console.test/console/login/sso/callback"


@pytest.fixture
def issuer() -> Iterator[str]:
    with mock_provider() as url:
        yield url


def configure(console: Console, issuer: str) -> None:
    console.services.administrators.set_sso(
        CTX,
        SsoSettings(
            label="Mock IdP",
            issuer=issuer,
            client_id="provisor-console",
            client_secret="client-secret-value",
            role_claim="groups",
            administrator_values=(ADMINS,),
            viewer_values=(VIEWERS,),
        ),
    )


def sso(browser: TestClient, subject: str | None, next: str = "") -> Any:
    """Sign in with the provider as ``subject``: the console's redirect, the provider's form,
    the callback; the callback's response."""
    started = browser.get("/console/login/sso", params={"next": next} if next else None)
    assert started.status_code == 303, started.text
    location = consent(started.headers["location"], subject)
    assert location.startswith(CALLBACK + "?"), location
    parts = urlsplit(location)
    return browser.get(f"{parts.path}?{parts.query}")


def test_sign_in_with_the_provider_opens_a_session_with_the_claimed_role(
    console: Console, issuer: str
) -> None:
    configure(console, issuer)
    browser = console.browser()
    assert "Sign in with Mock IdP" in browser.get("/console/login").text
    started = browser.get("/console/login/sso", params={"next": "/console/sso"})
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"{issuer}/oauth2/authorize?")
    state = next(c for c in started.headers.get_list("set-cookie") if "provisor_sso=" in c)
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/console", "Max-Age=600"):
        assert attribute in state
    assert "Secure" not in state  # plain HTTP here
    location = consent(started.headers["location"], "alice")
    parts = urlsplit(location)
    signed = browser.get(f"{parts.path}?{parts.query}")
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/console/sso"
    set_cookies = "\n".join(signed.headers.get_list("set-cookie"))
    assert "provisor_console=" in set_cookies and 'provisor_sso=""' in set_cookies
    page = browser.get("/console/sso")
    assert page.status_code == 200 and "Save" in page.text  # an administrator changes it
    admins = console.services.administrators.listing(CTX)
    alice = next(a for a in admins if a.name == "alice")
    assert (alice.role, alice.origin, alice.has_password) == (Role.ADMINISTRATOR, "sso", False)
    # the same person again: the same administrator, no second one
    assert sso(console.browser(), "alice").status_code == 303
    assert [a.name for a in console.services.administrators.listing(CTX)].count("alice") == 1

    viewer = console.browser()
    assert sso(viewer, "victor").status_code == 303
    page = viewer.get("/console/sso")
    assert page.status_code == 200 and "Save" not in page.text and "Mock IdP" in page.text
    assert "client-secret-value" not in page.text
    found = console.services.administrators.listing(CTX)
    assert next(a for a in found if a.name == "v@x.org").role is Role.VIEWER


def test_refusals_read_on_the_sign_in_page(console: Console, issuer: str) -> None:
    browser = console.browser()
    refused = browser.get("/console/login/sso")
    assert refused.status_code == 401 and "not configured" in refused.text
    configure(console, issuer)
    refused = sso(browser, "mallory")
    assert refused.status_code == 401
    assert "mallory may not use the console" in refused.text
    assert "provisor_console=" not in "".join(refused.headers.get_list("set-cookie"))
    denied = sso(browser, None)
    assert denied.status_code == 401 and "refused the sign-in: access_denied" in denied.text

    # a callback in a browser that did not start the sign-in (no state cookie)
    started = browser.get("/console/login/sso")
    location = consent(started.headers["location"], "alice")
    other = console.browser()
    parts = urlsplit(location)
    refused = other.get(f"{parts.path}?{parts.query}")
    assert refused.status_code == 401 and "missing or was altered" in refused.text
    # and with the right cookie but another state
    forged = browser.get(f"{parts.path}?{parts.query.replace('state=', 'state=x')}")
    assert forged.status_code == 401 and "state does not match" in forged.text
    assert console.services.administrators.listing(CTX) == []


def test_a_local_administrator_is_not_taken_over(console: Console, issuer: str) -> None:
    configure(console, issuer)
    console.administrator("alice", Role.VIEWER)
    refused = sso(console.browser(), "alice")
    assert refused.status_code == 401 and "already exists" in refused.text


def test_the_settings_page_saves_tests_discovery_and_removes(console: Console, issuer: str) -> None:
    browser = console.signed_in("ada")
    assert 'href="/console/sso"' in browser.get("/console/administrators").text
    page = browser.get("/console/sso")
    assert page.status_code == 200 and "Not configured" in page.text
    assert CALLBACK in page.text
    form = {
        "csrf": csrf_of(page),
        "label": "Corporate IdP",
        "issuer": issuer,
        "client_id": "provisor-console",
        "client_secret": "first-secret",
        "role_claim": "realm_access.roles",
        "administrator_values": f"{ADMINS}\nCN=admins,OU=groups\n\n",
        "viewer_values": VIEWERS,
        "scopes": "openid   profile",
    }
    tested = browser.post("/console/sso/test", data=form)
    assert tested.status_code == 200 and "Discovery works" in tested.text
    assert f"{issuer}/oauth2/token" in tested.text and "client_secret_basic" in tested.text
    saved = browser.post("/console/sso", data=form)
    assert saved.status_code == 303
    stored = console.services.administrators.sso_settings(CTX)
    assert stored is not None
    assert stored.administrator_values == (ADMINS, "CN=admins,OU=groups")
    assert (stored.scopes, stored.client_secret) == ("openid profile", "first-secret")
    page = browser.get("/console/sso")
    assert "first-secret" not in page.text and "CN=admins,OU=groups" in page.text
    # an empty secret keeps the stored one
    kept = browser.post("/console/sso", data=form | {"client_secret": ""})
    assert kept.status_code == 303
    assert console.services.administrators.sso_settings(CTX).client_secret == "first-secret"  # type: ignore[union-attr]

    bad = browser.post("/console/sso", data=form | {"issuer": "http://idp.example"})
    assert bad.status_code == 400 and "must use https" in bad.text
    assert "first-secret" not in bad.text
    down = browser.post("/console/sso/test", data=form | {"issuer": "http://127.0.0.1:9"})
    assert down.status_code == 400 and "cannot be reached" in down.text

    removed = browser.post("/console/sso/delete", data={"csrf": form["csrf"]})
    assert removed.status_code == 303
    assert console.services.administrators.sso_settings(CTX) is None


def test_a_viewer_sees_but_cannot_change_or_test(console: Console, issuer: str) -> None:
    configure(console, issuer)
    viewer = console.signed_in("vera", Role.VIEWER)
    page = viewer.get("/console/sso")
    assert page.status_code == 200 and "Mock IdP" in page.text and "Save" not in page.text
    token = csrf_of(page)
    for path in ("", "/test", "/delete"):
        refused = viewer.post(f"/console/sso{path}", data={"csrf": token, "issuer": issuer})
        assert refused.status_code == 403, path
    assert console.services.administrators.sso_settings(CTX) is not None


def test_https_makes_the_state_cookie_secure(console: Console, issuer: str) -> None:
    configure(console, issuer)
    started = console.browser("https://console.test").get("/console/login/sso")
    assert started.status_code == 303
    state = next(c for c in started.headers.get_list("set-cookie") if "provisor_sso=" in c)
    assert "Secure" in state and "SameSite=lax" in state


def test_each_tenant_signs_in_with_its_own_provider_and_state(
    console: Console, issuer: str
) -> None:
    operator = Context.system("test", tenant="*")
    console.services.tenants.create(Context(operator.actor, "_installation"), "other")
    configure(console, issuer)
    other = Context.system("test", tenant="other")
    console.services.administrators.set_sso(
        other,
        SsoSettings(
            label="Other IdP",
            issuer=issuer,
            client_id="other-console",
            client_secret="other-secret",
            role_claim="groups",
            administrator_values=(),
            viewer_values=(ADMINS,),  # alice is only a viewer here
        ),
    )
    browser = console.browser()
    started = browser.get("/t/other/console/login/sso")
    assert started.status_code == 303
    assert "client_id=other-console" in started.headers["location"]
    state = next(c for c in started.headers.get_list("set-cookie") if "provisor_sso=" in c)
    assert "Path=/t/other/console" in state
    location = consent(started.headers["location"], "alice")
    assert location.startswith("http://console.test/t/other/console/login/sso/callback?")
    parts = urlsplit(location)

    # the default tenant's browser, with its own state cookie, cannot finish the other's
    stranger = console.browser()
    stranger.get("/console/login/sso")
    sealed = stranger.cookies.get("provisor_sso")
    assert sealed
    moved = console.browser()
    moved.cookies.set("provisor_sso", sealed, path="/t/other/console")
    refused = moved.get(f"{parts.path}?{parts.query}")
    assert refused.status_code == 401 and "missing or was altered" in refused.text

    signed = browser.get(f"{parts.path}?{parts.query}")
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/t/other/console"
    assert [a.role for a in console.services.administrators.listing(other)] == [Role.VIEWER]
    assert console.services.administrators.listing(CTX) == []
