"""The proxy keeps its back-end's connector between requests: one TCP connection serves many
calls, a new system version gets a new connector (the old one is closed), and systems with
other credentials never share a connection. Counted by a real uvicorn back-end on loopback,
which records the client port (one per TCP connection) and the credentials of each request."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from provisor.context import Context
from provisor.proxy.backends import Backends
from provisor.systems.model import SystemChanges
from tests.conftest import LiveServer
from tests.connectors.scim_peers import Scripted, listing, scim_json, serve_asgi
from tests.proxy.conftest import PROXY_PATH, proxy_client, proxy_system

USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "id": "u1",
    "userName": "ann",
    "active": True,
}


@dataclass
class Counted:
    """An ASGI app in front of ``inner`` recording, per request, the client port (its TCP
    connection) and the user of its HTTP Basic credentials."""

    inner: Any
    seen: list[tuple[int, str]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            auth = headers.get(b"authorization", b"").decode()
            user = ""
            if auth.startswith("Basic "):
                user = base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            self.seen.append((int(scope["client"][1]), user))
        await self.inner(scope, receive, send)

    def connections(self, user: str | None = None) -> set[int]:
        return {port for port, who in self.seen if user is None or who == user}


@pytest.fixture
def backend() -> Iterator[tuple[str, Counted]]:
    app = Scripted()
    app.script("/v2/Users/u1", (200, *scim_json(USER)))
    app.script("/v2/Users", listing([USER]))
    counted = Counted(app)
    with serve_asgi(counted) as port:
        yield f"http://127.0.0.1:{port}/v2", counted


def basic(user: str) -> dict[str, str]:
    return {"Authentication": "BasicAuthentication", "User": user, "Password": f"{user}-secret"}


def test_one_connection_serves_many_calls(server: LiveServer, backend: tuple[str, Counted]) -> None:
    url, peer = backend
    system = proxy_system(server, type="SCIM System", properties={"URL": url, **basic("one")})
    built = server.services.proxy.backends.built
    with proxy_client(server, system) as client:
        for _ in range(10):
            assert client.get("/Users/u1").status_code == 200
            assert client.get("/Users").status_code == 200
            assert client.get("/Users", params={"filter": 'userName eq "ann"'}).status_code == 200
    assert len(peer.seen) == 30
    assert len(peer.connections()) == 1, "one kept-alive connection for calls one after another"
    assert server.services.proxy.backends.built == built + 1, "one connector for the system"


def test_a_new_version_gets_a_new_connector(
    server: LiveServer, backend: tuple[str, Counted]
) -> None:
    """The system's credentials change: the next call goes with the new ones, on a new
    connection; the old connection is closed, never lent again."""
    url, peer = backend
    system = proxy_system(server, type="SCIM System", properties={"URL": url, **basic("old")})
    with proxy_client(server, system) as client:
        for _ in range(3):
            assert client.get("/Users/u1").status_code == 200
        server.services.systems.update(
            Context.administrator("test"),
            system.id,
            SystemChanges.model_validate({"properties": {"URL": url, **basic("new")}}),
        )
        for _ in range(3):
            assert client.get("/Users/u1").status_code == 200
    old, new = peer.connections("old"), peer.connections("new")
    assert len(old) == 1 and len(new) == 1
    assert not old & new, "the new credentials never travel on the old connection"
    assert [who for _, who in peer.seen] == ["old"] * 3 + ["new"] * 3


def test_systems_never_share_a_connection(server: LiveServer, backend: tuple[str, Counted]) -> None:
    """Two proxy systems on the same back-end with other credentials: each its own pool."""
    url, peer = backend
    first = proxy_system(server, type="SCIM System", properties={"URL": url, **basic("first")})
    second = proxy_system(server, type="SCIM System", properties={"URL": url, **basic("second")})
    with proxy_client(server, first) as one, proxy_client(server, second) as two:
        for _ in range(4):
            assert one.get("/Users/u1").status_code == 200
            assert two.get("/Users/u1").status_code == 200
    assert len(peer.connections("first")) == 1 and len(peer.connections("second")) == 1
    assert not peer.connections("first") & peer.connections("second")


def test_concurrent_calls_reuse_the_pool(server: LiveServer, backend: tuple[str, Counted]) -> None:
    """Eight callers at once, three calls each: at most one connection per caller in flight,
    reused by the next calls (a connection per call would be 24)."""
    url, peer = backend
    system = proxy_system(server, type="SCIM System", properties={"URL": url, **basic("many")})
    auth = server.new_client("proxy_api")

    def caller(_: int) -> list[int]:
        with server.client(auth, path=f"{PROXY_PATH}/{system.id}") as client:
            return [client.get("/Users/u1").status_code for _ in range(3)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for answer in pool.map(caller, range(8)) for s in answer]
    assert statuses == [200] * 24
    assert len(peer.seen) == 24
    assert len(peer.connections()) <= 8


def test_a_superseded_connector_closes_when_its_last_request_ends(
    server: LiveServer, backend: tuple[str, Counted]
) -> None:
    """A new version retires the kept connector: closed at once when idle, else when the
    request still using it ends; a connector that is not shared is closed after its call."""
    url, _ = backend
    system = proxy_system(server, type="SCIM System", properties={"URL": url, **basic("v")})
    proxy = server.services.proxy
    ctx = Context.administrator("test")
    backends = Backends(proxy._build, proxy._active_certificate)

    async def scenario() -> None:
        v1 = await proxy.compiled(ctx, system.id)
        v2 = replace(v1, system=replace(v1.system, version=v1.system.version + 1))
        v3 = replace(v1, system=replace(v1.system, version=v1.system.version + 2))
        async with backends.lend(ctx, v1, backends.key(ctx, v1)) as first:
            async with backends.lend(ctx, v1, backends.key(ctx, v1)) as again:
                assert again is first
            async with backends.lend(ctx, v2, backends.key(ctx, v2)) as second:
                assert second is not first
                assert not closed(first), "still lent to the first request"
            assert not closed(second)
        assert closed(first)
        async with backends.lend(ctx, v3, backends.key(ctx, v3)) as third:
            assert closed(second), "idle: closed at once"
        assert not closed(third)
        await backends.aclose()
        assert closed(third)
        assert backends.built == 3

    asyncio.run(scenario())


def closed(connector: Any) -> bool:
    return bool(connector.http.client.is_closed)
