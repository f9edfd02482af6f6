"""The proxy over LDAP (a real slapd): paging, filters, ids, PATCH, ETags and sorting."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisor.systems.model import System
from tests.conftest import LiveServer
from tests.connectors.ldap_server import LDAPServer, running_slapd
from tests.helpers import ERROR, PATCH_OP, user_body
from tests.proxy.conftest import proxy_client, proxy_system

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


def test_writes_reach_the_directory_and_discovery_tells_the_truth(
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
    config = client.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True
    assert config["sort"]["supported"] is True and config["etag"]["supported"] is True
    types = client.get("/ResourceTypes").json()["Resources"]
    assert [t["name"] for t in types] == ["User"]  # the default LDAP groups section is ignored
    assert client.get("/Groups").status_code == 404
    (schema,) = client.get("/Schemas").json()["Resources"]
    names = {a["name"] for a in schema["attributes"]}
    assert {"userName", "emails", "name"} <= names and "addresses" not in names
    by_name = {a["name"]: a for a in schema["attributes"]}
    assert by_name["userName"]["mutability"] == "immutable"  # it is the id: uid
    subs = {a["name"]: a for a in by_name["phoneNumbers"]["subAttributes"]}
    assert set(subs) == {"value", "type"} and subs["type"]["mutability"] == "readWrite"
    assert subs["type"]["canonicalValues"] == ["mobile", "work"]  # the types the read gives
    assert {a["name"] for a in by_name["name"]["subAttributes"]} == {"givenName", "familyName"}
    assert client.get("/Users/nobody").status_code == 404
    assert client.delete("/Users/nobody").status_code == 404


def test_phone_types_timestamps_and_removed_names_round_trip(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    phones = [{"value": "+1 555 0101", "type": "mobile"}, {"value": "+1 555 0100", "type": "work"}]
    created = client.post("/Users", json=user_body("erin", phoneNumbers=phones))
    assert created.status_code == 201, created.text
    entry = slapd.entry(f"uid=erin,{people}")
    assert entry is not None
    assert entry["mobile"] == ["+1 555 0101"] and entry["telephoneNumber"] == ["+1 555 0100"]
    assert created.json()["phoneNumbers"] == phones
    meta = created.json()["meta"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["created"]), meta
    assert meta["lastModified"] >= meta["created"]
    removed = client.patch(
        "/Users/erin",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "name"}]},
    )
    assert removed.status_code == 200, removed.text
    assert "name" not in removed.json()  # sn keeps the write's placeholder, not read back
    assert (slapd.entry(f"uid=erin,{people}") or {})["sn"] == ["-"]
    assert removed.json()["phoneNumbers"] == phones


def test_writes_keep_what_the_transformations_do_not_map(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    """PUT and PATCH remove what the client removed, not what the proxy never shows."""
    _, client, people = ldap_proxy
    dn, attributes = person("finn", people)
    slapd.add([(dn, {**attributes, "title": ["Boss"], "mobile": ["+1 555 0102"]})])
    put = client.put("/Users/finn", json=user_body("finn", displayName="Finn"))
    assert put.status_code == 200, put.text
    entry = slapd.entry(dn)
    assert entry is not None and entry["title"] == ["Boss"] and entry["displayName"] == ["Finn"]
    assert "mobile" not in entry  # shown to the client, left out of its PUT: removed
    patch = {"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "displayName"}]}
    assert client.patch("/Users/finn", json=patch).status_code == 200
    assert (slapd.entry(dn) or {}).get("title") == ["Boss"]


def test_patch_is_applied_to_the_entry_and_written_back(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    slapd.add([person("dora", people)])
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "replace", "path": "displayName", "value": "Dora D"},
            {"op": "add", "path": "name", "value": {"givenName": "Dora"}},
            {
                "op": "replace",
                "path": 'emails[value eq "dora@example.org"].value',
                "value": "dd@example.org",
            },
        ],
    }
    patched = client.patch("/Users/dora", json=patch)
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "Dora D"
    entry = slapd.entry(f"uid=dora,{people}")
    assert entry is not None
    assert entry["displayName"] == ["Dora D"] and entry["givenName"] == ["Dora"]
    assert entry["mail"] == ["dd@example.org"] and entry["sn"] == ["Test"]  # the rest stays
    removed = client.patch(
        "/Users/dora",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": "displayName"}]},
    )
    assert removed.status_code == 200, removed.text
    assert "displayName" not in (slapd.entry(f"uid=dora,{people}") or {})
    bad = client.patch("/Users/dora", json={"schemas": [PATCH_OP], "Operations": [{"op": "x"}]})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidSyntax"
    unknown = client.patch(
        "/Users/dora",
        json={"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "nope", "value": 1}]},
    )
    assert unknown.status_code == 400 and unknown.json()["scimType"] == "invalidPath"
    gone = client.patch("/Users/nobody", json=patch)
    assert gone.status_code == 404 and gone.json()["status"] == "404"


def test_etags_guard_writes(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    slapd.add([person("eve", people)])
    got = client.get("/Users/eve")
    tag = got.headers["ETag"]
    assert tag.startswith('W/"') and got.json()["meta"]["version"] == tag
    assert client.get("/Users/eve", headers={"If-None-Match": tag}).status_code == 304
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Eve"}],
    }
    first = client.patch("/Users/eve", json=patch, headers={"If-Match": tag})
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] != tag
    stale = client.patch("/Users/eve", json=patch, headers={"If-Match": tag})
    assert stale.status_code == 412 and stale.json()["status"] == "412"
    put = client.put("/Users/eve", json=user_body("eve"), headers={"If-Match": tag})
    assert put.status_code == 412
    assert client.delete("/Users/eve", headers={"If-Match": tag}).status_code == 412
    assert slapd.entry(f"uid=eve,{people}") is not None
    fresh = first.headers["ETag"]
    assert client.delete("/Users/eve", headers={"If-Match": fresh}).status_code == 204
    assert slapd.entry(f"uid=eve,{people}") is None


def test_sorting_and_search_by_post(
    slapd: LDAPServer, ldap_proxy: tuple[System, httpx.Client, str]
) -> None:
    _, client, people = ldap_proxy
    slapd.add([person(name, people) for name in ("mo", "Al", "zed", "bo")])
    names = client.get("/Users", params={"sortBy": "userName"}).json()
    assert [r["userName"] for r in names["Resources"]] == ["Al", "bo", "mo", "zed"]
    assert names["totalResults"] == 4
    down = client.get(
        "/Users",
        params={"sortBy": "emails.value", "sortOrder": "descending", "startIndex": 2, "count": 2},
    ).json()
    assert [r["userName"] for r in down["Resources"]] == ["mo", "bo"]
    search = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "sortBy": "userName",
        "count": 2,
        "attributes": ["userName"],
    }
    found = client.post("/Users/.search", json=search)
    assert found.status_code == 200, found.text
    assert [r["userName"] for r in found.json()["Resources"]] == ["Al", "bo"]
    assert set(found.json()["Resources"][0]) == {"schemas", "id", "userName"}
    bad = client.get("/Users", params={"sortBy": "nope"})
    assert bad.status_code == 400 and bad.json()["scimType"] == "invalidValue"
    complex_ = client.get("/Users", params={"sortBy": "name"})
    assert complex_.status_code == 400 and complex_.json()["scimType"] == "invalidValue"
    order = client.get("/Users", params={"sortBy": "userName", "sortOrder": "sideways"})
    assert order.status_code == 400 and order.json()["schemas"] == [ERROR]
    no_body = client.post("/Users/.search", json={"filter": "x"})
    assert no_body.status_code == 400 and no_body.json()["scimType"] == "invalidSyntax"
