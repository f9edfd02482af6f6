"""The configuration in the admin API (``/api/v1/configuration``, ``/api/v1/bundles``) and its
client (``remote.configuration``), over HTTP against a live server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from provisor.remote import Remote, RemoteError, Session
from tests.conftest import LiveServer
from tests.integration.test_systems_api import assert_problem

SECRET = "a-Secret-that-stays"


@pytest.fixture
def remote(sqlite_server: LiveServer) -> Iterator[Remote]:
    client_id, secret = sqlite_server.admin
    with Session(sqlite_server.url, client_id=client_id, client_secret=secret) as session:
        yield Remote(session)


@pytest.fixture
def api(sqlite_server: LiveServer) -> Iterator[httpx.Client]:
    with sqlite_server.client(path="/api/v1") as client:
        yield client


def _bundle(remote: Remote) -> dict[str, Any]:
    return remote.configuration.bundle("directory-to-ldap-and-scim")


def test_only_admins_see_the_configuration(sqlite_server: LiveServer) -> None:
    assert_problem(httpx.get(sqlite_server.url + "/api/v1/configuration"), 401)
    with sqlite_server.client(auth=sqlite_server.new_client("manage_users")) as hr:
        assert_problem(hr.get("/api/v1/configuration"), 403, "admin")
        assert_problem(hr.post("/api/v1/configuration/plan", json={}), 403)
        assert_problem(hr.get("/api/v1/bundles"), 403)


def test_plan_apply_export(remote: Remote, api: httpx.Client) -> None:
    listed = remote.configuration.bundles()
    assert [b["name"] for b in listed["items"]] == [
        "directory-to-ldap-and-scim",
        "hr-to-identity-authentication",
    ]
    assert listed["items"][0]["systems"][1] == {
        "name": "Corporate LDAP",
        "type": "ldap",
        "role": "target",
    }
    document = _bundle(remote)
    plan = remote.configuration.plan(document)
    assert plan["counts"] == {"create": 9, "update": 0, "delete": 0, "unchanged": 0}
    assert plan["credentialsToEnter"] == {
        "Corporate LDAP": ["ldap.password"],
        "SCIM Application": ["Password"],
    }
    assert plan["changes"][1] == {
        "action": "create",
        "kind": "system",
        "name": "Corporate LDAP",
        "detail": "LDAP Server target; enter the credentials ldap.password",
        "credentialsToEnter": ["ldap.password"],
    }
    applied = remote.configuration.apply(document, expect=plan["fingerprint"])
    assert applied["applied"] is True and applied["changes"] == plan["changes"]
    remote.systems.update("SCIM Application", {"properties": {"Password": SECRET}})

    response = api.get("/configuration")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="provisor-default-'
    )
    assert SECRET not in response.text
    exported = response.json()
    assert [s["name"] for s in exported["systems"]] == [
        "Corporate LDAP",
        "Local Identity Directory Source",
        "SCIM Application",
    ]
    again = remote.configuration.plan(exported)
    assert again["counts"]["unchanged"] == 9 and again["counts"]["create"] == 0


def test_refusals_are_problems(remote: Remote, api: httpx.Client) -> None:
    document = _bundle(remote)
    plan = remote.configuration.plan(document)
    remote.systems.create(
        {
            "name": "Meanwhile",
            "type": "csv",
            "role": "target",
            "properties": {"csv.user.file": "out/users.csv"},
        }
    )
    moved = api.post("/configuration/apply", params={"expect": plan["fingerprint"]}, json=document)
    assert_problem(moved, 409, "The configuration changed since the plan; plan again.")

    document["systems"][1]["type"] = "fax"
    document["systems"][2]["sourceSystems"] = ["Nowhere"]
    document["schedules"][0]["intervalMinutes"] = 10
    refused = api.post("/configuration/plan", json=document)
    body = assert_problem(refused, 400, "3 problem(s)")
    assert body["problems"] == [
        "systems[Corporate LDAP].type: unknown connector type 'fax'; known: "
        + body["problems"][0].split("known: ")[1],
        "schedules[Local Identity Directory Source]: The interval must be larger than 30 "
        "minutes, not 10.",
        "systems[SCIM Application].sourceSystems: no system Nowhere in the document or in the "
        "tenant",
    ]
    assert_problem(api.post("/configuration/apply", json=document), 400, "3 problem(s)")
    assert_problem(api.post("/configuration/plan", json=[1]), 400)
    assert_problem(
        api.post("/configuration/plan", json={"provisorExport": 1}), 400, "systems import"
    )
    assert_problem(api.get("/bundles/nothing"), 404, "hr-to-identity-authentication")
    with pytest.raises(RemoteError) as failed:
        remote.configuration.apply(_bundle(remote), expect="0" * 64)
    assert failed.value.status == 409
    assert [s["name"] for s in remote.systems.listing()["items"]] == ["Meanwhile"]
