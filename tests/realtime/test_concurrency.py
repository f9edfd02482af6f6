"""Concurrent real-time calls for one entity do one thing (issue 14 item 6): calls and jobs
that write the same source entity take turns through a lock per (source, entity type, id),
so no target gets it twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from provisor.runtime import Services
from provisor.settings import Settings
from tests.conftest import LiveServer, serve
from tests.jobs.conftest import add_users, lid_source, system
from tests.jobs.test_pipeline import csv_target, rows
from tests.security.test_exactly_once import _PlainSCIM, plain_scim  # noqa: F401

BASE = "/ipsproxy/service/api/v1/systems"
CALLS = 8


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """A live server without the tenant's budget: on PostgreSQL, pyrate-limiter refuses
    (429) a call that finds the budget's table locked by a concurrent one."""
    unlimited = {"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 0}
    with serve(settings.model_copy(update=unlimited)) as live:
        yield live


def _plain_target(services: Services, source_id: str, url: str) -> None:
    properties = {"URL": url, "Authentication": "NoAuthentication"}
    system(
        services,
        name="Plain",
        type="scim",
        role="target",
        sourceSystemIds=[source_id],
        properties=properties,
    )


def _states(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code in (200, 201), answer.text
    return {s["systemName"]: s["state"] for s in answer.json()["systems"]}


def test_eight_calls_for_one_new_user_create_it_once(
    server: LiveServer, plain_scim: str, tmp_path: Path  # noqa: F811
) -> None:
    services: Services = server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    _plain_target(services, source.id, plain_scim)
    [ada] = add_users(services, "ada").values()
    entity = json.loads(services.directory.get("User", ada, "/scim").body or b"")
    auth = server.new_client("realtime_api")

    def push(_: int) -> httpx.Response:
        with server.client(auth=auth, path=BASE) as api:
            return api.post(f"/{source.id}/entities/user", json=entity)

    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(push, range(CALLS)))
    csv_states = sorted(_states(a)["CSV"] for a in answers)
    assert csv_states.count("Entity Created") == 1, csv_states
    assert list(rows(tmp_path / "users.csv")) == ["ada"]
    assert len(_PlainSCIM.users) == 1, "one POST reached the SCIM target"
    with server.client(auth=auth, path=BASE) as api:
        gone = api.delete(f"/{source.id}/entities/user/{ada}")
    assert _states(gone) == {"CSV": "Entity Deleted", "Plain": "Entity Deleted"}
    assert rows(tmp_path / "users.csv") == {}
    assert _PlainSCIM.users == {}
