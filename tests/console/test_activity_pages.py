"""The real-time logs and proxy activity pages; the proxy's activity log: what a call
records, its filters, its bounds and its retention."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from provisor.admins.model import Role
from provisor.context import Context
from provisor.jobs.service import JobService
from provisor.proxy.activity import ProxyActivity, ProxyCall
from provisor.realtime.model import Change, Operation
from provisor.systems.model import NewSystem
from provisor.timestamps import now
from provisor.types import EntityType
from tests.console.conftest import Console
from tests.helpers import user_body
from tests.jobs.conftest import lid_source

CTX = Context.system("tests")
PROXY = "/ipsproxy/service/api/v1/scim"


def proxy_caller(console: Console) -> tuple[str, TestClient]:
    system = console.services.systems.create(
        Context.administrator("test"),
        NewSystem.model_validate(
            {"name": "Proxy", "type": "local-identity-directory", "role": "proxy"}
        ),
    )
    _, creds = console.services.clients.create(CTX, "caller", ["proxy_api"])
    client = console.browser()
    client.auth = (creds.client_id, creds.client_secret)
    client.headers["accept"] = "application/scim+json"
    return system.id, client


def test_proxy_calls_are_recorded_and_shown(console: Console) -> None:
    system_id, client = proxy_caller(console)
    created = client.post(
        f"{PROXY}/{system_id}/Users",
        json=user_body("ada"),
        headers={"content-type": "application/scim+json"},
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert client.get(f"{PROXY}/{system_id}/Users/{user_id}").status_code == 200
    assert client.get(f"{PROXY}/{system_id}/Users/nobody").status_code == 404
    assert client.get(f"{PROXY}/{system_id}/Users").status_code == 200
    assert client.get(f"{PROXY}/{system_id}/Users", params={"count": "many"}).status_code == 400
    outsider = console.browser()
    assert outsider.get(f"{PROXY}/{system_id}/Users").status_code == 401  # not recorded
    assert console.services.proxy_activity.flush() == 5
    calls, more = console.services.proxy_activity.search(CTX)
    assert not more
    assert [(c.operation, c.status) for c in calls][::-1] == [
        ("create", 201),
        ("get", 200),
        ("get", 404),
        ("search", 200),
        ("search", 400),
    ]
    assert calls[-1].entity_id == user_id and calls[-1].caller.startswith("caller")
    assert all(c.request_id and c.system_id == system_id for c in calls)

    browser = console.signed_in("vic", Role.VIEWER)
    page = browser.get("/console/proxy")
    assert page.status_code == 200, page.text
    assert user_id in page.text and "Proxy" in page.text
    failed = browser.get("/console/proxy", params={"state": "failed", "system": system_id})
    assert "404" in failed.text and "201" not in failed.text.split("<tbody>")[1]
    one = browser.get("/console/proxy", params={"entity": user_id, "limit": 1})
    assert one.text.count(user_id) >= 2 and 'rel="next"' in one.text
    assert browser.get("/console/proxy", params={"state": "maybe"}).status_code == 400


def test_the_activity_log_is_bounded_and_follows_the_log_retention(console: Console) -> None:
    activity = ProxyActivity(console.services.db, capacity=3)

    def call(stamp: str, tenant: str = "default") -> ProxyCall:
        return ProxyCall(
            tenant=tenant,
            time=stamp,
            system_id="s",
            operation="get",
            endpoint="Users",
            entity_id="e",
            status=200,
            duration_us=5,
            request_id="r",
            caller="c",
        )

    for _ in range(5):
        activity.record(call("2000-01-01T00:00:00.000000Z"))
    assert activity.dropped == 2
    activity.record(call(now()))  # still full: dropped
    assert activity.flush() == 3
    activity.record(call(now()))
    activity.close()
    assert console.services.proxy_activity.search(CTX, limit=10)[0].__len__() == 4
    JobService.purge(console.services.jobs, CTX)
    kept, _ = console.services.proxy_activity.search(CTX, limit=10)
    assert len(kept) == 1 and kept[0].time > "2001"


@pytest.mark.anyio
async def test_real_time_logs_are_shown_and_filtered(console: Console) -> None:
    lid_source(console.services)
    pushed = await console.services.realtime.push(
        Context(Context.system("x").actor, "default"),
        "LID",
        Change(EntityType.USER, Operation.DELETE, "gone-1"),
    )
    browser = console.signed_in("ada")
    page = browser.get("/console/realtime")
    assert page.status_code == 200
    assert "gone-1" in page.text
    assert "gone-1" in browser.get("/console/realtime", params={"entity": "gone-1"}).text
    assert (
        "No real-time change matches"
        in browser.get("/console/realtime", params={"entity": "other"}).text
    )
    state = pushed.status.value
    assert "gone-1" in browser.get("/console/realtime", params={"state": state}).text
    assert browser.get("/console/realtime", params={"state": "Nope"}).status_code == 400
    created = await console.services.realtime.push(
        Context(Context.system("x").actor, "default"),
        "LID",
        Change(EntityType.USER, Operation.CREATE, None, {"id": "u-7", **user_body("grace")}),
    )
    assert created.entity_name == "grace"
    named = browser.get("/console/realtime", params={"entity": "grace"})
    assert "u-7" in named.text and "gone-1" not in named.text
    detail = browser.get(f"/console/realtime/{pushed.id}")
    assert detail.status_code == 200 and "In each system" in detail.text
    assert browser.get("/console/realtime/nothing").status_code == 404
