"""My account: changing one's own password, setting up and turning off the second factor
(its QR code drawn on the server), signing out everywhere; for every role."""

from __future__ import annotations

import re
import time
import urllib.parse

import pyotp

from provisor.admins.model import Role
from provisor.context import Context
from tests.console.conftest import PASSWORD, Console, csrf_of, sign_in

CTX = Context.system("test")


def test_change_own_password(console: Console) -> None:
    browser = console.signed_in("vera", Role.VIEWER)
    page = browser.get("/console/account")
    assert page.status_code == 200 and "Change password" in page.text
    token = csrf_of(page)
    new = "a brand new password"
    wrong = browser.post(
        "/console/account/password",
        data={"csrf": token, "current": "nope", "new": new, "repeated": new},
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    differ = browser.post(
        "/console/account/password",
        data={"csrf": token, "current": PASSWORD, "new": new, "repeated": new + "x"},
    )
    assert differ.status_code == 400 and "differ" in differ.text
    short = browser.post(
        "/console/account/password",
        data={"csrf": token, "current": PASSWORD, "new": "short", "repeated": "short"},
    )
    assert short.status_code == 400 and "12 characters" in short.text
    done = browser.post(
        "/console/account/password",
        data={"csrf": token, "current": PASSWORD, "new": new, "repeated": new},
    )
    assert done.status_code == 303
    assert console.services.administrators.authenticate("default", "vera", new)
    assert new not in browser.get("/console/account").text


def test_set_up_and_turn_off_the_second_factor(console: Console) -> None:
    browser = console.signed_in("ada")
    token = csrf_of(browser.get("/console/account"))
    begun = browser.post("/console/account/second-factor", data={"csrf": token})
    assert begun.status_code == 303
    page = browser.get("/console/account")
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    uri = re.search(r'id="totp-uri">([^<]+)<', page.text)
    assert secret and uri
    assert "data:image/svg+xml" in page.text and 'id="totp-qr"' in page.text
    assert "secret=" + secret.group(1) in urllib.parse.unquote(uri.group(1).replace("&amp;", "&"))
    assert not console.services.administrators.show(CTX, "ada").totp_enabled

    wrong = browser.post(
        "/console/account/second-factor/confirm", data={"csrf": token, "code": "000000"}
    )
    assert wrong.status_code == 400 and 'id="totp-qr"' in wrong.text  # set-up shown again
    totp = pyotp.TOTP(secret.group(1))
    step = int(time.time()) // 30
    confirmed = browser.post(
        "/console/account/second-factor/confirm",
        data={"csrf": token, "code": totp.generate_otp(step)},
    )
    assert confirmed.status_code == 303
    assert console.services.administrators.show(CTX, "ada").totp_enabled
    account = browser.get("/console/account")  # a new session: the others ended
    assert account.status_code == 200
    assert secret.group(1) not in account.text
    token = csrf_of(account)

    fresh = console.browser()
    assert sign_in(fresh, "ada", PASSWORD).headers["location"].startswith("/console/login/code")

    refused = browser.post(
        "/console/account/second-factor/disable", data={"csrf": token, "code": "123"}
    )
    assert refused.status_code == 400
    off = browser.post(
        "/console/account/second-factor/disable",
        data={"csrf": token, "code": totp.generate_otp(step + 1)},
    )
    assert off.status_code == 303, off.text
    assert not console.services.administrators.show(CTX, "ada").totp_enabled


def test_confirming_without_a_set_up_is_a_readable_error(console: Console) -> None:
    browser = console.signed_in("ada")
    token = csrf_of(browser.get("/console/account"))
    early = browser.post(
        "/console/account/second-factor/confirm", data={"csrf": token, "code": "123456"}
    )
    assert early.status_code == 400 and "set-up first" in early.text


def test_sign_out_everywhere_from_the_account_page(console: Console) -> None:
    browser = console.signed_in("ada")
    other = console.browser()
    sign_in(other, "ada", PASSWORD)
    page = browser.get("/console/account")
    assert 'action="/console/logout/everywhere"' in page.text
    out = browser.post("/console/logout/everywhere", data={"csrf": csrf_of(page)})
    assert out.status_code == 303
    assert other.get("/console/account").status_code == 303
    assert browser.get("/console/account").status_code == 303


def test_the_account_page_needs_a_session_and_csrf(console: Console) -> None:
    anonymous = console.browser()
    assert anonymous.get("/console/account").status_code == 303
    browser = console.signed_in("ada")
    browser.get("/console/account")
    assert browser.post("/console/account/second-factor", data={}).status_code == 403
    assert (
        console.services.administrators.pending_second_factor(
            Context(console.services.administrators.show(CTX, "ada").actor(), "default")
        )
        is None
    )


def test_a_session_cannot_guess_the_password_and_its_others_end(console: Console) -> None:
    browser = console.signed_in("ada")
    other = console.browser()
    sign_in(other, "ada", PASSWORD)
    token = csrf_of(browser.get("/console/account"))
    statuses = [
        browser.post(
            "/console/account/password",
            data={"csrf": token, "current": f"guess {i}", "new": "n" * 12, "repeated": "n" * 12},
        ).status_code
        for i in range(12)
    ]
    assert statuses[0] == 400 and 429 in statuses  # the sign-in's budget, not unlimited tries
    console.services.attempts.succeeded("console:default:ada")  # the backoff's wait, skipped
    fresh = console.browser()
    sign_in(fresh, "ada", PASSWORD)
    token = csrf_of(fresh.get("/console/account"))
    changed = fresh.post(
        "/console/account/password",
        data={"csrf": token, "current": PASSWORD, "new": "n" * 12, "repeated": "n" * 12},
    )
    assert changed.status_code == 303
    assert fresh.get("/console/account").status_code == 200  # this browser goes on
    assert other.get("/console/").status_code == 303  # the others ended with the password
    assert browser.get("/console/").status_code == 303
