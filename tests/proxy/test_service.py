"""The proxy service authorises its callers itself (issue 15): every operation needs
proxy_api, and a caller confined to one system (a certificate attached to it) may call only
that system's proxy, whichever adapter calls."""

from __future__ import annotations

import pytest

from provisor.context import Actor, ActorKind, Context, Permission
from provisor.errors import PermissionDeniedError
from provisor.proxy.service import ProxyService
from provisor.runtime import Services
from provisor.scim.errors import ResourceNotFoundError
from provisor.systems.model import NewSystem, System

BASE = "http://provisor.test/ipsproxy/service/api/v1/scim/x"


def _client(*permissions: Permission, system: str | None = None) -> Context:
    return Context(Actor(ActorKind.CLIENT, "caller", frozenset(permissions), system))


def _proxy(services: Services, name: str) -> System:
    data = {"type": "local-identity-directory", "role": "proxy", "name": name}
    return services.systems.create(Context.administrator("test"), NewSystem.model_validate(data))


def test_the_composition_root_builds_the_proxy_once(services: Services) -> None:
    assert isinstance(services.proxy, ProxyService)
    assert services.proxy.systems is services.systems


@pytest.mark.anyio
async def test_every_operation_needs_proxy_api(services: Services) -> None:
    proxy = _proxy(services, "IdM proxy")
    denied = _client(Permission.REALTIME_API, Permission.MANAGE_USERS)
    calls = [
        services.proxy.search(denied, proxy.id, "Users", BASE),
        services.proxy.get(denied, proxy.id, "Users", "abc", BASE),
        services.proxy.create(denied, proxy.id, "Users", {"userName": "ada"}, BASE),
        services.proxy.replace(denied, proxy.id, "Users", "abc", {"userName": "ada"}, BASE),
        services.proxy.patch(denied, proxy.id, "Users", "abc", {}, BASE),
        services.proxy.delete(denied, proxy.id, "Users", "abc", BASE),
        services.proxy.service_provider_config(denied, proxy.id, BASE),
        services.proxy.resource_types(denied, proxy.id, BASE),
        services.proxy.schemas(denied, proxy.id, BASE),
    ]
    for call in calls:
        with pytest.raises(PermissionDeniedError, match="proxy_api"):
            await call
    allowed = await services.proxy.search(_client(Permission.PROXY_API), proxy.id, "Users", BASE)
    assert allowed.total == 0
    admin = await services.proxy.search(_client(Permission.ADMIN), proxy.id, "Users", BASE)
    assert admin.total == 0


@pytest.mark.anyio
async def test_a_caller_confined_to_a_system_calls_only_its_proxy(services: Services) -> None:
    proxy, other = _proxy(services, "IdM proxy"), _proxy(services, "other proxy")
    bound = _client(Permission.PROXY_API, system=proxy.id)
    assert (await services.proxy.search(bound, proxy.id, "Users", BASE)).total == 0
    assert (await services.proxy.search(bound, "IdM proxy", "Users", BASE)).total == 0  # by name
    with pytest.raises(PermissionDeniedError, match=f"attached to system {proxy.id}"):
        await services.proxy.search(bound, other.id, "Users", BASE)
    with pytest.raises(PermissionDeniedError):
        await services.proxy.schemas(bound, other.id, BASE)
    with pytest.raises(PermissionDeniedError):  # not a 404: it learns nothing of others
        await services.proxy.get(bound, "no-such-system", "Users", "abc", BASE)
    free = _client(Permission.PROXY_API)
    with pytest.raises(ResourceNotFoundError):
        await services.proxy.get(free, "no-such-system", "Users", "abc", BASE)
