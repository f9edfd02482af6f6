"""The proxy over a SCIM back-end (scim2-server on loopback): pages by index with the
server's total, and an eq filter sent as a SCIM filter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from provisor.systems.model import System
from tests.conftest import LiveServer
from tests.connectors.scim_peers import SCIM2Server, scim2_server
from tests.helpers import user_body
from tests.proxy.conftest import proxy_client, proxy_system


@pytest.fixture
def peer() -> Iterator[SCIM2Server]:
    with scim2_server() as running:
        yield running


def test_proxy_over_a_scim_backend(server: LiveServer, peer: SCIM2Server) -> None:
    system: System = proxy_system(
        server,
        type="SCIM System",
        properties={"URL": peer.url, "Authentication": "NoAuthentication"},
    )
    with proxy_client(server, system) as client:
        ids = []
        for i in range(7):
            created = client.post("/Users", json=user_body(f"s{i}"))
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        page = client.get("/Users", params={"startIndex": 3, "count": 2}).json()
        assert (page["totalResults"], page["itemsPerPage"], page["startIndex"]) == (7, 2, 3)
        found = client.get("/Users", params={"filter": 'userName eq "s4"'}).json()
        assert [r["id"] for r in found["Resources"]] == [ids[4]]
        assert client.delete(f"/Users/{ids[0]}").status_code == 204
        assert client.get(f"/Users/{ids[0]}").status_code == 404
