"""The permission ``view`` (read-only administration): a technical user holding only ``view``
reads every operation of the admin API and of the directory, and changes nothing. The walk
calls every operation of the OpenAPI document with such a caller, on a tenant holding one of
each thing (so a read goes as deep as it would for an admin): a GET of /api/v1 or /scim is
answered (not 401/403), every other method is refused with 403 before its body is read (the
body sent is not even JSON), and the other APIs (proxy, real-time, SAP's public job API)
refuse it whatever the method."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisor.context import Permission
from provisor.settings import Settings
from tests.conftest import LiveServer, serve
from tests.helpers import GROUP, user_body
from tests.tenancy import run_queued

pytestmark = pytest.mark.slow  # a live server on loopback

GARBAGE = b'{"not": json'
JSON = {"content-type": "application/json"}
SEARCH = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}

# Operations that are not GET but only read, so ``view`` is admitted, and why.
READ_BY_POST: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/configuration/plan"): "what applying a document would change; applies "
    "nothing (apply is a separate operation)",
    ("POST", "/api/v1/systems/{system_id}/validate"): "samples through the transformations: "
    "nothing is read from or written to a back-end, no credential is used",
    ("POST", "/scim/.search"): "a SCIM search (RFC 7644 §3.4.3) reads",
    ("POST", "/scim/Users/.search"): "a SCIM search reads",
    ("POST", "/scim/Groups/.search"): "a SCIM search reads",
}
# GETs answered with another status than 200 for a view-only caller, and why (never 401/403).
NOT_200: dict[tuple[str, str], tuple[int, str]] = {
    ("GET", "/scim/Me"): (501, "not implemented for any caller: callers are technical users"),
    ("GET", "/api/v1/console/sso"): (404, "read, but the estate sets no single sign-on up"),
}
# Every /scim operation on /Me answers 501 to any reader of the directory (its guard).
ME_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# Outside /api/v1 and /scim: what view-only callers get, by path prefix, and why.
ELSEWHERE: dict[str, tuple[int, str]] = {
    "/ipsproxy/": (403, "the proxy and real-time APIs: proxy_api and realtime_api, not view"),
    "/ips/": (403, "SAP's public job API: tenant_admin_api, not view"),
    "/operator/": (401, "the installation's operators: a tenant's client is nobody there"),
}
PUBLIC = {"/health", "/health/live", "/health/ready", "/oauth2/token"}


@pytest.fixture
def live(sqlite_settings: Settings) -> Iterator[LiveServer]:
    """A server whose budgets do not stop a walk of hundreds of calls."""
    update = {
        "auth_failures_per_minute": 0,
        "inbound_throttle_per_minute": 0,
        "inbound_max_per_minute": 0,
    }
    with serve(sqlite_settings.model_copy(update=update)) as server:
        yield server


def _ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 201, 202), (answer.request.url, answer.text)
    found: dict[str, Any] = answer.json()
    return found


def estate(live: LiveServer) -> dict[str, str]:
    """One of each thing the admin API reads, made by the admin: the values of the path
    parameters that name them."""
    api = "/api/v1"
    with live.client() as http:
        user = _ok(http.post("/scim/Users", json=user_body()))
        group = _ok(http.post("/scim/Groups", json={"schemas": [GROUP], "displayName": "view"}))
        source = _ok(
            http.post(
                f"{api}/systems",
                json={"name": "view-source", "type": "local-identity-directory", "role": "source"},
            )
        )
        target = _ok(
            http.post(
                f"{api}/systems",
                json={
                    "name": "view-target",
                    "type": "scim",
                    "role": "target",
                    "sourceSystemIds": [source["id"]],
                    "properties": {
                        "URL": "http://127.0.0.1:9/scim",
                        "Authentication": "NoAuthentication",
                    },
                },
            )
        )
        _ok(http.put(f"{api}/systems/{source['id']}/schedule", json={"intervalMinutes": 45}))
        job = _ok(http.post(f"{api}/systems/{source['id']}/jobs", json={"type": "SIMULATE"}))
        run_queued(live.services, "default", job["id"])
        robot = _ok(http.post(f"{api}/clients", json={"name": "robot", "permissions": ["view"]}))
        generated = http.post(
            f"{api}/clients/{robot['clientId']}/certificates/generate",
            json={"commonName": "robot", "password": "correct horse"},
        )
        assert generated.status_code == 201, generated.text
        outbound = _ok(http.post(f"{api}/systems/{target['id']}/outbound-certificates"))
        assert http.get(f"{api}/certificates/ca").status_code == 200
        # real-time changes go to enabled targets only: none to wait for
        _ok(http.post(f"{api}/systems/{target['id']}/disable"))
        pushed = http.put(
            f"/ipsproxy/service/api/v1/systems/{source['id']}/entities/user/{user['id']}",
            json=_ok(http.get(f"/scim/Users/{user['id']}")),
        )
        assert pushed.status_code == 200, pushed.text
        log = _ok(http.get(f"{api}/realtime-logs"))["items"][0]
        subscription = _ok(
            http.post(
                f"{api}/notifications/subscriptions",
                json={"topic": "login", "channel": "email", "address": "ops@example.org"},
            )
        )
    return {
        "subscription_id": subscription["id"],
        "system_id": target["id"],
        "job_id": job["id"],
        "client_id": robot["clientId"],
        "administrator": "admin",  # the initial administrator
        "log_id": log["id"],
        "resource_id": user["id"],
        "group": group["id"],
        "type_id": "scim",
        "name": "read",
        "kind": "write",
        "version": "1",
        "entity_type": "user",
        "entity_id": user["id"],
        "job_type": "READ",
        "endpoint": "Users",
        "schema_id": "urn:ietf:params:scim:schemas:core:2.0:User",
        "fingerprint": outbound["fingerprint"],
        "inbound": generated.headers["X-Certificate-Fingerprint"],
        "source": source["id"],
    }


# Path parameters whose value depends on the path.
SPECIAL: dict[tuple[str, str], str] = {
    ("/api/v1/bundles/{name}", "name"): "directory-to-ldap-and-scim",
    ("/scim/ResourceTypes/{name}", "name"): "User",
    ("/api/v1/systems/{system_id}/validate", "system_id"): "source",
    ("/api/v1/systems/{system_id}/schedule", "system_id"): "source",
    ("/api/v1/systems/{system_id}/deletion-holds", "system_id"): "source",
    ("/api/v1/systems/{system_id}/inbound-certificates", "system_id"): "source",
    ("/scim/Groups/{resource_id}", "resource_id"): "group",
    ("/api/v1/clients/{client_id}/certificates/{fingerprint}", "fingerprint"): "inbound",
    ("/api/v1/inbound-certificates/{fingerprint}", "fingerprint"): "inbound",
    ("/api/v1/systems/{system_id}/inbound-certificates/{fingerprint}", "fingerprint"): "inbound",
}
QUERIES: dict[str, dict[str, str]] = {
    "/api/v1/jobs/{job_id}/logs": {"logType": "allErrorsLog"},
    "/api/v1/jobs/{job_id}/export": {"logType": "allErrorsLog"},
}
BODIES: dict[str, Any] = {
    "/api/v1/configuration/plan": {"provisorConfiguration": 1},
    "/api/v1/systems/{system_id}/validate": {"users": []},
}


def _url(path: str, values: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        special = SPECIAL.get((path, name))
        chosen = values[special] if special in values else special or values[name]
        return urllib.parse.quote(chosen, safe="")

    return re.sub(r"\{([^}]+)\}", value, path)


def _body(method: str, path: str) -> dict[str, Any]:
    if (method, path) in READ_BY_POST:
        return {"json": BODIES.get(path, SEARCH)}
    return {"content": GARBAGE, "headers": JSON}


def _expected(method: str, path: str) -> int:
    """The status a view-only caller gets from an operation of the document."""
    if not path.startswith(("/api/v1/", "/scim/")):
        return next(status for prefix, (status, _) in ELSEWHERE.items() if path.startswith(prefix))
    if path == "/scim/Me":
        return 501
    if (method, path) in NOT_200:
        return NOT_200[(method, path)][0]
    return 200 if method == "GET" or (method, path) in READ_BY_POST else 403


def test_view_reads_every_operation_and_changes_nothing(live: LiveServer) -> None:
    values = estate(live)
    viewer = live.new_client("view")
    spec = httpx.get(f"{live.url}/openapi.json").json()
    with live.client() as admin:
        before = _ok(admin.get("/api/v1/configuration"))
    answered: dict[tuple[str, str], int] = {}
    wrong: list[tuple[str, str, int, str]] = []
    with live.client(auth=viewer) as http:
        for path, operations in spec["paths"].items():
            for method in (m.upper() for m in operations if m != "parameters"):
                if path in PUBLIC:
                    continue
                url = _url(path, values)
                answer = http.request(method, url, params=QUERIES.get(path), **_body(method, path))
                answered[(method, path)] = status = answer.status_code
                if status != _expected(method, path):
                    wrong.append((method, url, status, answer.text[:200]))
                elif status == 403:  # the refusal names who may: not view
                    assert "view" not in re.findall(r"\w+", answer.json()["detail"]), url
    assert not wrong, "\n".join(map(str, wrong))
    gets = [k for k in answered if k[0] == "GET" and k[1].startswith("/api/v1/")]
    refused = [k for k, status in answered.items() if status == 403]
    assert len(gets) > 30 and len(refused) > 50, (len(gets), len(refused))
    assert all(k[0] != "GET" or not k[1].startswith(("/api/v1/", "/scim/")) for k in refused)
    with live.client() as admin:  # nothing changed
        after = _ok(admin.get("/api/v1/configuration"))
        assert {**after, "exported": ""} == {**before, "exported": ""}
        assert _ok(admin.get(f"/api/v1/clients/{values['client_id']}"))["permissions"] == ["view"]


def test_view_is_a_permission_a_client_is_given(live: LiveServer) -> None:
    """``view`` is created, shown and refused like the others; admin holds it too."""
    viewer = live.new_client("view")
    with live.client(auth=viewer) as http:
        me = _ok(http.get("/api/v1/me"))
        assert me["permissions"] == ["view"]
        refused = http.post("/api/v1/systems", json={"name": "x", "type": "scim"})
        assert refused.status_code == 403
        assert "admin" in refused.json()["detail"]
        assert http.post("/scim/Bulk", content=GARBAGE, headers=JSON).status_code == 403
        assert http.get("/scim/Users").json()["totalResults"] == 0
    with live.client() as admin:
        assert admin.get("/api/v1/systems").status_code == 200
    assert Permission("view") is Permission.VIEW
