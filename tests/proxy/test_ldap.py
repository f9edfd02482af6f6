"""The proxy over LDAP (a real slapd), and scim2-tester against it."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from provisor.systems.model import System
from tests.conftest import LiveServer
from tests.connectors.ldap_server import LDAPServer, running_slapd
from tests.helpers import PATCH_OP, user_body
from tests.proxy.conftest import PROXY_PATH, proxy_client, proxy_system

trees = itertools.count()


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


def ou(dn: str) -> tuple[str, dict[str, Any]]:
    return dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]}


def person(uid: str, people: str) -> tuple[str, dict[str, Any]]:
    return f"uid={uid},{people}", {
        "objectClass": ["inetOrgPerson"],
        "uid": [uid],
        "cn": [uid],
        "sn": ["Test"],
        "mail": [f"{uid.replace(' ', '.')}@example.org"],
    }


@pytest.fixture
def ldap_proxy(server: LiveServer, slapd: LDAPServer) -> Iterator[tuple[System, httpx.Client, str]]:
    base = f"ou=p{next(trees)},{slapd.suffix}"
    people, groups = f"ou=people,{base}", f"ou=groups,{base}"
    slapd.add([ou(base), ou(people), ou(groups)])
    system = proxy_system(
        server,
        type="ldap",
        properties={
            "ldap.url": slapd.url,
            "ldap.user": slapd.bind_dn,
            "ldap.password": slapd.password,
            "ldap.user.path": people,
            "ldap.group.path": groups,
        },
    )
    with proxy_client(server, system) as client:
        yield system, client, people


def test_paging_without_a_backend_total_estimates_it(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    slapd.add([person(f"p{i:02d}", people) for i in range(12)])
    first = client.get("/Users", params={"count": 5}).json()
    # not the last page: startIndex + count (spec §5.5)
    assert (first["totalResults"], first["itemsPerPage"]) == (6, 5)
    seen, start = [], 1
    while True:
        page = client.get("/Users", params={"startIndex": start, "count": 5}).json()
        seen += [r["userName"] for r in page["Resources"]]
        start += page["itemsPerPage"]
        if start > page["totalResults"]:
            break
    assert sorted(seen) == [f"p{i:02d}" for i in range(12)]
    assert page["totalResults"] == 12  # the last page counts exactly


def test_eq_filter_becomes_an_ldap_search(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    slapd.add([person("anna", people), person("ben", people)])
    found = client.get("/Users", params={"filter": 'userName eq "anna"'}).json()
    assert [r["userName"] for r in found["Resources"]] == ["anna"]
    assert found["Resources"][0]["emails"][0]["value"] == "anna@example.org"
    by_mail = client.get("/Users", params={"filter": 'emails.value eq "ben@example.org"'}).json()
    assert [r["id"] for r in by_mail["Resources"]] == ["ben"]
    assert client.get("/Users", params={"filter": 'userName eq "x*"'}).json()["totalResults"] == 0


def test_unsafe_keys_become_encoded_ids(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    slapd.add([person("Jane Doe/2", people)])
    (resource,) = client.get("/Users").json()["Resources"]
    assert resource["id"].startswith("~") and "/" not in resource["id"]
    assert resource["meta"]["location"].endswith(f"/Users/{resource['id']}")
    got = client.get(f"/Users/{resource['id']}")
    assert got.status_code == 200 and got.json()["userName"] == "Jane Doe/2"
    put = client.put(f"/Users/{resource['id']}", json=user_body("Jane Doe/2", displayName="JD"))
    assert put.status_code == 200, put.text
    assert slapd.entry(f"uid=Jane Doe/2,{people}")["displayName"] == ["JD"]  # type: ignore[index]
    assert client.delete(f"/Users/{resource['id']}").status_code == 204
    assert slapd.entry(f"uid=Jane Doe/2,{people}") is None


def test_writes_reach_the_directory_and_patch_is_501(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    created = client.post("/Users", json=user_body("carl"))
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "carl"
    entry = slapd.entry(f"uid=carl,{people}")
    assert entry is not None and entry["mail"] == ["carl@example.com"]
    conflict = client.post("/Users", json=user_body("carl"))
    assert conflict.status_code == 409 and conflict.json()["scimType"] == "uniqueness"
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "title", "value": "x"}],
    }
    refused = client.patch("/Users/carl", json=patch)
    assert refused.status_code == 501 and refused.json()["status"] == "501"
    assert client.get("/ServiceProviderConfig").json()["patch"]["supported"] is False
    types = client.get("/ResourceTypes").json()["Resources"]
    assert [t["name"] for t in types] == ["User"]  # the default LDAP groups section is ignored
    assert client.get("/Groups").status_code == 404
    (schema,) = client.get("/Schemas").json()["Resources"]
    names = {a["name"] for a in schema["attributes"]}
    assert {"userName", "emails", "name"} <= names and "addresses" not in names
    assert client.get("/Users/nobody").status_code == 404
    assert client.delete("/Users/nobody").status_code == 404


def scim2_tester_failures(url: str, credentials: tuple[str, str]) -> list[str]:
    with Client(base_url=url, auth=credentials, timeout=60) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client, raise_exceptions=False)
    assert len(results) > 20
    return [
        f"{r.title} [{r.resource_type}]: {r.reason}"
        for r in results
        if r.status not in (Status.SUCCESS, Status.SKIPPED)
    ]


def test_scim2_tester_over_ldap(server: LiveServer, ldap_proxy: tuple[System, Any, str]) -> None:
    system, _, _ = ldap_proxy
    url = f"{server.url}{PROXY_PATH}/{system.id}"
    failures = scim2_tester_failures(url, server.new_client("proxy_api"))
    assert failures == [], "\n".join(failures)


def test_scim2_tester_over_the_local_identity_directory(server: LiveServer) -> None:
    system = proxy_system(server)
    url = f"{server.url}{PROXY_PATH}/{system.id}"
    failures = scim2_tester_failures(url, server.new_client("proxy_api"))
    assert failures == [], "\n".join(failures)
