"""The audit log's console page: a tenant's records with filters, paging and the chain's
check; the installation's for its operators; sign-ins and failed ones recorded."""

from __future__ import annotations

from provisor.admins.model import Role
from provisor.context import INSTALLATION, Context
from tests.console.conftest import PASSWORD, Console, sign_in


def test_the_page_shows_sign_ins_filters_and_checks_the_chain(console: Console) -> None:
    console.administrator("ada")
    browser = console.browser()
    assert sign_in(browser, "ada", "wrong password!").status_code == 401
    assert sign_in(browser, "ada", PASSWORD).status_code == 303
    page = browser.get("/console/audit")
    assert page.status_code == 200, page.text
    assert "administrator.signin.failure" in page.text and "administrator.signin" in page.text
    assert "wrong password!" not in page.text
    filtered = browser.get("/console/audit", params={"action": "administrator.create"})
    assert "administrator.create" in filtered.text and "signin" not in filtered.text
    checked = browser.get("/console/audit", params={"verify": "1"})
    assert "The chain is intact" in checked.text
    assert browser.get("/console/audit", params={"before": "x"}).status_code == 400
    viewer = console.signed_in("vera", Role.VIEWER)  # read-only administration reads it
    assert "administrator.signin" in viewer.get("/console/audit").text


def test_operators_see_the_installations_log(console: Console) -> None:
    operator = Context.system("test", tenant=INSTALLATION)
    console.services.administrators.create(operator, "olga", Role.OPERATOR, PASSWORD)
    console.services.tenants.create(operator, "acme")
    browser = console.browser()
    assert sign_in(browser, "olga", PASSWORD, "/operator").status_code == 303
    page = browser.get("/operator/console/audit")
    assert page.status_code == 200 and "tenant.create" in page.text
