"""The SCIM System and Identity Authentication connectors against real peers on loopback:
provisor's own /scim (cursor paging, also as Identity Authentication), scim2-server (index
paging), and small uvicorn servers for TLS, mTLS and misbehaving back-ends."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest

from provisor.connectors import http
from provisor.connectors.base import (
    AuthenticationFailed,
    BackendError,
    ConnectionFailed,
    ConnectorConfig,
    ConnectorError,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    Page,
    RateLimited,
    Role,
    Written,
)
from provisor.connectors.http import OAuth2ClientCredentials, retry_after
from provisor.connectors.scim import filters, patch
from provisor.connectors.scim.connector import IASConnector, SCIMConnector
from provisor.connectors.scim.types import IDENTITY_AUTHENTICATION, SCIM_SYSTEM
from provisor.errors import ConfigError
from provisor.transform import Transformation, Transformed
from provisor.transform.defaults import default_transformation
from tests.conftest import LiveServer, free_port
from tests.connectors.scim_peers import (
    PKI,
    Reply,
    SCIM2Server,
    Scripted,
    listing,
    make_pki,
    scim2_server,
    scim_json,
    serve_asgi,
)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

pytestmark = pytest.mark.anyio


# -- helpers ---------------------------------------------------------------------------------------


def make_config(
    props: Mapping[str, str],
    *,
    role: Role = Role.SOURCE,
    services: Mapping[str, Any] | None = None,
) -> ConnectorConfig:
    return ConnectorConfig(
        system_id="sys-1",
        system_name="Test system",
        role=role,
        properties=dict(props),
        services=dict(services or {}),
    )


def scim_connector(
    url: str, props: Mapping[str, str] | None = None, /, *, role: Role = Role.SOURCE, **more: str
) -> SCIMConnector:
    return SCIMConnector(make_config({"URL": url, **(props or {}), **more}, role=role))


def provisor_scim(
    server: LiveServer, props: Mapping[str, str] | None = None, /, *, role: Role = Role.SOURCE
) -> SCIMConnector:
    client_id, secret = server.admin
    credentials = {"Authentication": "BasicAuthentication", "User": client_id, "Password": secret}
    return scim_connector(server.url + "/scim", {**credentials, **(props or {})}, role=role)


def provisor_ias(
    server: LiveServer, props: Mapping[str, str] | None = None, /, *, role: Role = Role.TARGET
) -> IASConnector:
    client_id, secret = server.admin
    config = make_config(
        {"URL": server.url, "User": client_id, "Password": secret, **(props or {})}, role=role
    )
    return IASConnector(config)


def record(connector: SCIMConnector) -> list[httpx.Request]:
    """The requests the connector sends from now on (token requests included)."""
    sent: list[httpx.Request] = []

    async def hook(request: httpx.Request) -> None:
        sent.append(request)

    connector.http.client.event_hooks["request"].append(hook)
    return sent


def user(user_name: str, /, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, **extra}


def load_users(server: LiveServer, count: int, prefix: str = "user") -> list[str]:
    """Create users in the live provisor with /scim/Bulk; their ids."""
    ids: list[str] = []
    with server.client() as client:
        for start in range(0, count, 200):
            ops = [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": str(i),
                    "data": user(
                        f"{prefix}{i:04d}", emails=[{"value": f"{prefix}{i}@example.org"}]
                    ),
                }
                for i in range(start, min(count, start + 200))
            ]
            answer = client.post("/scim/Bulk", json={"schemas": [BULK], "Operations": ops})
            assert answer.status_code == 200, answer.text
            for op in answer.json()["Operations"]:
                assert op["status"] in ("201", 201), op
                ids.append(op["location"].rsplit("/", 1)[-1])
    return ids


async def read_all(connector: SCIMConnector, entity_type: str, **kwargs: Any) -> list[Page]:
    return [page async for page in connector.read(entity_type, **kwargs)]


@pytest.fixture
def peer() -> Iterator[SCIM2Server]:
    with scim2_server() as server:
        yield server


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


# -- connector types -------------------------------------------------------------------------------


def test_types_declare_properties_and_seeds() -> None:
    scim, ias = SCIM_SYSTEM, IDENTITY_AUTHENTICATION
    assert (scim.id, scim.name, scim.prefix) == ("scim", "SCIM System", "scim")
    assert (ias.id, ias.prefix, ias.known_prefixes) == ("identity-authentication", "ias", ("scim",))
    assert "Identity Directory" in ias.aliases
    assert ias.implementation.endswith(":IASConnector")
    seeds = ias.seeded_properties(Role.TARGET)
    assert seeds["ias.user.unique.attribute"] == "userName"
    assert seeds["ias.api.version"] == "2"
    assert "ias.user.unique.attribute" not in ias.seeded_properties(Role.SOURCE)
    assert ias.spec("ias.patch.group.members.above.threshold").default == "20000"  # type: ignore[union-attr]
    assert ias.spec("ias.group.unique.attribute").default == (  # type: ignore[union-attr]
        "['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']"
    )
    assert scim.spec("scim.group.unique.attribute").default == "displayName"  # type: ignore[union-attr]
    assert scim.credential_keys == {"Password"}
    assert ias.problems(
        Role.TARGET, {"URL": "https://t.example", "ias.bulk.operations.max.count": "101"}
    )
    assert ias.problems(
        Role.TARGET, {"ias.patch.group.members.above.threshold": "20001"}, complete=False
    )
    assert scim.problems(Role.SOURCE, {}) == ["URL: required for a source SCIM System system"]
    assert not scim.problems(
        Role.SOURCE,
        {"URL": "http://h", "scim.user.filter": 'userName eq "a"', "TrustAll": "true"},
    )


def test_types_module_does_not_import_httpx() -> None:
    code = "import sys, provisor.connectors.scim.types; print('httpx' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_filters_and_patch_units() -> None:
    assert filters.attribute_path("emails[0].value") == "emails.value"
    assert filters.attribute_path("$.userName") == "userName"
    assert (
        filters.attribute_path("['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']")
        == "urn:sap:cloud:scim:schemas:extension:custom:2.0:Group:name"
    )
    assert filters.attribute_path(f"{ENTERPRISE}:employeeNumber") == f"{ENTERPRISE}:employeeNumber"
    assert filters.equals("userName", 'a"b\\c') == 'userName eq "a\\"b\\\\c"'
    assert filters.both('a eq "1" or b eq "2"', 'c gt "3"') == '(a eq "1" or b eq "2") and c gt "3"'
    assert filters.split_unique("userName, emails[0].value") == ("userName", "emails[0].value")
    old = {
        "id": "1",
        "userName": "a",
        "name": {"givenName": "A", "familyName": "B"},
        "title": "x",
        ENTERPRISE: {"employeeNumber": "1", "manager": {"value": "m1"}},
    }
    new = {
        "userName": "a",
        "name": {"givenName": "Z", "familyName": "B"},
        ENTERPRISE: {"manager": {"value": "m2"}},
        "emails": [{"value": "e@x"}],
    }
    ops = patch.changes(old, new)
    assert {"op": "replace", "path": "name.givenName", "value": "Z"} in ops
    assert {"op": "remove", "path": "title"} in ops
    assert {"op": "remove", "path": f"{ENTERPRISE}:employeeNumber"} in ops
    assert {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "m2"} in ops
    assert {"op": "replace", "path": "emails", "value": [{"value": "e@x"}]} in ops
    assert len(ops) == 5
    batches = list(
        patch.member_batches([{"value": str(i)} for i in range(7)], [str(i) for i in range(120)], 3)
    )
    assert [len(b[0].get("value", [])) for b in batches if b[0]["op"] == "add"] == [3, 3, 1]
    assert sum(1 for b in batches if b[0]["op"] == "remove") == 40  # min(threshold, 50) each


# -- reading ---------------------------------------------------------------------------------------


async def test_full_read_with_cursor_paging(sqlite_server: LiveServer) -> None:
    ids = load_users(sqlite_server, 260)
    async with provisor_scim(sqlite_server) as connector:
        sent = record(connector)
        pages = await read_all(connector, "user")
    assert [len(p.entities) for p in pages] == [100, 100, 60]
    assert sorted(e["id"] for p in pages for e in p.entities) == sorted(ids)
    assert pages[-1].delta_token and all(p.delta_token is None for p in pages[:-1])
    firsts = [page.entities[0]["id"] for page in pages]
    assert [r.url.params.get("startId") for r in sent] == ["initial", firsts[1], firsts[2]]


async def test_full_read_with_index_paging(peer: SCIM2Server) -> None:
    async with scim_connector(peer.url, {"scim.page.size": "100"}) as connector:
        created = await connector.create_many("user", [user(f"u{i:03d}") for i in range(255)])
        assert all(isinstance(w, Written) for w in created)
        sent = record(connector)
        pages = await read_all(connector, "user")
    assert [len(p.entities) for p in pages] == [100, 100, 55]
    assert len({e["id"] for p in pages for e in p.entities}) == 255
    assert [r.url.params.get("startIndex") for r in sent] == [None, "101", "201"]


async def test_user_filter_and_group_read_with_members(sqlite_server: LiveServer) -> None:
    ids = load_users(sqlite_server, 12)
    async with provisor_scim(sqlite_server, role=Role.TARGET) as target:
        team = await target.create(
            "group",
            {"schemas": [GROUP], "displayName": "team", "members": [{"value": i} for i in ids[:5]]},
        )
        await target.create("group", {"schemas": [GROUP], "displayName": "empty"})
    props = {
        "scim.user.filter": 'userName sw "user000"',
        "scim.group.filter": 'displayName eq "team"',
    }
    async with provisor_scim(sqlite_server, props) as source:
        users = [e for p in await read_all(source, "user") for e in p.entities]
        assert sorted(u["userName"] for u in users) == [f"user{i:04d}" for i in range(10)]
        groups = [e for p in await read_all(source, "group") for e in p.entities]
        assert [g["id"] for g in groups] == [team.id]
        assert sorted(m["value"] for m in groups[0]["members"]) == sorted(ids[:5])
    props["scim.group.members.paging.enabled"] = "true"
    async with provisor_scim(sqlite_server, props) as source:
        sent = record(source)
        groups = [e for p in await read_all(source, "group") for e in p.entities]
        assert sorted(m["value"] for m in groups[0]["members"]) == sorted(ids[:5])
        assert sent[0].url.params["excludedAttributes"] == "members"
        assert sent[1].url.path.endswith(f"/Groups/{team.id}")
        assert sent[1].url.params["attributes"] == "members"


async def test_delta_read(sqlite_server: LiveServer) -> None:
    ids = load_users(sqlite_server, 5)
    props = {
        "ips.delta.read": "enabled",
        "scim.user.filter": 'userName sw "user" or userName sw "x"',
    }
    async with provisor_scim(sqlite_server, props) as connector:
        pages = await read_all(connector, "user")
        token = pages[-1].delta_token
        assert token is not None and sum(len(p.entities) for p in pages) == 5
        nothing = await read_all(connector, "user", delta=token)
        assert [p.entities for p in nothing] == [[]] and nothing[-1].delta_token == token
        await anyio.sleep(0.01)
        await connector.update("user", ids[2], user("user0002", displayName="changed"))
        sent = record(connector)
        changed = await read_all(connector, "user", delta=token)
    assert [e["id"] for p in changed for e in p.entities] == [ids[2]]
    assert changed[-1].delta_token is not None and changed[-1].delta_token > token
    assert sent[0].url.params["filter"] == (
        f'(userName sw "user" or userName sw "x") and meta.lastModified gt "{token}"'
    )


async def test_paging_survives_servers_that_ignore_count_or_miscount() -> None:
    users = [{"id": f"id{i}", "userName": f"u{i}"} for i in range(7)]
    app = Scripted()
    # totalResults equal to the page size (a known bug): read on until an empty page
    app.script(
        "/wrong-total/Users",
        listing(users[:3], total=3),
        listing(users[3:6], total=3),
        listing(users[6:], total=3),
    )
    # a server ignoring count and startIndex: everything, every time
    app.script("/ignores-all/Users", listing(users))
    with serve_asgi(app) as port:
        async with scim_connector(
            f"http://127.0.0.1:{port}/wrong-total", {"scim.page.size": "3"}
        ) as c:
            pages = await read_all(c, "user")
            assert [e["id"] for p in pages for e in p.entities] == [u["id"] for u in users]
        async with scim_connector(
            f"http://127.0.0.1:{port}/ignores-all", {"scim.page.size": "3"}
        ) as c:
            pages = await read_all(c, "user")
            assert [e["id"] for p in pages for e in p.entities] == [u["id"] for u in users]


async def test_get_and_find_with_quoting(peer: SCIM2Server, sqlite_server: LiveServer) -> None:
    odd = 'o\'brien "the" \\ one'
    for connector in (scim_connector(peer.url), provisor_scim(sqlite_server, role=Role.TARGET)):
        async with connector:
            created = await connector.create(
                "user",
                user(
                    odd,
                    externalId="ext-1",
                    emails=[{"value": "ob@example.org"}],
                    **{ENTERPRISE: {"employeeNumber": "E 1"}},
                ),
            )
            await connector.create("user", user("other", externalId="ext-2"))
            assert created.entity is not None and created.entity["userName"] == odd
            got = await connector.get("user", created.id)
            assert got is not None and got["userName"] == odd
            assert await connector.get("user", "no-such-id") is None
            for attribute, value in [
                ("userName", odd),
                ("emails[0].value", "ob@example.org"),
                ("externalId", "ext-1"),
                (f"{ENTERPRISE}:employeeNumber", "E 1"),
            ]:
                found = await connector.find("user", attribute, value)
                assert [f["id"] for f in found] == [created.id], attribute
            assert await connector.find("user", "userName", 'o"') == []


# -- writing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("peer_kind", ["provisor", "scim2-server"])
async def test_create_update_delete(peer_kind: str, request: pytest.FixtureRequest) -> None:
    if peer_kind == "provisor":
        connector = provisor_scim(request.getfixturevalue("sqlite_server"), role=Role.TARGET)
    else:
        connector = scim_connector(request.getfixturevalue("peer").url, role=Role.TARGET)
    async with connector:
        written = await connector.create("user", user("ada", name={"givenName": "Ada"}))
        assert written.entity is not None and written.entity["id"] == written.id
        updated = await connector.update("user", written.id, user("ada", displayName="Ada L."))
        assert updated.id == written.id
        got = await connector.get("user", written.id)
        assert got is not None and got["displayName"] == "Ada L." and "name" not in got  # PUT
        with pytest.raises(EntityConflict):
            await connector.create("user", user("ada"))
        with pytest.raises(InvalidEntity, match=r"userName|required|invalid"):
            await connector.create("user", {"schemas": [USER], "displayName": "no name"})
        await connector.delete("user", written.id)
        assert await connector.get("user", written.id) is None
        with pytest.raises(EntityNotFound):
            await connector.delete("user", written.id)


@pytest.mark.parametrize("peer_kind", ["provisor", "scim2-server"])
async def test_update_with_patch(peer_kind: str, request: pytest.FixtureRequest) -> None:
    props = {
        "scim.support.patch.operation": "true",
        "scim.include.if.match.wildcard.header": "true",
    }
    if peer_kind == "provisor":
        connector = provisor_scim(request.getfixturevalue("sqlite_server"), props, role=Role.TARGET)
    else:
        connector = scim_connector(request.getfixturevalue("peer").url, props, role=Role.TARGET)
    async with connector:
        before = user(
            "grace",
            name={"givenName": "Grace", "familyName": "Hopper"},
            title="RAdm",
            **{ENTERPRISE: {"employeeNumber": "7"}},
        )
        written = await connector.create("user", before)
        sent = record(connector)
        after = user(
            "grace",
            name={"givenName": "Grace B.", "familyName": "Hopper"},
            **{ENTERPRISE: {"employeeNumber": "8"}},
        )
        await connector.update("user", written.id, after, previous=before)
        assert [r.method for r in sent] == ["PATCH"]
        assert sent[0].headers["If-Match"] == "*"
        assert sent[0].headers["Content-Type"] == "application/scim+json"
        operations = json.loads(sent[0].content)["Operations"]
        assert sorted(op["path"] for op in operations) == sorted(
            ["name.givenName", "title", f"{ENTERPRISE}:employeeNumber"]
        )
        got = await connector.get("user", written.id)
        assert got is not None
        assert got["name"] == {"givenName": "Grace B.", "familyName": "Hopper"}
        assert "title" not in got and got[ENTERPRISE]["employeeNumber"] == "8"
        # without the previous state: every attribute present is replaced
        await connector.update("user", written.id, user("grace", displayName="G"))
        body = json.loads(sent[-1].content)
        assert body["Operations"] == [
            {"op": "replace", "value": {"userName": "grace", "displayName": "G"}}
        ]
        got = await connector.get("user", written.id)
        assert (
            got is not None and got["displayName"] == "G" and got["name"]["familyName"] == "Hopper"
        )
        await connector.delete("user", written.id)
        assert sent[-1].headers["If-Match"] == "*"


@pytest.mark.parametrize("peer_kind", ["provisor", "scim2-server"])
async def test_group_update_with_patch(peer_kind: str, request: pytest.FixtureRequest) -> None:
    props = {"scim.support.patch.operation": "true"}
    if peer_kind == "provisor":
        server: LiveServer = request.getfixturevalue("sqlite_server")
        ids = load_users(server, 4)
        connector = provisor_scim(
            server, {**props, "scim.patch.group.members.of.nested.groups": "true"}, role=Role.TARGET
        )
    else:
        connector = scim_connector(request.getfixturevalue("peer").url, props, role=Role.TARGET)
    async with connector:
        if peer_kind != "provisor":
            ids = [(await connector.create("user", user(f"m{i}"))).id for i in range(4)]
        inner = await connector.create("group", {"schemas": [GROUP], "displayName": "inner"})
        group = {"schemas": [GROUP], "displayName": "outer"}
        existing = [{"value": ids[0], "type": "User"}, {"value": ids[1], "type": "User"}]
        if peer_kind == "provisor":  # a nested group the source does not know
            existing.append({"value": inner.id, "type": "Group"})
        created = await connector.create("group", {**group, "members": existing})
        sent = record(connector)
        wanted = {**group, "members": [{"value": ids[1]}, {"value": ids[2]}, {"value": ids[3]}]}
        await connector.update("group", created.id, wanted, previous={**group, "members": existing})
        assert [r.method for r in sent] == ["PATCH"]
        operations = json.loads(sent[0].content)["Operations"]
        assert operations == [
            {"op": "remove", "path": f'members[value eq "{ids[0]}"]'},
            {"op": "add", "path": "members", "value": [{"value": ids[2]}, {"value": ids[3]}]},
        ]
        got = await connector.get("group", created.id)
        assert got is not None
        expected = {ids[1], ids[2], ids[3]} | ({inner.id} if peer_kind == "provisor" else set())
        assert {m["value"] for m in got["members"]} == expected


async def test_large_group_members_are_patched_in_batches(sqlite_server: LiveServer) -> None:
    ids = load_users(sqlite_server, 130)
    async with provisor_ias(
        sqlite_server, {"ias.patch.group.members.above.threshold": "60"}
    ) as ias:
        assert ias.base_url == sqlite_server.url + "/scim"
        sent = record(ias)
        group = {"schemas": [GROUP], "displayName": "big"}
        created = await ias.create("group", {**group, "members": [{"value": i} for i in ids[:100]]})
        assert [r.method for r in sent] == ["POST", "PATCH", "PATCH"]  # members: 60 + 40
        assert "members" not in json.loads(sent[0].content)
        first = {**group, "members": [{"value": i, "type": "User"} for i in ids[:100]]}
        wanted = {
            **group,
            "displayName": "big!",
            "members": [{"value": i} for i in ids[70:130]] + [{"value": ids[0]}],
        }
        sent.clear()
        await ias.update("group", created.id, wanted, previous={**first, "id": created.id})
        patches = [json.loads(r.content)["Operations"] for r in sent]
        assert all(r.method == "PATCH" for r in sent)
        assert patches[0] == [{"op": "replace", "path": "displayName", "value": "big!"}]
        removals = [ops[0] for ops in patches if ops[0]["op"] == "remove"]
        additions = [ops[0] for ops in patches if ops[0]["op"] == "add"]
        assert [r["path"].count(" or ") + 1 for r in removals] == [50, 19]  # ids[1:70]
        assert [len(a["value"]) for a in additions] == [30]  # ids[100:130]
        got = await ias.get("group", created.id)
        assert got is not None and got["displayName"] == "big!"
        assert sorted(m["value"] for m in got["members"]) == sorted([ids[0], *ids[70:130]])
        # without the previous state, the members are read from the target first
        sent.clear()
        await ias.update(
            "group", created.id, {**group, "members": [{"value": i} for i in ids[:61]]}
        )
        assert sent[0].method == "GET" and sent[0].url.params["attributes"] == "members"
        got = await ias.get("group", created.id)
        assert got is not None and sorted(m["value"] for m in got["members"]) == sorted(ids[:61])
        # below the threshold: one PUT
        sent.clear()
        await ias.update("group", created.id, {**group, "members": [{"value": ids[5]}]})
        assert [r.method for r in sent] == ["PUT"]
        # change_members: small changes in one PATCH, large ones in batches
        sent.clear()
        await ias.change_members(created.id, add=ids[:55], remove=[ids[5]])
        assert [[op["op"] for op in json.loads(r.content)["Operations"]] for r in sent] == [
            ["remove", "add"]
        ]
        sent.clear()
        await ias.change_members(created.id, add=ids[55:130], remove=ids[:55])
        operations = [json.loads(r.content)["Operations"] for r in sent]
        assert [(ops[0]["op"], len(ops)) for ops in operations] == [
            ("remove", 1),
            ("remove", 1),
            ("add", 1),
            ("add", 1),
        ]
        assert len(operations[-1][0]["value"]) == 75 - 60
        await ias.change_members(created.id, add=ids[:55], remove=ids[55:130])
        got = await ias.get("group", created.id)
        assert got is not None and len(got["members"]) == 55


@pytest.mark.parametrize("peer_kind", ["provisor", "scim2-server"])
async def test_bulk_creates(peer_kind: str, request: pytest.FixtureRequest) -> None:
    props = {"scim.support.bulk.operation": "true", "scim.bulk.operations.max.count": "20"}
    if peer_kind == "provisor":
        connector = provisor_scim(request.getfixturevalue("sqlite_server"), props, role=Role.TARGET)
    else:
        connector = scim_connector(request.getfixturevalue("peer").url, props, role=Role.TARGET)
    async with connector:
        assert connector.capabilities.bulk
        await connector.discover()  # once, before the first write
        sent = record(connector)
        entities = [user(f"bulk{i}") for i in range(45)]
        entities[30] = user("bulk3")  # a duplicate of entities[3]
        results = await connector.create_many("user", entities)
        assert [r.url.path.rsplit("/", 1)[-1] for r in sent] == ["Bulk"] * 3
        assert len(results) == 45
        assert isinstance(results[30], EntityConflict)
        written = [r for r in results if isinstance(r, Written)]
        assert len(written) == 44
        got = await connector.get("user", written[10].id)
        assert got is not None and got["userName"] == "bulk10"


async def test_test_connection(sqlite_server: LiveServer, peer: SCIM2Server) -> None:
    load_users(sqlite_server, 3)
    async with provisor_ias(sqlite_server) as ias:
        text = await ias.test_connection()
        assert "Identity Authentication" in text and "3 users" in text and "HTTP Basic" in text
    async with scim_connector(peer.url) as connector:
        assert "/v2/Users" in await connector.test_connection()
    async with scim_connector(sqlite_server.url + "/health") as wrong:
        with pytest.raises(ConnectorError):
            await wrong.test_connection()


# -- authentication --------------------------------------------------------------------------------


@pytest.mark.parametrize("auth_type", ["Basic", "Form"])
async def test_oauth_client_credentials(sqlite_server: LiveServer, auth_type: str) -> None:
    load_users(sqlite_server, 2)
    client_id, secret = sqlite_server.admin
    connector = scim_connector(
        sqlite_server.url + "/scim",
        User=client_id,
        Password=secret,
        OAuth2TokenServiceURL=sqlite_server.url + "/oauth2/token",
        AuthType=auth_type,
    )
    async with connector:
        sent = record(connector)
        assert "OAuth 2.0" in await connector.test_connection()
        await connector.test_connection()
        token_requests = [r for r in sent if r.url.path == "/oauth2/token"]
        assert len(token_requests) == 1  # cached
        form = dict(httpx.QueryParams(token_requests[0].content.decode()))
        assert form["grant_type"] == "client_credentials"
        if auth_type == "Basic":
            assert token_requests[0].headers["Authorization"].startswith("Basic ")
            assert "client_secret" not in form
        else:
            assert "Authorization" not in token_requests[0].headers
            assert form["client_id"] == client_id and form["client_secret"] == secret
        api = [r for r in sent if r.url.path.startswith("/scim")]
        assert all(r.headers["Authorization"].startswith("Bearer ") for r in api)
        # a token the server no longer accepts: fetched again once, the request succeeds
        auth = connector.http.auth
        assert isinstance(auth, OAuth2ClientCredentials)
        auth._token = "revoked"
        pages = [p async for p in connector.read("user")]
        assert len(pages[0].entities) == 2
        assert auth.fetched == 2


async def test_bad_credentials(sqlite_server: LiveServer) -> None:
    async with scim_connector(sqlite_server.url + "/scim", User="nobody", Password="wrong") as c:
        with pytest.raises(AuthenticationFailed, match="401"):
            await c.test_connection()
    connector = scim_connector(
        sqlite_server.url + "/scim",
        User=sqlite_server.admin[0],
        Password="wrong",
        OAuth2TokenServiceURL=sqlite_server.url + "/oauth2/token",
    )
    async with connector:
        with pytest.raises(AuthenticationFailed, match="token service") as caught:
            await connector.test_connection()
        assert "wrong" not in str(caught.value)
    with pytest.raises(ConfigError, match="no active outbound certificate"):
        scim_connector(sqlite_server.url, Authentication="ClientCertificateAuthentication")


async def test_extra_headers_never_override_credentials(sqlite_server: LiveServer) -> None:
    load_users(sqlite_server, 1)
    headers = {"ips.http.header.X-Tenant": "t1", "ips.http.header.Authorization": "Bearer forged"}
    async with provisor_scim(sqlite_server, headers) as connector:
        sent = record(connector)
        await connector.test_connection()
    assert sent[0].headers["X-Tenant"] == "t1"
    assert sent[0].headers["Authorization"].startswith("Basic ")


# -- failures of the connection and of the back-end ---------------------------------------------


async def test_unreachable_port() -> None:
    port = free_port()
    async with scim_connector(f"http://127.0.0.1:{port}/scim") as connector:
        with pytest.raises(ConnectionFailed, match=f"127.0.0.1:{port} refused") as caught:
            await connector.get("user", "x")
        assert caught.value.retryable


async def test_tls_verification_and_trust_all(pki: PKI) -> None:
    app = Scripted()
    app.script("/scim/Users", listing([]))
    with serve_asgi(
        app, ssl_certfile=str(pki.server_cert), ssl_keyfile=str(pki.server_key)
    ) as port:
        url = f"https://127.0.0.1:{port}/scim"
        async with scim_connector(url) as connector:
            with pytest.raises(
                ConnectionFailed, match=r"TLS handshake with https://127\.0\.0\.1:"
            ) as caught:
                await connector.test_connection()
            assert "certificate verify failed" in str(caught.value)
        async with scim_connector(url, TrustAll="true") as connector:
            assert "0 users" in await connector.test_connection()
        async with scim_connector(f"http://127.0.0.1:{port}/scim") as plain:
            with pytest.raises(ConnectionFailed):
                await plain.test_connection()


async def test_client_certificate_authentication(pki: PKI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # the client trusts the test CA
    app = Scripted()
    app.script("/scim/Users", listing([]))
    tls = {
        "ssl_certfile": str(pki.server_cert),
        "ssl_keyfile": str(pki.server_key),
        "ssl_ca_certs": str(pki.ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }
    with serve_asgi(app, **tls) as port:
        url = f"https://127.0.0.1:{port}/scim"
        certified = SCIMConnector(
            make_config(
                {"URL": url, "Authentication": "ClientCertificateAuthentication"},
                services={"certificates": Lent(pki.client_cert, pki.client_key)},
            )
        )
        async with certified:
            assert "client certificate" in await certified.test_connection()
        async with scim_connector(url, Authentication="NoAuthentication") as anonymous:
            with pytest.raises(ConnectionFailed, match=r"TLS|closed") as caught:
                await anonymous.test_connection()
            assert "127.0.0.1" in str(caught.value)
        stranger = SCIMConnector(
            make_config(
                {"URL": url, "Authentication": "ClientCertificateAuthentication"},
                services={"certificates": Lent(pki.stranger_cert, pki.stranger_key)},
            )
        )
        async with stranger:
            with pytest.raises(ConnectionFailed):
                await stranger.test_connection()
    with pytest.raises(ConfigError, match="cannot be loaded"):
        SCIMConnector(
            make_config(
                {"URL": url, "Authentication": "ClientCertificateAuthentication"},
                services={"certificates": Lent(pki.stranger_cert, pki.client_key)},
            )
        )
    with pytest.raises(ConfigError, match="no active outbound certificate"):
        SCIMConnector(
            make_config({"URL": url, "Authentication": "ClientCertificateAuthentication"})
        )
    with pytest.raises(ConfigError, match="ProxyType=OnPremise"):
        SCIMConnector(
            make_config(
                {
                    "URL": url,
                    "Authentication": "ClientCertificateAuthentication",
                    "ProxyType": "OnPremise",
                },
                services={"certificates": Lent(pki.client_cert, pki.client_key)},
            )
        )


class Lent:
    """A system's active client certificate, as the certificate service lends it."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.pair = (cert.read_text(), key.read_text())

    def active_pair(self, system_id: str) -> tuple[str, str]:
        return self.pair


