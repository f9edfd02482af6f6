"""Changing a technical user's permissions and description: through the service (admin only,
audited, the last admin client keeps admin, the new permissions count at once), the admin API
(``PATCH /api/v1/clients/{id}``) and the command (``provisor clients update``)."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select

from provisor.context import INSTALLATION, Actor, ActorKind, Context, Permission
from provisor.errors import ConflictError, InputError, NotFoundError, PermissionDeniedError
from provisor.runtime import Services
from provisor.storage import tables as t
from tests.conftest import CLI, LiveServer

ADMIN = Context.administrator("ops")


def client_context(*permissions: Permission) -> Context:
    return Context(Actor(ActorKind.CLIENT, "caller", frozenset(permissions)))


def test_update_changes_permissions_and_description_audited(services: Services) -> None:
    row, creds = services.clients.create(ADMIN, "monitor", ["manage_users"], description="old")
    changed = services.clients.update(ADMIN, "monitor", permissions=["view", "realtime_api"])
    assert changed.permissions == ("realtime_api", "view")
    assert changed.description == "old"
    again = services.clients.update(ADMIN, row.id, description="dashboards")
    assert (again.permissions, again.description) == (("realtime_api", "view"), "dashboards")
    shown = services.clients.show(ADMIN, row.id)
    assert shown.client == again and len(shown.secrets) == 1  # the secret stays
    principal = services.clients.authenticate_secret("default", row.id, creds.client_secret)
    assert principal.permissions == {Permission.VIEW, Permission.REALTIME_API}
    with services.db.read(ADMIN) as tx:
        found = tx.execute(
            select(t.audit_log.c.detail).where(t.audit_log.c.action == "client.update")
        ).scalars()
        details = [orjson.loads(detail) for detail in found]
    assert details == [
        {"permissions": ["realtime_api", "view"], "descriptionChanged": False},
        {"permissions": ["realtime_api", "view"], "descriptionChanged": True},
    ]


def test_update_refuses_bad_input_and_other_callers(services: Services) -> None:
    services.clients.create(ADMIN, "robot", ["manage_users"])
    for wrong, message in (
        ({}, "permissions or the description"),
        ({"permissions": []}, "at least one permission"),
        ({"permissions": ["root"]}, "unknown permission"),
        ({"permissions": ["operator"]}, "belong to the installation's technical users"),
        ({"description": "x" * 2001}, "at most 2000"),
    ):
        with pytest.raises(InputError, match=message):
            services.clients.update(ADMIN, "robot", **wrong)
    with pytest.raises(NotFoundError):
        services.clients.update(ADMIN, "nobody", description="x")
    for caller in (client_context(Permission.VIEW), client_context(Permission.MANAGE_USERS)):
        with pytest.raises(PermissionDeniedError):
            services.clients.update(caller, "robot", permissions=["admin"])
    operator = Context.administrator("ops", tenant=INSTALLATION)
    services.clients.create(operator, "op", ["operator"])
    with pytest.raises(InputError, match="operator or metrics only"):
        services.clients.update(operator, "op", permissions=["view"])
    assert services.clients.show(ADMIN, "robot").client.permissions == ("manage_users",)


def test_the_last_admin_client_keeps_admin(services: Services) -> None:
    services.clients.create(ADMIN, "only-admin", ["admin"])
    caller = client_context(Permission.ADMIN)
    with pytest.raises(ConflictError, match="last client with the admin permission"):
        services.clients.update(caller, "only-admin", permissions=["view"])
    services.clients.update(caller, "only-admin", description="still admin")  # no change to it
    services.clients.create(ADMIN, "second-admin", ["admin"])
    assert services.clients.update(caller, "only-admin", permissions=["view"]).permissions == (
        "view",
    )


def test_patch_over_the_api(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as http:
        made = http.post("/api/v1/clients", json={"name": "watcher", "permissions": ["proxy_api"]})
        assert made.status_code == 201
        client_id, secret = made.json()["clientId"], made.json()["clientSecret"]
        changed = http.patch(f"/api/v1/clients/{client_id}", json={"permissions": ["view"]})
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert body["permissions"] == ["view"] and "clientSecret" not in body
        assert len(body["secrets"]) == 1
        wrongs: list[dict[str, object]] = [
            {},
            {"permissions": []},
            {"permissions": ["root"]},
            {"name": "x"},
        ]
        for wrong in wrongs:
            answer = http.patch(f"/api/v1/clients/{client_id}", json=wrong)
            assert answer.status_code in (400, 422), (wrong, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
        assert http.patch("/api/v1/clients/nobody", json={"description": "x"}).status_code == 404
    with sqlite_server.client(auth=(client_id, secret)) as http:
        assert http.get("/api/v1/systems").status_code == 200  # view now
        assert http.get("/api/v1/clients").status_code == 200
        refused = http.patch(f"/api/v1/clients/{client_id}", json={"permissions": ["admin"]})
        assert refused.status_code == 403


def test_clients_update_command(cli: CLI) -> None:
    cli.invoke("clients", "create", "reporter", "-p", "manage_users")
    done = cli.invoke("clients", "update", "reporter", "-p", "view", "-p", "realtime_api")
    assert "realtime_api view" in done.stdout
    shown = orjson.loads(
        cli.invoke("clients", "update", "reporter", "--description", "reports", "--json").stdout
    )
    assert shown["permissions"] == ["realtime_api", "view"]
    assert shown["description"] == "reports"
    nothing = cli.invoke("clients", "update", "reporter", check=False)
    assert nothing.returncode == 1 and "nothing to change" in nothing.stderr
    unknown = cli.invoke("clients", "update", "reporter", "-p", "root", check=False)
    assert unknown.returncode != 0
