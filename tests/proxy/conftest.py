"""Proxy systems on a live server: a helper to create them and a client with proxy_api."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisor.context import Context
from provisor.settings import Settings
from provisor.systems.model import NewSystem, System
from tests.conftest import LiveServer

PROXY_PATH = "/ipsproxy/service/api/v1/scim"


def proxy_system(server: LiveServer, type: str = "local-identity-directory", **data: Any) -> System:
    """A proxy system of ``type`` (default transformations unless given)."""
    data.setdefault("name", f"proxy-{uuid.uuid4().hex[:8]}")
    return server.services.systems.create(
        Context.administrator("test"),
        NewSystem.model_validate({"type": type, "role": "proxy", **data}),
    )


def proxy_client(server: LiveServer, system: System) -> httpx.Client:
    """A client of the proxy system's SCIM API, as a technical user with proxy_api."""
    return server.client(
        server.new_client("proxy_api"),
        path=f"{PROXY_PATH}/{system.id}",
        headers={"Accept": "application/scim+json"},
    )


@pytest.fixture
def lid_proxy(server: LiveServer) -> Iterator[tuple[System, httpx.Client]]:
    system = proxy_system(server)
    with proxy_client(server, system) as client:
        yield system, client


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, without the tenant's inbound rate limit (spec §3.13): the
    conformance testers send several hundred requests a minute."""
    return settings.model_copy(
        update={"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 0}
    )
