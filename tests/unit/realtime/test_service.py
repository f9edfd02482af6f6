"""The real-time service decides who may push (not the web layer)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from provisor.context import Actor, ActorKind, Context, Permission, permissions_of
from provisor.errors import NotFoundError, PermissionDeniedError
from provisor.realtime.model import Change, Operation, State, entity_type_of
from provisor.realtime.service import RealtimeService
from provisor.types import EntityType


class _Systems:
    def get(self, ctx: Context, name: str) -> Any:
        if name not in ("A", "a-id"):
            raise NotFoundError(f"No system {name!r}.")
        return SimpleNamespace(id="a-id")


def _service() -> RealtimeService:
    jobs: Any = SimpleNamespace(systems=_Systems())
    return RealtimeService(jobs, db=None)  # type: ignore[arg-type]


def _client(*permissions: Permission, system: str | None = None) -> Context:
    return Context(Actor(ActorKind.CLIENT, "idm", frozenset(permissions), system))


CHANGE = Change(EntityType.USER, Operation.DELETE, "ada")


def test_the_service_declares_its_permissions() -> None:
    assert permissions_of(RealtimeService.push) == (Permission.REALTIME_API,)
    assert permissions_of(RealtimeService.check) == (Permission.REALTIME_API,)
    assert permissions_of(RealtimeService.search) == (Permission.VIEW,)  # or admin
    assert permissions_of(RealtimeService.log) == (Permission.VIEW,)


def test_a_caller_without_realtime_api_is_refused() -> None:
    with pytest.raises(PermissionDeniedError):
        asyncio.run(_service().push(_client(Permission.PROXY_API), "A", CHANGE))
    with pytest.raises(PermissionDeniedError):
        _service().search(_client(Permission.REALTIME_API))


def test_a_certificate_attached_to_a_system_calls_only_that_system() -> None:
    service = _service()
    confined = _client(Permission.REALTIME_API, system="a-id")
    service.check(confined, "A", EntityType.USER)
    for source in ("B", "nope"):
        with pytest.raises(PermissionDeniedError, match="attached to system a-id"):
            asyncio.run(service.push(confined, source, CHANGE))
        with pytest.raises(PermissionDeniedError):
            service.check(confined, source, EntityType.USER)


def test_entity_types_and_states() -> None:
    assert entity_type_of("group") is EntityType.GROUP
    with pytest.raises(NotFoundError, match="use user or group"):
        entity_type_of("Users")
    assert State("Entity Created") is State.CREATED
