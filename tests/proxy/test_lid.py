"""The proxy over the Local Identity Directory, over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest

from provisor.context import Context
from provisor.scim.schemas import SAP_CUSTOM_GROUP, SAP_CUSTOM_USER, SAP_GROUP, SAP_USER
from provisor.systems.model import NewSystem, System
from provisor.types import EntityType
from tests.conftest import LiveServer
from tests.helpers import ENTERPRISE, ERROR, GROUP, PATCH_OP, USER, group_body, user_body
from tests.proxy.conftest import PROXY_PATH

CTX = Context.system("tests")  # the service calls a test makes directly

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def add_users(server: LiveServer, count: int, prefix: str = "u") -> list[str]:
    directory = server.services.directory
    return [
        directory.create(CTX, EntityType.USER, user_body(f"{prefix}{i:03d}"), "/scim").id
        for i in range(count)
    ]


def test_create_answers_201_with_location_and_runs_the_write_transformation(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    system, client = lid_proxy
    response = client.post("/Users", json=user_body("alice"))
    assert response.status_code == 201, response.text
    body = response.json()
    location = f"{server.url}{PROXY_PATH}/{system.id}/Users/{body['id']}"
    assert response.headers["Location"] == location
    assert body["meta"]["location"] == location
    assert body["meta"]["resourceType"] == "User"
    assert response.headers["content-type"].startswith("application/scim+json")
    stored = server.services.directory.get(CTX, EntityType.USER, body["id"], "/scim")
    assert stored.body is not None
    # the createEntity constant of the default LID proxy write transformation
    assert b'"sourceSystem":39' in stored.body.replace(b" ", b"")


def test_get_put_patch_delete_reach_the_directory(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    created = client.post("/Users", json=user_body("bob")).json()
    user_id = created["id"]
    assert client.get(f"/Users/{user_id}").json()["userName"] == "bob"

    replaced = client.put(f"/Users/{user_id}", json=user_body("bob", displayName="Bobby"))
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["displayName"] == "Bobby"

    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "displayName", "value": "Robert"}],
    }
    patched = client.patch(f"/Users/{user_id}", json=patch)
    assert patched.status_code == 200, patched.text
    assert patched.json()["displayName"] == "Robert"
    stored = server.services.directory.get(CTX, EntityType.USER, user_id, "/scim")
    assert stored.body is not None and b"Robert" in stored.body

    assert client.delete(f"/Users/{user_id}").status_code == 204
    missing = client.get(f"/Users/{user_id}")
    assert missing.status_code == 404
    assert missing.json()["schemas"] == [ERROR] and missing.json()["status"] == "404"
    assert client.delete(f"/Users/{user_id}").status_code == 404


def test_patch_runs_only_patch_entity_mappings(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    user_id = client.post("/Users", json=user_body("carol")).json()["id"]
    # the unscoped "emails[0].primary = true" mapping must not run on PATCH
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "replace", "path": "emails", "value": [{"value": "c@example.org"}]}],
    }
    answer = client.patch(f"/Users/{user_id}", json=patch).json()
    assert answer["emails"] == [{"value": "c@example.org"}]
    not_patch = client.patch(f"/Users/{user_id}", json={"displayName": "x"})
    assert not_patch.status_code == 400
    assert not_patch.json()["scimType"] == "invalidSyntax"


def test_uniqueness_conflicts_pass_through_as_409(
    lid_proxy: tuple[System, httpx.Client],
) -> None:
    _, client = lid_proxy
    assert client.post("/Users", json=user_body("dave")).status_code == 201
    again = client.post("/Users", json=user_body("dave"))
    assert again.status_code == 409
    assert again.json()["scimType"] == "uniqueness"


def test_paging_with_the_directory_total(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    ids = add_users(server, 30)
    first = client.get("/Users").json()
    assert first["schemas"] == [LIST]
    assert (first["totalResults"], first["itemsPerPage"], first["startIndex"]) == (30, 25, 1)
    seen: list[str] = []
    start = 1
    while True:
        page = client.get("/Users", params={"startIndex": start, "count": 7}).json()
        assert page["totalResults"] == 30
        seen += [r["id"] for r in page["Resources"]]
        start += page["itemsPerPage"]
        if start > page["totalResults"]:
            break
    assert sorted(seen) == sorted(ids)
    big = client.get("/Users", params={"count": 1000}).json()
    assert big["itemsPerPage"] == 30 and len(big["Resources"]) == 30
    capped = client.get("/Users", params={"count": 101, "startIndex": 1})
    assert len(capped.json()["Resources"]) == 30
    zero = client.get("/Users", params={"count": 0})
    assert zero.status_code == 400 and zero.json()["scimType"] == "invalidValue"
    for param in ("startIndex", "count"):  # fuzz finding: bigint out of range, 500 on PostgreSQL
        huge = client.get("/Users", params={param: "100000000000000000000"})
        assert huge.status_code == 400 and huge.json()["scimType"] == "invalidValue", huge.text


def test_eq_filters_through_the_read_mappings(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    (user_id,) = add_users(server, 1, prefix="erin")
    one = client.get("/Users", params={"filter": 'userName eq "ERIN000"'}).json()
    assert one["totalResults"] == 1 and one["Resources"][0]["id"] == user_id
    by_mail = client.get("/Users", params={"filter": 'emails.value eq "erin000@example.com"'})
    assert by_mail.json()["Resources"][0]["id"] == user_id
    by_id = client.get("/Users", params={"filter": f'id eq "{user_id}"'})
    assert by_id.json()["totalResults"] == 1
    none = client.get("/Users", params={"filter": 'userName eq "nobody"'}).json()
    assert none["totalResults"] == 0 and none["Resources"] == []


def test_too_many_and_bad_filters_are_scim_400s(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    directory = server.services.directory
    for name in ("f1", "f2"):
        directory.create(CTX, EntityType.USER, user_body(name, displayName="Same Name"), "/scim")
    many = client.get("/Users", params={"filter": 'displayName eq "Same Name"'})
    assert many.status_code == 400 and many.json()["scimType"] == "tooMany"
    assert many.json()["status"] == "400"
    for bad in ('userName co "f"', 'userName eq "a" or userName eq "b"', "userName eq", "x["):
        answer = client.get("/Users", params={"filter": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["scimType"] == "invalidFilter", bad
    urn = client.get(
        "/Users", params={"filter": 'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x"'}
    )
    assert urn.status_code == 400 and urn.json()["scimType"] == "invalidFilter"


def test_delta_filter_returns_what_changed_after(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    add_users(server, 3, prefix="old")
    everyone = client.get("/Users").json()["Resources"]
    newest = max(r["meta"]["lastModified"] for r in everyone)
    (fresh,) = add_users(server, 1, prefix="new")
    delta = client.get("/Users", params={"filter": f'meta.lastModified gt "{newest}"'}).json()
    assert [r["id"] for r in delta["Resources"]] == [fresh]
    wrong = client.get("/Users", params={"filter": f'meta.lastModified lt "{newest}"'})
    assert wrong.status_code == 400 and wrong.json()["scimType"] == "invalidFilter"


def test_attributes_and_excluded_attributes(lid_proxy: tuple[System, httpx.Client]) -> None:
    _, client = lid_proxy
    extra = {ENTERPRISE: {"department": "Sales", "costCenter": "42"}}
    body = user_body("gina", schemas=[USER, ENTERPRISE], **extra)
    user_id = client.post("/Users", json=body).json()["id"]
    only = client.get(f"/Users/{user_id}", params={"attributes": "userName"}).json()
    assert set(only) == {"schemas", "id", "userName"}
    without = client.get(f"/Users/{user_id}", params={"excludedAttributes": "emails,name"}).json()
    assert "emails" not in without and "name" not in without and without["userName"] == "gina"
    qualified = client.get(
        "/Users", params={"attributes": f"{ENTERPRISE}:department", "filter": 'userName eq "gina"'}
    ).json()["Resources"][0]
    assert "userName" not in qualified and qualified[ENTERPRISE] == {"department": "Sales"}
    blank = client.get(f"/Users/{user_id}", params={"attributes": " , "}).json()
    assert blank["userName"] == "gina" and "emails" in blank


def test_groups_with_members_and_membership_patch(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    a, b = add_users(server, 2, prefix="m")
    created = client.post("/Groups", json=group_body("Team", [a]))
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["schemas"][0] == GROUP and [m["value"] for m in group["members"]] == [a]
    patch = {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "add", "path": "members", "value": [{"value": b}]},
            {"op": "remove", "path": f'members[value eq "{a}"]'},
        ],
    }
    assert client.patch(f"/Groups/{group['id']}", json=patch).status_code == 200
    stored = client.get(f"/Groups/{group['id']}").json()
    assert [m["value"] for m in stored["members"]] == [b]
    found = client.get("/Groups", params={"filter": 'displayName eq "Team"'}).json()
    assert found["totalResults"] == 1


def test_permission_system_and_endpoint_checks(server: LiveServer) -> None:
    from tests.proxy.conftest import proxy_system

    system = proxy_system(server)
    base = f"{PROXY_PATH}/{system.id}"
    with server.client(server.new_client("manage_users")) as other:
        denied = other.get(f"{base}/Users")
        assert denied.status_code == 403 and denied.json()["schemas"] == [ERROR]
    with server.client(None) as anonymous:
        assert anonymous.get(f"{base}/Users").status_code == 401
    with server.client(server.new_client("proxy_api")) as client:
        unknown = client.get(f"{PROXY_PATH}/{uuid.uuid4()}/Users")
        assert unknown.status_code == 404 and unknown.json()["schemas"] == [ERROR]
        assert client.get(f"{base}/Roles").status_code == 404
        neo = client.get(f"/ipsproxy/api/v1/scim/{system.id}/Users")
        assert neo.status_code == 200 and neo.json()["schemas"] == [LIST]
        source = server.services.systems.create(
            Context.administrator("test"),
            NewSystem.model_validate(
                {"name": "src", "type": "local-identity-directory", "role": "source"}
            ),
        )
        assert client.get(f"{PROXY_PATH}/{source.id}/Users").status_code == 404
        assert client.get(f"{PROXY_PATH}/not-an-id/Users").status_code == 404
        server.services.systems.set_enabled(
            Context.administrator("test"),
            system.id,
            False,
        )
        disabled = client.get(f"{base}/Users")
        assert disabled.status_code == 503 and "disabled" in disabled.json()["detail"]
    with server.client() as admin:
        openapi = admin.get("/openapi.json").json()
        assert any(p.startswith("/ipsproxy/service/api/v1/scim/") for p in openapi["paths"])
        assert not any(p.startswith("/ipsproxy/api/v1/scim/") for p in openapi["paths"])


def test_discovery_tells_what_the_proxy_supports(lid_proxy: tuple[System, httpx.Client]) -> None:
    _, client = lid_proxy
    config = client.get("/ServiceProviderConfig").json()
    assert config["patch"]["supported"] is True
    assert config["bulk"]["supported"] is False and config["sort"]["supported"] is True
    assert config["etag"]["supported"] is True
    assert config["filter"] == {"supported": True, "maxResults": 100}
    types = client.get("/ResourceTypes").json()["Resources"]
    assert {t["endpoint"] for t in types} == {"/Users", "/Groups"}
    schemas = {s["id"] for s in client.get("/Schemas").json()["Resources"]}
    assert "urn:ietf:params:scim:schemas:core:2.0:User" in schemas
    assert client.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group").status_code == 200
    assert client.get("/ResourceTypes/User").json()["endpoint"] == "/Users"


def test_sap_extensions_are_described_and_sap_shaped_users_round_trip(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    """As on /scim (decision 0004): SAP's extensions are described under /Schemas, not
    declared by the resource types, and shown when a resource carries SAP data."""
    _, client = lid_proxy
    described = {s["id"]: s for s in client.get("/Schemas").json()["Resources"]}
    for urn in (SAP_USER, SAP_CUSTOM_USER, SAP_GROUP, SAP_CUSTOM_GROUP):
        assert described[urn]["description"] and described[urn]["attributes"], urn
    types = client.get("/ResourceTypes").json()["Resources"]
    declared = {e["schema"] for t in types for e in t["schemaExtensions"]}
    assert declared.isdisjoint({SAP_USER, SAP_CUSTOM_USER, SAP_GROUP, SAP_CUSTOM_GROUP})
    sap = {"validFrom": "2026-01-01T00:00:00Z", "emails": [{"value": "k@corp.example"}]}
    custom = {"attributes": [{"name": "customAttribute1", "value": "v1"}]}
    body = user_body(
        "kim", schemas=[USER, SAP_USER, SAP_CUSTOM_USER], **{SAP_USER: sap, SAP_CUSTOM_USER: custom}
    )
    created = client.post("/Users", json=body)
    assert created.status_code == 201, created.text
    got = client.get(f"/Users/{created.json()['id']}").json()
    assert {SAP_USER, SAP_CUSTOM_USER} <= set(got["schemas"])
    assert {k: got[SAP_USER][k] for k in sap} == sap and got[SAP_CUSTOM_USER] == custom
    assert got[SAP_USER]["sourceSystem"] == 39 and got[SAP_USER]["userUuid"]
    # a user without SAP data: the proxy's own stamp and the generated id are not shown
    plain = client.post("/Users", json=user_body("lee")).json()
    assert SAP_USER not in plain and SAP_USER not in plain["schemas"]
    stored = server.services.directory.get(CTX, EntityType.USER, plain["id"], "/scim")
    assert stored.body is not None and SAP_USER.encode() in stored.body


def test_lists_sort_and_resources_carry_etags(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client]
) -> None:
    _, client = lid_proxy
    directory = server.services.directory
    for name, title in (("kim", "b"), ("Lou", None), ("jo", "a")):
        extra = {"title": title} if title else {}
        directory.create(CTX, EntityType.USER, user_body(name, **extra), "/scim")
    by_title = client.get("/Users", params={"sortBy": "title"}).json()["Resources"]
    assert [r["userName"] for r in by_title] == ["jo", "kim", "Lou"]  # no value: last
    down = client.get("/Users", params={"sortBy": "title", "sortOrder": "descending"}).json()
    assert [r["userName"] for r in down["Resources"]] == ["Lou", "kim", "jo"]  # no value: first
    user = by_title[0]
    got = client.get(f"/Users/{user['id']}")
    assert got.headers["ETag"] == user["meta"]["version"] == got.json()["meta"]["version"]
    assert client.get(f"/Users/{user['id']}", headers={"If-None-Match": "*"}).status_code == 304
    stale = client.put(
        f"/Users/{user['id']}", json=user_body("jo"), headers={"If-Match": 'W/"other"'}
    )
    assert stale.status_code == 412 and stale.json()["schemas"] == [ERROR]


def test_sorting_reads_a_bounded_listing(
    server: LiveServer, lid_proxy: tuple[System, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, client = lid_proxy
    add_users(server, 4, prefix="s")
    monkeypatch.setattr("provisor.proxy.service.MAX_SORTED", 3)
    refused = client.get("/Users", params={"sortBy": "userName"})
    assert refused.status_code == 400 and refused.json()["scimType"] == "tooMany"
    unsorted = client.get("/Users")  # paging without sortBy reads one page only
    assert unsorted.status_code == 200 and unsorted.json()["totalResults"] == 4
