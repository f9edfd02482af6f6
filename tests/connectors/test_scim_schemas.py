"""A SCIM target's /Schemas and /ResourceTypes: read once, bounded, and what it does not
declare left out of what is sent (decision 0019). Peers: scim2-server, provisor's own /scim
and scripted servers on loopback."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from provisor.connectors.base import Discovery, Fitted, Role
from provisor.connectors.scim.connector import IASConnector
from provisor.connectors.scim.schemas import MAX_ANSWER_BYTES, shapes_of
from tests.conftest import LiveServer
from tests.connectors.scim_peers import Scripted, scim2_server, serve_asgi
from tests.connectors.test_scim import (
    ENTERPRISE,
    USER,
    make_config,
    provisor_scim,
    record,
    scim_connector,
)

pytestmark = pytest.mark.anyio

SAP = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:User"


def sap_user(name: str) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE, SAP, CUSTOM],
        "userName": name,
        "emails": [{"value": f"{name}@example.org", "primary": True, "verified": True}],
        "nickname": "Nick",  # scim2-server declares nickName: names compare case-insensitively
        "shoeSize": 44,
        ENTERPRISE: {"department": "Ops", "badge": 7},
        SAP: {"userUuid": "u-1"},
        CUSTOM: {"userId": "x"},
    }


async def test_a_target_gets_only_what_it_declares_and_asks_once() -> None:
    with scim2_server() as peer:
        connector = scim_connector(peer.url, role=Role.TARGET)
        async with connector:
            created = await connector.create("user", sap_user("ann"))
            await connector.update("user", created.id, sap_user("ann"))
            await connector.create("user", sap_user("bob"))
            fitted = connector.fit("user", sap_user("cid"))
            ann = await connector.get("user", created.id)
        assert ann is not None
    assert (peer.asked("Schemas"), peer.asked("ResourceTypes")) == (1, 1)
    assert fitted.left_out == (SAP, CUSTOM, "emails.verified", "shoeSize", f"{ENTERPRISE}:badge")
    assert fitted.entity["schemas"] == [USER, ENTERPRISE]
    assert fitted.entity["nickname"] == "Nick"
    assert ann[ENTERPRISE] == {"department": "Ops"}
    assert ann["nickName"] == "Nick" and SAP not in ann and CUSTOM not in ann


async def test_provisor_as_a_target_keeps_the_sap_extensions(sqlite_server: LiveServer) -> None:
    """The Local Identity Directory describes SAP's vendor extensions under /Schemas
    without tying them to a resource type (decision 0004): they are declared."""
    connector = provisor_scim(sqlite_server, role=Role.TARGET)
    async with connector:
        discovery = await connector.discover()
        user = sap_user("dan")
        user.pop("shoeSize")
        user[ENTERPRISE].pop("badge")
        user["emails"][0].pop("verified")
        assert connector.fit("user", user) == Fitted(user)
        group = {"schemas": [USER], "displayName": "G", CUSTOM: {"userId": "x"}}
    assert discovery.fingerprint and discovery.note is None
    assert connector.fit("group", group).left_out == (USER,)  # a user's core schema


async def test_discovery_is_bounded_and_falls_back() -> None:
    app = Scripted()
    huge = json.dumps({"Resources": [{"id": "x" * 1024}] * (MAX_ANSWER_BYTES // 1024)})
    app.script("/big/Schemas", (200, {"Content-Type": "application/json"}, huge.encode()))
    bomb = gzip.compress(b" " * (MAX_ANSWER_BYTES + 1))  # small on the wire, large decoded
    app.script("/bomb/Schemas", (200, {"Content-Encoding": "gzip"}, bomb))
    app.script("/odd/Schemas", (200, {}, b'"no list"'))
    with serve_asgi(app) as port:
        notes = {}
        for name in ("big", "bomb", "odd"):
            connector = scim_connector(f"http://127.0.0.1:{port}/{name}", role=Role.TARGET)
            async with connector:
                sent = record(connector)
                notes[name] = (await connector.discover()).note
                await connector.discover()
                assert len(sent) == 1  # asked once
                assert connector.fit("user", sap_user("eve")) == Fitted(sap_user("eve"))
    larger = f"the answer is larger than {MAX_ANSWER_BYTES:,} bytes"
    assert notes["big"] == (
        f"its schemas could not be read (GET /big/Schemas: {larger}); entities are sent as "
        "the write transformation makes them"
    )
    assert larger in (notes["bomb"] or "")
    assert "GET /Schemas: the answer is not a SCIM ListResponse" in (notes["odd"] or "")
    assert len(bomb) < 10_000


async def test_sources_identity_authentication_and_the_switch_do_not_ask() -> None:
    with scim2_server() as peer:
        quiet = [
            scim_connector(peer.url, role=Role.SOURCE),
            scim_connector(peer.url, {"scim.schema.discovery": "false"}, role=Role.TARGET),
            IASConnector(make_config({"URL": peer.url}, role=Role.TARGET)),
        ]
        for connector in quiet:
            async with connector:
                assert await connector.discover() == Discovery()
        asking = IASConnector(
            make_config({"URL": peer.url, "ias.schema.discovery": "true"}, role=Role.TARGET)
        )
        async with asking:
            await asking.discover()
    assert peer.asked("Schemas") == 1


def test_resource_types_decide_which_extensions_a_type_takes() -> None:
    schemas: list[dict[str, Any]] = [
        {"id": USER, "attributes": [{"name": "userName"}]},
        {"id": ENTERPRISE, "attributes": [{"name": "department"}]},
        {"id": "urn:example:Group", "attributes": [{"name": "code"}]},
        {"id": "urn:example:Any", "attributes": [{"name": "tag"}]},
    ]
    types: list[dict[str, Any]] = [
        {"endpoint": "/Users", "schema": USER, "schemaExtensions": [{"schema": ENTERPRISE}]},
        {"name": "Group", "schema": "urn:example:core:Group", "schemaExtensions": []},
    ]
    learned = shapes_of(schemas, types)
    group = {"displayName": "G", ENTERPRISE: {}, "urn:example:any": {"tag": 1, "x": 2}}
    assert learned.fit("group", group) == Fitted(
        {"displayName": "G", "urn:example:any": {"tag": 1}},
        (ENTERPRISE, "urn:example:any:x"),
    )
    shouting = {"USERNAME": "a", ENTERPRISE.upper(): {"Department": "D"}}
    assert learned.fit("user", shouting) == Fitted(shouting)
    assert learned.note is None
    assert shapes_of(schemas, types[:1]).note == (
        "its /ResourceTypes declares no Group resource type: those are sent as the write "
        "transformation makes them"
    )