async def test_malformed_and_failing_back_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await anyio.sleep(seconds)

    monkeypatch.setattr(http, "anyio", SimpleNamespace(Lock=anyio.Lock, sleep=sleep))  # its own
    app = Scripted()
    html = (200, {"Content-Type": "text/html"}, b"<html><body>Login</body></html>")
    app.script("/html/Users/1", html)
    app.script("/garbage/Users/1", (200, {"Content-Type": "application/json"}, b'{"id": "1",'))
    app.script("/down/Users/1", (500, {"Content-Type": "text/plain"}, b"boom"))
    app.script(
        "/busy/Users/1",
        (429, {"Retry-After": "1"}, b""),
        (200, *scim_json({"id": "1", "userName": "a"})),
    )
    app.script("/slow-down/Users/1", (429, {"Retry-After": "120"}, b""))
    app.script(
        "/invalid/Users",
        (
            400,
            *scim_json({"status": "400", "scimType": "invalidValue", "detail": "userName is bad"}),
        ),
    )
    app.script("/invalid/Users/1", (409, *scim_json({"status": "409", "detail": "taken"})))
    app.script("/moved/Users/1", (302, {"Location": "https://idp.example/logon?t=secret"}, b""))
    with serve_asgi(app) as port:
        base = f"http://127.0.0.1:{port}"
        async with scim_connector(base + "/moved") as c:
            with pytest.raises(ConnectorError, match="redirects") as redirected:
                await c.get("user", "1")
            assert "https://idp.example/logon;" in str(redirected.value)
            assert "secret" not in str(redirected.value)
        async with scim_connector(base + "/html") as c:
            with pytest.raises(BackendError, match="text/html, not JSON"):
                await c.get("user", "1")
        async with scim_connector(base + "/garbage") as c:
            with pytest.raises(BackendError, match="not JSON"):
                await c.get("user", "1")
        async with scim_connector(base + "/down") as c:
            with pytest.raises(BackendError, match="HTTP 500") as caught:
                await c.get("user", "1")
            assert caught.value.retryable
        async with scim_connector(base + "/busy") as c:
            got = await c.get("user", "1")
            assert got == {"id": "1", "userName": "a"} and waits == [1.0], "Retry-After waited"
        async with scim_connector(base + "/slow-down") as c:
            with pytest.raises(RateLimited) as limited:
                await c.get("user", "1")
            assert limited.value.retry_after == 120 and limited.value.retryable
        async with scim_connector(base + "/invalid") as c:
            with pytest.raises(InvalidEntity, match="invalidValue: userName is bad"):
                await c.create("user", user("x"))
            with pytest.raises(EntityConflict, match="taken"):
                await c.update("user", "1", user("x"))
    retry_date = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert retry_after(retry_date) == 0


