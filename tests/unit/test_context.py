"""The context of a service call: actors, permissions, and methods that declare theirs."""

from __future__ import annotations

import asyncio

import pytest

from provisor.context import (
    Actor,
    ActorKind,
    Context,
    Permission,
    permissions_of,
    requires,
)
from provisor.errors import PermissionDeniedError


def client(*permissions: Permission, system: str | None = None) -> Context:
    return Context(Actor(ActorKind.CLIENT, "c1", frozenset(permissions), system))


class Service:
    @requires(Permission.MANAGE_USERS)
    def read(self, ctx: Context, what: str) -> str:
        return f"{ctx.author}:{what}"

    @requires()
    async def configure(self, ctx: Context) -> str:
        return ctx.author


def test_a_method_checks_the_permission_it_declares() -> None:
    service = Service()
    assert service.read(client(Permission.MANAGE_USERS), "x") == "c1:x"
    assert service.read(client(Permission.ADMIN), "y") == "c1:y"
    with pytest.raises(PermissionDeniedError, match="manage_users"):
        service.read(client(Permission.MANAGE_GROUPS), "x")
    assert permissions_of(Service.read) == (Permission.MANAGE_USERS,)


def test_an_async_method_checks_before_it_runs() -> None:
    service = Service()
    with pytest.raises(PermissionDeniedError, match="admin"):
        asyncio.run(service.configure(client(Permission.TENANT_ADMIN_API)))
    assert asyncio.run(service.configure(Context.system("scheduler"))) == "scheduler"
    assert permissions_of(Service.configure) == ()


def test_an_undeclared_method_has_no_permissions_to_read() -> None:
    with pytest.raises(TypeError, match="declares no permission"):
        permissions_of(Service.__init__)


def test_system_and_administrator_contexts_may_do_everything() -> None:
    for ctx in (Context.system("maintenance"), Context.administrator("ops")):
        ctx.require(Permission.PROXY_API)
        ctx.require()
        ctx.require_system("any")
    assert Context.system("worker").actor.kind is ActorKind.SYSTEM
    assert Context.administrator("ops").actor.kind is ActorKind.ADMINISTRATOR
    assert Context.system("a").request_id != Context.system("a").request_id


def test_a_caller_confined_to_a_system_may_call_only_that_one() -> None:
    ctx = client(Permission.PROXY_API, system="s1")
    ctx.require_system("s1")
    with pytest.raises(PermissionDeniedError, match="s1"):
        ctx.require_system("s2")


def test_entity_types_parse_every_spelling() -> None:
    from provisor.types import EntityType

    for spelling in ("user", "User", "Users", " users "):
        assert EntityType.parse(spelling) is EntityType.USER
    assert EntityType.parse("Groups") is EntityType.GROUP
    assert EntityType.GROUP.endpoint == "Groups" and EntityType.USER.resource_type == "User"
    assert (
        EntityType("user") is EntityType.USER and f"{EntityType.USER}" == "user"
    )  # stored spelling
    with pytest.raises(ValueError, match="user or group"):
        EntityType.parse("device")


def test_a_per_tenant_cache_builds_one_value_per_tenant() -> None:
    from provisor.context import PerTenant

    built: list[str] = []

    def build(tenant: str) -> list[str]:
        built.append(tenant)
        return [tenant]

    cache = PerTenant(build)
    a, b = Context.system("x", tenant="a"), Context.system("x", tenant="b")
    assert cache.get(a) is cache.get(a) and cache.get(b) == ["b"]
    assert built == ["a", "b"] and cache.values() == [["a"], ["b"]]


def test_a_call_acts_as_provisor_for_its_tenant_and_request() -> None:
    call = Context(Actor(ActorKind.CLIENT, "c1", frozenset({Permission.PROXY_API})), "t1", "r1")
    own = call.as_system("connector")
    assert (own.actor.kind, own.author, own.tenant, own.request_id) == (
        ActorKind.SYSTEM,
        "connector",
        "t1",
        "r1",
    )
    own.require(Permission.MANAGE_USERS)


def test_a_refusal_names_each_permission_once_and_what_to_do() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        client(Permission.MANAGE_GROUPS).require(
            Permission.MANAGE_USERS, Permission.ADMIN, Permission.MANAGE_USERS, action="read users"
        )
    assert refused.value.message == (
        "The client c1 may not read users: that needs one of the permissions manage_users or "
        "admin. Ask an administrator for a technical user with one of these permissions."
    )
    with pytest.raises(PermissionDeniedError) as refused:
        Service().read(client(), "x")
    assert refused.value.message.startswith("The client c1 may not call Service.read: ")
