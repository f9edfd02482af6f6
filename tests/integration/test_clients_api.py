"""The admin API of technical users, ``/api/v1/clients``: a secret is shown once, never
listed; admins only; the last admin client cannot delete itself."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import LiveServer

PROBLEM_JSON = "application/problem+json"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    return body


def test_create_show_rotate_delete(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(path="/api/v1") as api:
        made = api.post(
            "/clients",
            json={
                "name": "hr-sync",
                "permissions": ["manage_users", "manage_groups"],
                "description": "HR feed",
                "expiresInDays": 30,
            },
        )
        assert made.status_code == 201, made.text
        body = made.json()
        client_id, secret = body["clientId"], body["clientSecret"]
        assert made.headers["Location"].endswith(f"/api/v1/clients/{client_id}")
        assert body["permissions"] == ["manage_groups", "manage_users"]
        assert [s["expires"] is not None for s in body["secrets"]] == [True]
        with httpx.Client(base_url=sqlite_server.url, auth=(client_id, secret)) as hr:
            assert hr.get("/scim/Users").status_code == 200

        listed = api.get("/clients").json()
        assert [c["name"] for c in listed["items"]] == ["initial-admin", "hr-sync"]
        assert secret not in str(listed) and "clientSecret" not in str(listed)
        shown = api.get("/clients/hr-sync").json()
        assert shown["clientId"] == client_id and "clientSecret" not in shown
        assert shown["description"] == "HR feed"

        kept = api.post(f"/clients/{client_id}/rotate-secret", json={"keepPrevious": True})
        assert kept.status_code == 200, kept.text
        assert kept.json()["clientSecret"] != secret and len(kept.json()["secrets"]) == 2
        replaced = api.post("/clients/hr-sync/rotate-secret")  # no body: replace them all
        assert replaced.status_code == 200, replaced.text
        assert len(replaced.json()["secrets"]) == 1

        assert api.delete(f"/clients/{client_id}").status_code == 204
        assert "hr-sync" in problem(api.get("/clients/hr-sync"), 404)["detail"]


def test_bad_requests_are_problems(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(path="/api/v1") as api:
        api.post("/clients", json={"name": "dup", "permissions": ["proxy_api"]})
        again = api.post("/clients", json={"name": "dup", "permissions": ["proxy_api"]})
        assert "already exists" in problem(again, 409)["detail"]
        odd = api.post("/clients", json={"name": "odd", "permissions": ["root"]})
        assert "unknown permission" in problem(odd, 400)["detail"]
        problem(api.post("/clients", json={"name": "none", "permissions": []}), 400)
        problem(api.post("/clients/dup/rotate-secret", json={"expiresInDays": 0}), 400)
        problem(api.delete("/clients/ghost"), 404)


def test_only_admins_manage_clients(sqlite_server: LiveServer) -> None:
    user = sqlite_server.new_client("manage_users", "manage_groups")
    with sqlite_server.client(auth=user, path="/api/v1") as api:
        problem(api.get("/clients"), 403)
        problem(api.post("/clients", json={"name": "x", "permissions": ["admin"]}), 403)
    with httpx.Client(base_url=sqlite_server.url) as anonymous:
        problem(anonymous.get("/api/v1/clients"), 401)


def test_the_last_admin_client_cannot_delete_itself(sqlite_server: LiveServer) -> None:
    admin_id = sqlite_server.admin[0]
    with sqlite_server.client(path="/api/v1") as api:
        refused = problem(api.delete(f"/clients/{admin_id}"), 409)
        assert "last client with the admin permission" in refused["detail"]
        second = api.post("/clients", json={"name": "ops", "permissions": ["admin"]}).json()
    with sqlite_server.client(auth=(second["clientId"], second["clientSecret"])) as ops:
        assert ops.delete(f"/api/v1/clients/{admin_id}").status_code == 204
        problem(ops.delete(f"/api/v1/clients/{second['clientId']}"), 409)