async def test_csrf_token_and_ias_v1_paths() -> None:
    app = Scripted()
    tokens = iter(["tok-1", "tok-2"])
    accepted: set[str] = set()

    def handler(method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        if headers.get("x-csrf-token") == "Fetch":
            token = next(tokens)
            accepted.clear()
            accepted.add(token)
            return 200, {"X-CSRF-Token": token, "Content-Type": "application/json"}, b"{}"
        if method == "POST":
            if headers.get("x-csrf-token") not in accepted or headers["x-csrf-token"] == "tok-1":
                return 403, {"X-CSRF-Token": "Required"}, b""  # tok-1 has expired
            return 201, *scim_json({"id": "new", **json.loads(body)})
        return None

    app.handler = handler
    app.script("/service/scim/Users", listing([{"id": "v1"}]))
    with serve_asgi(app) as port:
        base = f"http://127.0.0.1:{port}"
        props = {
            "scim.api.csrf.protection": "enabled",
            "scim.csrf.token.path": "/Users?count=1",
        }
        async with scim_connector(base + "/api", props) as c:
            written = await c.create("user", user("x"))
            assert written.id == "new"
        fetches = [r for r in app.requests if r[2].get("x-csrf-token") == "Fetch"]
        assert [r[1] for r in fetches] == ["/api/Users", "/api/Users"]  # expired once
        posts = [r[2]["x-csrf-token"] for r in app.requests if r[0] == "POST"]
        assert posts == ["tok-1", "tok-2"]
        v1 = IASConnector(make_config({"URL": base, "ias.api.version": "1", "scim.page.size": "5"}))
        async with v1:
            assert v1.options.prefixes == ("scim",)
            pages = await read_all(v1, "user")
            assert [e["id"] for p in pages for e in p.entities] == ["v1"]
            assert v1.unique_attributes("group") == ("displayName",)
    ias2 = IASConnector(
        make_config(
            {"URL": "https://t.example/", "ias.user.unique.attribute": "userName,emails[0].value"}
        )
    )
    assert ias2.base_url == "https://t.example/scim"
    assert ias2.unique_attributes("user") == ("userName", "emails[0].value")
    assert ias2.unique_attributes("group") == (
        "['urn:sap:cloud:scim:schemas:extension:custom:2.0:Group']['name']",
    )
    await ias2.aclose()


# -- end to end ------------------------------------------------------------------------------------


async def test_users_flow_from_provisor_to_scim2_server(
    sqlite_server: LiveServer, peer: SCIM2Server
) -> None:
    with sqlite_server.client() as client:
        for i in range(30):
            body = user(
                f"flow{i}",
                name={"givenName": f"G{i}", "familyName": "F"},
                emails=[{"value": f"flow{i}@example.org"}],
                **{ENTERPRISE: {"employeeNumber": str(i)}},
            )
            assert client.post("/scim/Users", json=body).status_code == 201
    read = Transformation(default_transformation("scim", "read"))
    write = Transformation(default_transformation("scim", "write"))
    async with (
        provisor_scim(sqlite_server) as source,
        scim_connector(peer.url, role=Role.TARGET) as target,
    ):
        async for page in source.read("user"):
            for entity in page.entities:
                intermediate = read.apply("user", entity)
                assert isinstance(intermediate, Transformed)
                outgoing = write.apply("user", intermediate.document, operation="create")
                assert isinstance(outgoing, Transformed)
                written = await target.create("user", outgoing.document)
                assert written.id and written.id != entity["id"]
        found = await target.find("user", "userName", "flow7")
        assert len(found) == 1
        assert found[0]["emails"] == [{"value": "flow7@example.org", "primary": True}]
        assert ENTERPRISE not in found[0]  # removed by the write transformation
        everyone = [e for p in await read_all(target, "user") for e in p.entities]
        assert len(everyone) == 30
