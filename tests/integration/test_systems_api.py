"""The admin API of systems (``/api/v1``), over HTTP against a live server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisor.systems.secrets import MASK
from tests.conftest import LiveServer

PROBLEM = "application/problem+json"


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(path="/api/v1") as client:
        yield client


def scim_target(server: LiveServer, name: str = "Loopback", **extra: Any) -> dict[str, Any]:
    client_id, secret = server.admin
    body: dict[str, Any] = {
        "name": name,
        "type": "scim",
        "role": "target",
        "description": "provisor's own /scim",
        "properties": {
            "URL": server.url + "/scim",
            "Authentication": "BasicAuthentication",
            "User": client_id,
            "Password": secret,
        },
    }
    body.update(extra)
    return body


def assert_problem(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


def test_only_admins_manage_systems(server: LiveServer) -> None:
    anonymous = httpx.get(server.url + "/api/v1/systems")
    assert_problem(anonymous, 401)
    assert "Basic" in anonymous.headers["www-authenticate"]
    with server.client(auth=server.new_client("manage_users")) as hr:
        assert_problem(hr.get("/api/v1/systems"), 403, "admin")
        assert_problem(hr.get("/api/v1/connector-types"), 403)


def test_connector_types_describe_their_properties(api: httpx.Client) -> None:
    types = {t["id"]: t for t in api.get("/connector-types").raise_for_status().json()["items"]}
    assert set(types) >= {
        "local-identity-directory",
        "scim",
        "identity-authentication",
        "ldap",
        "microsoft-ad",
        "csv",
    }
    scim = api.get("/connector-types/SCIM System").raise_for_status().json()
    keys = {p["key"]: p for p in scim["properties"]}
    assert keys["Password"]["type"] == "credential"
    assert keys["Authentication"]["allowedValues"] == [
        "NoAuthentication",
        "BasicAuthentication",
        "ClientCertificateAuthentication",
    ]
    assert "target" in keys["URL"]["requiredFor"]
    default = api.get("/connector-types/ldap/transformations/read").raise_for_status().json()
    assert default["user"]["mappings"][0]["targetVariable"] == "entityIdSourceSystem"
    assert_problem(api.get("/connector-types/fax"), 404)


def test_lifecycle(server: LiveServer, api: httpx.Client) -> None:
    created = api.post("/systems", json=scim_target(server))
    assert created.status_code == 201, created.text
    system = created.json()
    assert created.headers["location"].endswith(f"/api/v1/systems/{system['id']}")
    assert created.headers["etag"] == 'W/"1"'
    assert system["properties"]["Password"] == MASK
    assert server.admin[1] not in created.text
    assert system["transformations"] == {"write": 1}
    url = f"/systems/{system['id']}"

    listed = api.get("/systems", params={"role": "target"}).json()
    assert [s["name"] for s in listed["items"]] == ["Loopback"] and listed["total"] == 1
    assert api.get("/systems", params={"role": "source"}).json()["total"] == 0

    renamed = api.patch(url, json={"name": "Loopback 2"}, headers={"If-Match": 'W/"1"'})
    assert renamed.status_code == 200 and renamed.headers["etag"] == 'W/"2"'
    assert_problem(api.patch(url, json={"name": "x"}, headers={"If-Match": 'W/"1"'}), 412)
    assert api.get(f"/systems/{system['name']}").status_code == 404  # the old name is gone
    assert api.get("/systems/Loopback 2").json()["id"] == system["id"]  # by name

    assert api.post(f"{url}/disable").json()["enabled"] is False
    assert api.get("/systems", params={"enabled": "false"}).json()["total"] == 1
    assert api.post(f"{url}/enable").json()["enabled"] is True

    properties = api.patch(
        f"{url}/properties", json={"properties": {"scim.support.patch.operation": "true"}}
    ).json()
    assert properties["properties"]["scim.support.patch.operation"] == "true"
    assert properties["properties"]["Password"] == MASK
    replaced = api.put(
        f"{url}/properties",
        json={"properties": {"URL": server.url + "/scim", "User": "u", "Password": MASK}},
    ).json()
    assert set(replaced["properties"]) == {"URL", "User", "Password"}

    assert api.delete(url).status_code == 204
    assert_problem(api.get(url), 404, "No system")


def test_bad_requests_are_problems(server: LiveServer, api: httpx.Client) -> None:
    bad_json = api.post(
        "/systems", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(bad_json, 400)
    assert_problem(api.post("/systems", json={"name": "x"}), 400, "type", "role")
    assert_problem(
        api.post("/systems", json={**scim_target(server), "colour": "red"}), 400, "colour"
    )
    assert_problem(
        api.post("/systems", json=scim_target(server, name="bad/name")), 400, "system name"
    )
    body = scim_target(server)
    body["properties"]["scim.page.size"] = "lots"
    assert_problem(api.post("/systems", json=body), 400, "scim.page.size")
    api.post("/systems", json=scim_target(server)).raise_for_status()
    assert_problem(api.post("/systems", json=scim_target(server)), 409, "already exists")
    assert_problem(api.get("/systems/nope/transformations/write"), 404)


def test_transformations(server: LiveServer, api: httpx.Client) -> None:
    system = api.post("/systems", json=scim_target(server)).raise_for_status().json()
    url = f"/systems/{system['id']}/transformations"
    current = api.get(f"{url}/write").raise_for_status().json()
    assert current["version"] == 1 and current["document"]["user"]["mappings"]
    invalid = api.put(
        f"{url}/write",
        json={"document": {"user": {"mappings": [{"sourcePath": "$.x["}]}}, "description": "x"},
    )
    problem = assert_problem(invalid, 400, "invalid")
    assert any(p.startswith("user.mappings[0]") for p in problem["problems"]), problem
    text = '{"user": {"mappings": [/* keep */ {"sourcePath": "$", "targetPath": "$"}]}}'
    saved = api.put(f"{url}/write", json={"text": text, "description": "Copy all"}).json()
    assert saved["version"] == 2 and saved["text"] == text
    assert saved["document"] == {"user": {"mappings": [{"sourcePath": "$", "targetPath": "$"}]}}
    history = api.get(f"{url}/write/versions").json()
    assert [v["version"] for v in history["items"]] == [2, 1]
    assert history["items"][0]["description"] == "Copy all"
    assert history["items"][0]["modifiedBy"] == "initial-admin"
    applied = api.post(f"{url}/write/versions/1/apply").json()
    assert applied["version"] == 3 and applied["document"] == current["document"]
    reset = api.post(f"{url}/write/reset", json={"to": "initial"}).json()
    assert reset["version"] == 4
    assert_problem(api.get(f"{url}/read"), 404, "not a read")
    assert_problem(api.put(f"{url}/write", json={"description": "x"}), 400, "document")
    assert set(api.get(url).json()) == {"write"}


def test_test_connection(server: LiveServer, api: httpx.Client) -> None:
    good = api.post("/systems", json=scim_target(server)).raise_for_status().json()
    result = api.post(f"/systems/{good['id']}/test").json()
    assert result["ok"] is True, result
    bad_body = scim_target(server, name="Wrong password")
    bad_body["properties"]["Password"] = "wrong"
    bad = api.post("/systems", json=bad_body).raise_for_status().json()
    result = api.post(f"/systems/{bad['id']}/test").json()
    assert result["ok"] is False and result["message"]
    assert "wrong" not in result["message"]
    lid = api.post(
        "/systems", json={"name": "LID", "type": "Local Identity Directory", "role": "source"}
    ).json()
    assert api.post(f"/systems/{lid['id']}/test").json()["ok"] is True


def test_export_and_import(server: LiveServer, api: httpx.Client) -> None:
    system = api.post("/systems", json=scim_target(server)).raise_for_status().json()
    exported = api.get(f"/systems/{system['id']}/export")
    assert "attachment" in exported.headers["content-disposition"]
    data = exported.json()
    assert server.admin[1] not in exported.text and data["credentialKeys"] == ["Password"]
    assert_problem(api.post("/systems/import", json=data), 409, "another name")
    assert_problem(
        api.post("/systems/import", params={"name": "Copy", "role": "source"}, json=data),
        400,
        "cannot be imported as a source",
    )
    imported = api.post("/systems/import", params={"name": "Copy"}, json=data)
    assert imported.status_code == 201, imported.text
    copy = imported.json()
    assert copy["role"] == "target" and copy["warnings"]
    assert "Password" not in copy["properties"]
    assert json.dumps(api.get(f"/systems/{copy['id']}/transformations/write").json()["document"])


def test_proxy_export_as_csv(server: LiveServer, api: httpx.Client) -> None:
    proxy = api.post("/systems", json={"name": "P", "type": "scim", "role": "proxy"}).json()
    exported = api.get(f"/systems/{proxy['id']}/export", params={"format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert f"/ipsproxy/service/api/v1/scim/{proxy['id']}" in exported.text
    assert '"127.0.0.1"' in exported.text
    target = api.post("/systems", json=scim_target(server)).json()
    assert_problem(api.get(f"/systems/{target['id']}/export", params={"format": "csv"}), 400)
    assert_problem(api.get(f"/systems/{target['id']}/export", params={"format": "xml"}), 400)


def test_the_api_is_documented(server: LiveServer) -> None:
    spec = httpx.get(server.url + "/openapi.json").json()
    assert "/api/v1/systems" in spec["paths"]
    assert "/api/v1/systems/{system_id}/transformations/{kind}/versions" in spec["paths"]
    changes = spec["components"]["schemas"]["SystemChanges"]["properties"]
    assert "ids of the source systems" in changes["sourceSystemIds"]["description"]
