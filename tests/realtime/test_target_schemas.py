"""Real-time changes reach a standard SCIM target as jobs do: without what it does not
declare (decision 0019)."""

from __future__ import annotations

import json

import httpx

from provisor.context import Context
from provisor.types import EntityType
from tests.conftest import LiveServer
from tests.connectors.scim_peers import scim2_server
from tests.jobs.conftest import add_users, lid_source, system
from tests.realtime.test_realtime import BASE, states

CTX = Context.system("tests")  # the service calls a test makes directly

CUSTOM = "urn:sap:cloud:scim:schemas:extension:custom:2.0:User"


def test_a_pushed_user_reaches_scim2_server(sqlite_server: LiveServer) -> None:
    services = sqlite_server.services
    source = lid_source(services)
    ids = add_users(services, "ada", "bea")
    with scim2_server() as peer:
        system(
            services,
            name="scim2-server",
            type="scim",
            role="target",
            sourceSystemIds=[source.id],
            properties={"URL": peer.url, "Authentication": "NoAuthentication"},
        )
        with sqlite_server.client(auth=sqlite_server.new_client("realtime_api"), path=BASE) as api:
            for name in ("ada", "bea"):
                entity = json.loads(
                    services.directory.get(CTX, EntityType.USER, ids[name], "/scim").body or b""
                )
                pushed = api.post(f"/{source.id}/entities/user", json=entity)
                assert pushed.status_code == 201, pushed.text
                assert states(pushed)["scim2-server"] == ("CREATE", "Entity Created")
                [result] = [
                    s for s in pushed.json()["systems"] if s["systemName"] == "scim2-server"
                ]
                assert f"does not declare {CUSTOM}" in result["reason"]
        with httpx.Client(base_url=peer.url) as client:
            users = {u["userName"]: u for u in client.get("/Users").json()["Resources"]}
    assert set(users) == {"ada", "bea"}
    assert all(CUSTOM not in u for u in users.values())
    assert 1 <= peer.asked("Schemas") <= 2  # once per route (its connectors), not per entity
