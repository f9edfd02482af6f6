"""Issue 13, item 6: every route authenticates, then authorises, then parses: an anonymous
caller gets 401 and a caller without the permission 403, whatever the body."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from provisor.context import INSTALLATION, Context, Permission
from provisor.settings import Settings
from provisor.web.app import create_app
from provisor.web.auth import Guard
from tests.conftest import LiveServer, serve

PUBLIC = {
    "/health",
    "/health/live",
    "/health/ready",
    "/oauth2/token",
    "/docs",
    "/redoc",
}  # and Starlette routes: openapi, static
GARBAGE = b'{"not": json'
JSON = {"content-type": "application/json"}


@pytest.fixture
def server(sqlite_settings: Settings) -> Iterator[LiveServer]:
    """A server where failed authentications are not budgeted (this test makes hundreds)."""
    with serve(sqlite_settings.model_copy(update={"auth_failures_per_minute": 0})) as live:
        yield live


def _routes(routes: list[Any]) -> Iterator[Any]:
    """Every API route of the app, with the paths and dependencies it is served with
    (FastAPI keeps included routers as such, see ``_IncludedRouter``)."""
    for route in routes:
        if hasattr(route, "effective_candidates"):
            yield from _routes(route.effective_candidates())
        elif isinstance(route, APIRoute) or isinstance(
            getattr(route, "original_route", None), APIRoute
        ):
            yield route


def _concrete(path: str) -> str:
    path = path.replace("{endpoint}", "Users")
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_authenticates_then_authorises_before_parsing(server: LiveServer) -> None:
    app = create_app(server.settings, server.services)  # for its routes only
    routes = list(_routes(app.routes))
    assert len(routes) > 100
    every = {p.value for p in Permission} - {Permission.ADMIN.value, Permission.OPERATOR.value}
    wrong_clients: dict[frozenset[str], tuple[str, str]] = {}
    checked = 0
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for route in routes:
            guards = [d.dependency for d in route.dependencies if isinstance(d.dependency, Guard)]
            if route.path in PUBLIC:
                assert not guards
                continue
            assert len(guards) == 1, f"{route.path} has no guard"
            allowed = {p.value for p in guards[0].any_of}
            wrong = frozenset(every - allowed)
            if not wrong:  # any technical user may call it (/api/v1/me): 401 only
                assert route.path == "/api/v1/me", route.path
                for method in route.methods:
                    assert http.request(method, route.path).status_code == 401
                continue
            if wrong not in wrong_clients:
                wrong_clients[wrong] = server.new_client(*sorted(wrong))
            url = _concrete(route.path)
            for method in sorted(route.methods):
                anonymous = http.request(method, url, content=GARBAGE, headers=JSON)
                assert anonymous.status_code == 401, (method, url, anonymous.text)
                assert "www-authenticate" in anonymous.headers
                denied = http.request(
                    method, url, content=GARBAGE, headers=JSON, auth=wrong_clients[wrong]
                )
                # The operator's routes are the installation scope's, where no tenant's
                # technical user exists: unknown (401), whatever it may do in its tenant.
                refused = 401 if route.path.startswith("/operator/") else 403
                assert denied.status_code == refused, (method, url, sorted(wrong), denied.text)
                checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    [
        ("POST", "/api/v1/systems", "manage_users"),
        ("PUT", "/api/v1/systems/x/transformations/read", "manage_users"),
        ("POST", "/api/v1/tenant/reset", "manage_users"),
        ("PUT", "/api/v1/systems/x/outbound-certificates/auto-regeneration", "proxy_api"),
        ("GET", "/scim/Schemas", "manage_groups"),
        ("GET", "/scim/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", "manage_groups"),
        ("POST", "/scim/Users", "manage_groups"),
    ],
)
def test_no_permission_is_403_whatever_the_body(
    sqlite_server: LiveServer, method: str, path: str, permission: str
) -> None:
    caller = sqlite_server.new_client(permission)
    with httpx.Client(base_url=sqlite_server.url, timeout=60) as http:
        answer = http.request(method, path, content=GARBAGE, headers=JSON, auth=caller)
    assert answer.status_code == 403, answer.text


def test_me_authenticates_first(sqlite_server: LiveServer) -> None:
    with httpx.Client(base_url=sqlite_server.url, timeout=60) as http:
        assert http.get("/scim/Me").status_code == 401
        assert http.post("/scim/Me", content=GARBAGE, headers=JSON).status_code == 401
        reader = sqlite_server.new_client("manage_users")
        assert http.get("/scim/Me", auth=reader).status_code == 501
        assert http.get("/scim/Me", auth=sqlite_server.new_client("proxy_api")).status_code == 403


def test_an_operator_is_nobody_in_a_tenant(sqlite_server: LiveServer) -> None:
    """The installation's operators manage tenants and hold no permission inside one: their
    credentials are unknown at every tenant's address (401), the default tenant's too."""
    ctx = Context.system("test", tenant=INSTALLATION)
    _, creds = sqlite_server.services.clients.create(ctx, "op", ["operator"])
    operator = (creds.client_id, creds.client_secret)
    with httpx.Client(base_url=sqlite_server.url, timeout=60) as http:
        assert http.get("/operator/v1/tenants", auth=operator).status_code == 200
        for path in ("/api/v1/systems", "/scim/Users", "/api/v1/me", "/api/v1/clients"):
            assert http.get(path, auth=operator).status_code == 401, path
