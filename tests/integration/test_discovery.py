"""Discovery endpoints (RFC 7644 §4) of /scim and of a proxy system: filters refused, every
attribute described."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.helpers import GROUP, USER, scim_error
from tests.proxy.conftest import PROXY_PATH, proxy_client, proxy_system

CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Locker"
DISCOVERY = [
    "/ServiceProviderConfig",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/Schemas",
    f"/Schemas/{USER}",
    f"/Schemas/{GROUP}",
]


def attributes(attrs: list[dict[str, Any]], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every attribute and sub-attribute, with its path."""
    for attribute in attrs:
        path = f"{where}:{attribute['name']}"
        yield path, attribute
        yield from attributes(attribute.get("subAttributes", []), path)


def undescribed(client: httpx.Client) -> tuple[int, list[str]]:
    """(how many attributes /Schemas serves, the paths of those without a description)."""
    response = client.get("/Schemas")
    assert response.status_code == 200, response.text
    seen = [
        (path, attribute)
        for schema in response.json()["Resources"]
        for path, attribute in attributes(schema["attributes"], schema["id"])
    ]
    missing = [path for path, a in seen if not str(a.get("description", "")).strip()]
    return len(seen), missing


def test_every_attribute_of_every_schema_has_a_description(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(path="/scim") as scim:
        # a custom schema whose creator described one attribute and nothing else
        custom = {
            "id": CUSTOM,
            "attributes": [
                {"name": "number", "type": "integer", "description": "The locker's number."},
                {
                    "name": "keys",
                    "type": "complex",
                    "multiValued": True,
                    "subAttributes": [{"name": "serial", "type": "string", "description": " "}],
                },
            ],
        }
        assert scim.post("/Schemas", json=custom).status_code == 201
        total, missing = undescribed(scim)
        assert total >= 122 + 3 and missing == []  # 122 built in
        locker = scim.get(f"/Schemas/{CUSTOM}").json()
        described = {path: a["description"] for path, a in attributes(locker["attributes"], "")}
        assert described[":number"] == "The locker's number."
        assert "Locker" in described[":keys"] and "keys" in described[":keys:serial"]
        assert locker["description"]
        user = {
            path: a["description"]
            for path, a in attributes(scim.get(f"/Schemas/{USER}").json()["attributes"], "")
        }
        assert user[":userName"].startswith("Unique identifier for the User")
        assert "'Group' resource" in user[":groups:$ref"]
    system = proxy_system(sqlite_server)
    with proxy_client(sqlite_server, system) as proxy:
        total, missing = undescribed(proxy)
        assert total >= 50 and missing == []


def refused(client: httpx.Client, path: str, params: dict[str, str]) -> None:
    body = scim_error(client.get(path, params=params), 403)
    assert "scimType" not in body and "filter" in body["detail"]


def test_a_filter_on_a_discovery_endpoint_is_refused_403(sqlite_server: LiveServer) -> None:
    system = proxy_system(sqlite_server)
    with (
        sqlite_server.client(path="/scim") as scim,
        proxy_client(sqlite_server, system) as proxy,
        sqlite_server.client(
            sqlite_server.new_client("proxy_api"), path=f"/ipsproxy/api/v1/scim/{system.id}"
        ) as neo,
    ):
        for client in (scim, proxy, neo):
            for path in DISCOVERY:
                assert client.get(path).status_code == 200, (client.base_url, path)
                refused(client, path, {"filter": 'name eq "User"'})
                refused(client, path, {"Filter": ""})
    assert PROXY_PATH in str(proxy.base_url)
