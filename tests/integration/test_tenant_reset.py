"""Reset tenant (spec §4.9) and tenant deletion remove everything of that tenant and nothing
of another: counted row by row in every table of tenant data."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from provisor.context import INSTALLATION, Context
from provisor.runtime import Services
from provisor.storage import tables as t
from provisor.systems.model import NewSystem
from provisor.types import EntityType

OPERATOR = Context.system("operator-test", tenant=INSTALLATION)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE = "https://provisor.test/scim"


def _fill(services: Services, tenant: str) -> None:
    """A tenant with a source, a target, a schedule, a user and a technical user."""
    admin = Context.administrator("admin", tenant=tenant)
    source = services.systems.create(
        admin, NewSystem(name="HR", type="local-identity-directory", role="source", properties={})
    )
    services.systems.create(
        admin,
        NewSystem(
            name="App",
            type="scim",
            role="target",
            properties={"URL": "https://app.example.org/scim"},
            source_system_ids=[source.id],
        ),
    )
    services.schedules.put(admin, source.id, {"intervalMinutes": 60})
    services.directory.create(
        admin, EntityType.USER, {"schemas": [USER], "userName": f"u-{tenant}"}, BASE
    )


def _rows(services: Services) -> dict[str, Counter[str]]:
    """Rows per table of tenant data, by tenant."""
    out: dict[str, Counter[str]] = {}
    with services.db.unscoped_read() as conn:
        for table in t.TENANT_TABLES:
            query = select(table.c.tenant, func.count()).group_by(table.c.tenant)
            out[table.name] = Counter({tenant: n for tenant, n in conn.execute(query)})
    return out


def test_reset_and_deletion_touch_one_tenant_only(services: Services) -> None:
    services.tenants.create(OPERATOR, "acme")
    services.tenants.create(OPERATOR, "globex")
    for tenant in ("default", "acme", "globex"):
        _fill(services, tenant)
    before = _rows(services)

    acme = Context.administrator("admin", tenant="acme")
    assert services.jobs.reset_tenant(acme, confirm=True) == 2
    after_reset = _rows(services)
    for table in t.TENANT_TABLES:
        for tenant in ("default", "globex"):  # the others: untouched
            assert after_reset[table.name][tenant] == before[table.name][tenant], table.name
    for table in (t.systems, t.system_properties, t.transformation_versions, t.schedules):
        assert after_reset[table.name]["acme"] == 0, table.name
    # §4.9: technical users and the directory stay
    assert after_reset["clients"]["acme"] == before["clients"]["acme"] == 1
    assert after_reset["users"]["acme"] == 1

    services.tenants.delete(OPERATOR, "acme")
    after_delete = _rows(services)
    for table in t.TENANT_TABLES:
        assert after_delete[table.name]["acme"] == 0, table.name
        for tenant in ("default", "globex"):
            assert after_delete[table.name][tenant] == before[table.name][tenant], table.name
    assert services.tenants.resolve("acme") is None
