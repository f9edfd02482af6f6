"""Technical users managed through the service: administrators only, every change audited
(ids only, never a secret); the directory's rules hold for every adapter, not only the web."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from provisor.context import Actor, ActorKind, Context, Permission
from provisor.errors import InputError, PermissionDeniedError
from provisor.runtime import Services
from provisor.storage import tables as t
from provisor.types import EntityType
from tests.helpers import group_body, user_body

ADMIN = Context.administrator("ops", request_id="req-7")


def client_context(*permissions: Permission) -> Context:
    return Context(Actor(ActorKind.CLIENT, "caller", frozenset(permissions)))


def audit(services: Services) -> list[tuple[str, str, dict[str, str]]]:
    with services.db.read(ADMIN) as tx:
        rows = tx.execute(select(t.audit_log).order_by(t.audit_log.c.id)).mappings().all()
    return [(r["action"], r["target"], orjson.loads(r["detail"])) for r in rows]


def test_client_changes_are_audited_without_secrets(services: Services) -> None:
    clients = services.clients
    row, creds = clients.create(ADMIN, "hr-sync", ["manage_users"])
    [first] = clients.secrets_of(ADMIN, row.id)
    _, kept = clients.rotate_secret(ADMIN, row.id, keep_previous=True)
    _, last = clients.rotate_secret(ADMIN, "hr-sync")
    clients.delete(ADMIN, row.id)
    entries = audit(services)
    assert [(action, target) for action, target, _ in entries] == [
        ("client.create", row.id),
        ("client.secret.add", row.id),
        ("client.secret.remove", row.id),
        ("client.secret.remove", row.id),
        ("client.secret.add", row.id),
        ("client.delete", row.id),
    ]
    assert entries[0][2] == {"secret": first.id}
    assert {entries[2][2]["secret"], entries[3][2]["secret"]} >= {first.id}
    text = repr(entries)
    for secret in (creds.client_secret, kept.client_secret, last.client_secret):
        assert secret not in text
    with services.db.read(ADMIN) as tx:
        actors = set(tx.execute(select(t.audit_log.c.actor, t.audit_log.c.request_id)).all())
    assert actors == {("ops", "req-7")}


def test_managing_clients_needs_admin(services: Services) -> None:
    caller = client_context(Permission.MANAGE_USERS, Permission.MANAGE_GROUPS)
    with pytest.raises(PermissionDeniedError):
        services.clients.create(caller, "sneaky", ["admin"])
    with pytest.raises(PermissionDeniedError):
        services.clients.all(caller)
    row, _ = services.clients.create(ADMIN, "kept", ["proxy_api"])
    for attempt in (
        lambda: services.clients.get(caller, row.id),
        lambda: services.clients.delete(caller, row.id),
        lambda: services.clients.rotate_secret(caller, row.id),
        lambda: services.clients.secrets_of(caller, row.id),
    ):
        with pytest.raises(PermissionDeniedError):
            attempt()
    assert [c.name for c in services.clients.all(ADMIN)] == ["kept"]


def test_client_input_errors_are_input_errors(services: Services) -> None:
    with pytest.raises(InputError, match="at least one permission"):
        services.clients.create(ADMIN, "none", [])
    with pytest.raises(InputError, match="unknown permission"):
        services.clients.create(ADMIN, "odd", ["root"])


def test_the_directory_authorises_each_resource_type(services: Services) -> None:
    directory = services.directory
    users_only = client_context(Permission.MANAGE_USERS)
    groups_only = client_context(Permission.MANAGE_GROUPS)
    user = directory.create(users_only, EntityType.USER, user_body(), "/scim")
    with pytest.raises(PermissionDeniedError):
        directory.create(users_only, EntityType.GROUP, group_body("g"), "/scim")
    with pytest.raises(PermissionDeniedError):
        directory.get(groups_only, EntityType.USER, user.id, "/scim")
    with pytest.raises(PermissionDeniedError):
        directory.delete(groups_only, EntityType.USER, user.id)
    with pytest.raises(PermissionDeniedError):
        directory.create(client_context(Permission.PROXY_API), EntityType.USER, user_body(), "/")
    with pytest.raises(PermissionDeniedError):
        directory.schemas(groups_only)
    assert directory.resource_types(groups_only).group.name == "Group"
    assert directory.get(users_only, EntityType.USER, user.id, "/scim").id == user.id
    # SCIM data writes are not audited (only configuration changes are)
    assert audit(services) == []
