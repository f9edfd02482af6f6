"""The directoryEntities quota in the directory service (SCIM, Bulk and the directory's
connector all create through ``Directory.create``): no user or group beyond it, and a tenant
without the quota pays no count for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from provisor.context import Context
from provisor.runtime import Services
from provisor.scim.errors import ForbiddenError
from provisor.tenants.model import Quotas
from provisor.types import EntityType

OPERATOR = Context.system("operator-test", tenant="_installation")
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BASE = "https://provisor.test/scim"


def _user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name}


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """The SQL statements the services send while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    engines = {services.db.write_engine.engine, services.db.read_engine.engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def test_a_tenant_holds_no_more_users_and_groups_than_its_quota(services: Services) -> None:
    services.tenants.create(OPERATOR, "acme", quotas=Quotas(directory_entities=2))
    acme = Context.system("tests", tenant="acme")
    directory = services.directory
    one = directory.create(acme, EntityType.USER, _user("one"), BASE)
    directory.create(acme, EntityType.GROUP, {"schemas": [GROUP], "displayName": "g"}, BASE)
    with pytest.raises(ForbiddenError) as refused:
        directory.create(acme, EntityType.USER, _user("two"), BASE)
    assert refused.value.status == 403
    assert "quota (directoryEntities) is 2" in refused.value.message
    with pytest.raises(ForbiddenError):
        directory.create(acme, EntityType.GROUP, {"schemas": [GROUP], "displayName": "h"}, BASE)

    # another tenant, without the quota, is not limited by acme's
    default = Context.system("tests")
    for i in range(3):
        directory.create(default, EntityType.USER, _user(f"d{i}"), BASE)

    # a deleted user makes room again
    directory.delete(acme, EntityType.USER, one.id)
    directory.create(acme, EntityType.USER, _user("two"), BASE)


def test_without_a_quota_nothing_is_counted(services: Services) -> None:
    ctx = Context.system("tests")
    services.directory.create(ctx, EntityType.USER, _user("warm"), BASE)  # caches filled
    with statements(services) as seen:
        services.directory.create(ctx, EntityType.USER, _user("one"), BASE)
    assert seen, "the statements are seen"
    assert not [s for s in seen if "count(" in s.lower()], seen

    services.tenants.update(OPERATOR, "default", quotas=Quotas(directory_entities=10))
    with statements(services) as seen:
        services.directory.create(ctx, EntityType.USER, _user("two"), BASE)
    assert len([s for s in seen if "count(" in s.lower()]) == 2  # users and groups
