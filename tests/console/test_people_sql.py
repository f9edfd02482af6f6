"""The SQL behind the people pages, on SQLite and PostgreSQL: technical users paged and
searched by name, tenants' health in a few grouped queries, administrators by name."""

from __future__ import annotations

from sqlalchemy import update

from provisor.admins.model import Role
from provisor.context import INSTALLATION, Context
from provisor.jobs.model import JobStatus
from provisor.runtime import Services
from provisor.storage import tables as t
from tests.jobs.test_tenants import new_system
from tests.tenancy import create_tenant

CTX = Context.system("test")
OPERATOR = Context.system("test", tenant=INSTALLATION)


def test_clients_paged_and_searched(services: Services) -> None:
    for name in ("beta", "Alpha", "gamma_1", "gamma%2", "delta"):
        services.clients.create(CTX, name, ["view"])
    services.clients.create(Context.system("test", tenant="elsewhere"), "alpha-other", ["view"])
    page, total = services.clients.page(CTX, limit=2)
    assert total == 5 and [v.client.name for v in page] == ["Alpha", "beta"]
    page, _ = services.clients.page(CTX, offset=4, limit=2)
    assert [v.client.name for v in page] == ["gamma_1"]
    found, total = services.clients.page(CTX, search="ALPHA")
    assert total == 1 and found[0].client.name == "Alpha" and found[0].secrets
    assert services.clients.page(CTX, search="a%")[1] == 1  # % is a character, not a wildcard
    assert services.clients.page(CTX, search="_")[1] == 1


def test_tenants_health(services: Services) -> None:
    create_tenant(services, "acme")
    create_tenant(services, "bolt")
    new_system(services, "acme", name="LID", type="local-identity-directory", role="source")
    admin = Context.administrator("t", tenant="acme")
    for _ in range(7):
        job = services.jobs.start(admin, "LID")
        with services.db.unscoped_write() as conn:
            conn.execute(
                update(t.jobs)
                .where(t.jobs.c.id == job.id)
                .values(status=JobStatus.FINISHED_WITH_ERROR.value)
            )
    services.jobs.start(admin, "LID")
    found, total = services.tenants.health(OPERATOR, latest=3)
    assert total == 3
    by_name = {h.tenant.name: h.health for h in found}
    acme = by_name["acme"]
    assert acme.systems == {"source": 1}
    assert acme.failed == 7 and acme.running == 1
    assert acme.latest[0] == JobStatus.QUEUED.value and len(acme.latest) == 3
    assert by_name["bolt"].latest == [] and by_name["bolt"].systems == {}
    old = services.tenants.health(OPERATOR, search="ACM", failed_since="9999")
    assert old[1] == 1 and old[0][0].health.failed == 0
    assert services.tenants.health(OPERATOR, offset=1, limit=1)[0][0].tenant.name == "bolt"


def test_administrators_by_name(services: Services) -> None:
    for name in ("Zoe", "adam", "Mia"):
        services.administrators.create(CTX, name, Role.VIEWER, "p" * 12)
    services.administrators.create(OPERATOR, "root", Role.OPERATOR, "p" * 12)
    names = [a.name for a in services.administrators.listing(CTX, count=2)]
    assert names == ["adam", "Mia"]
    assert [a.name for a in services.administrators.listing(CTX, after="Mia")] == ["Zoe"]
    assert [a.name for a in services.administrators.listing(OPERATOR)] == ["root"]
