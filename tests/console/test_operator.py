"""The installation's console at /operator/console: its operators sign in there (and only
they), and see every tenant with its health, paged."""

from __future__ import annotations

from sqlalchemy import update
from starlette.testclient import TestClient

from provisor.admins.model import Role
from provisor.context import INSTALLATION, Context
from provisor.jobs.model import JobStatus
from provisor.storage import tables as t
from tests.console.conftest import PASSWORD, Console, csrf_of, sign_in
from tests.jobs.test_tenants import new_system
from tests.tenancy import create_tenant

OPERATORS = Context.system("test", tenant=INSTALLATION)


def operator(console: Console, name: str = "root") -> TestClient:
    console.services.administrators.create(OPERATORS, name, Role.OPERATOR, PASSWORD)
    browser = console.browser()
    signed = sign_in(browser, name, PASSWORD, path="/operator")
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == "/operator/console"
    assert "Path=/operator/console" in signed.headers["set-cookie"]
    return browser


def test_an_operator_sees_every_tenant_and_its_health(console: Console) -> None:
    services = console.services
    create_tenant(services, "acme")
    create_tenant(services, "zeta")
    new_system(services, "acme", name="LID", type="local-identity-directory", role="source")
    first = services.jobs.start(Context.administrator("t", tenant="acme"), "LID")
    with services.db.unscoped_write() as conn:
        conn.execute(
            update(t.jobs)
            .where(t.jobs.c.id == first.id)
            .values(status=JobStatus.FINISHED_WITH_ERROR.value)
        )
    services.jobs.start(Context.administrator("t", tenant="acme"), "LID")
    browser = operator(console)
    page = browser.get("/operator/console")
    assert page.status_code == 200, page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    text = page.text
    assert "acme" in text and "zeta" in text and "Tenant acme" in text
    assert "/t/acme/console" in text
    assert "1 of 20 source systems" in text
    assert "Finished with Error" in text and "Queued" in text
    assert '<a href="/operator/console/" aria-current="page">Tenants</a>' in text
    assert "/console/systems" not in text  # no tenant page in the installation's console
    assert '<span class="tenant" title="Tenant">installation</span>' in text
    assert browser.get("/operator/console/static/console.css").status_code == 200

    found = browser.get("/operator/console?search=ZET")
    assert "zeta" in found.text and "acme" not in found.text
    account = browser.get("/operator/console/account")
    assert account.status_code == 200 and "operator" in account.text
    out = browser.post("/operator/console/logout", data={"csrf": csrf_of(account)})
    assert out.status_code == 303
    assert out.headers["location"] == "/operator/console/login"
    assert browser.get("/operator/console").status_code == 303


def test_the_tenants_page_is_paged(console: Console) -> None:
    for i in range(52):
        create_tenant(console.services, f"t{i:02d}")
    browser = operator(console)
    first = browser.get("/operator/console")
    assert "1\u201350 of 53" in first.text  # the default tenant too
    assert 'rel="next"' in first.text
    last = browser.get("/operator/console?offset=50")
    assert "t51" in last.text and "t00" not in last.text


def test_only_operators_sign_in_there(console: Console) -> None:
    console.administrator("ada")  # the default tenant's administrator
    browser = console.browser()
    refused = sign_in(browser, "ada", PASSWORD, path="/operator")
    assert refused.status_code == 401
    assert browser.get("/operator/console").status_code == 303
    tenant_console = console.browser()
    assert sign_in(tenant_console, "ada", PASSWORD).status_code == 303
    assert tenant_console.get("/operator/console").status_code == 303  # another cookie path
    assert tenant_console.get("/operator/console/clients").status_code == 404

    operator(console)
    other = console.browser()
    assert sign_in(other, "root", PASSWORD).status_code == 401  # not a tenant's administrator
