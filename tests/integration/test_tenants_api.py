"""The operator API, ``/operator/v1``: an operator creates tenants whose first administrator
is confined to its tenant, disables, enables and deletes them (every row of the tenant and
none of another), and sets quotas the services enforce. Over HTTP against a live server."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from provisor.auth.clients import INITIAL_OPERATOR_FILE
from provisor.settings import Settings
from provisor.storage import tables
from tests.conftest import LiveServer, serve

PROBLEM = "application/problem+json"
SCIM_ERROR = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
LID_SOURCE = {"name": "LID", "type": "Local Identity Directory", "role": "source"}


def operator_of(live: LiveServer) -> tuple[str, str]:
    """The initial operator's credentials, written by the server's first start."""
    data = json.loads((live.settings.data_dir / INITIAL_OPERATOR_FILE).read_text())
    return data["client_id"], data["client_secret"]


def problem(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    body: dict[str, Any] = response.json()
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


def user(name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": name}


def rows_by_tenant(live: LiveServer) -> Counter[tuple[str, str]]:
    """How many rows each tenant has in each table of tenants' data."""
    counts: Counter[tuple[str, str]] = Counter()
    with live.services.db.unscoped_read() as conn:
        for table in tables.TENANT_TABLES:
            stmt = select(table.c.tenant, func.count()).group_by(table.c.tenant)
            for tenant, count in conn.execute(stmt):
                counts[(table.name, tenant)] = count
    return counts


def of(counts: Counter[tuple[str, str]], tenant: str) -> dict[str, int]:
    return {table: n for (table, owner), n in counts.items() if owner == tenant and n}


def test_a_new_tenants_administrator_is_confined_to_it(server: LiveServer) -> None:
    with server.client(auth=operator_of(server), path="/operator/v1") as op:
        me = op.get("/me")
        assert me.status_code == 200, me.text
        assert me.json()["permissions"] == ["operator"]
        assert me.json()["tenant"] == "_installation"

        made = op.post(
            "/tenants",
            json={"name": "acme", "title": "ACME Corp.", "quotas": {"sourceSystems": 3}},
        )
        assert made.status_code == 201, made.text
        assert made.headers["Location"] == server.url + "/operator/v1/tenants/acme"
        assert made.headers["Cache-Control"] == "no-store"
        body = made.json()
        admin = body["administrator"]
        acme = (admin["client_id"], admin["client_secret"])
        assert body["name"] == "acme" and body["title"] == "ACME Corp."
        assert body["kind"] == "standalone" and body["enabled"] is True
        assert body["quotas"] == {"sourceSystems": 3}
        assert body["urls"] == {"path": server.url + "/t/acme"}
        op.post("/tenants", json={"name": "other"}).raise_for_status()

        # the secret is in the answer that made it, and nowhere else
        shown = op.get("/tenants/acme")
        assert shown.status_code == 200, shown.text
        assert admin["client_secret"] not in shown.text and "administrator" not in shown.json()
        assert shown.json()["usage"]["clients"] == 1
        listed = op.get("/tenants").json()
        assert [t["name"] for t in listed["items"]] == ["acme", "default", "other"]
        assert admin["client_secret"] not in json.dumps(listed)

    with httpx.Client(base_url=server.url, auth=acme) as client:
        me = client.get("/t/acme/api/v1/me")
        assert me.status_code == 200, me.text
        assert me.json()["tenant"] == "acme" and me.json()["permissions"] == ["admin"]
        assert client.get("/t/acme/scim/Users").status_code == 200
        assert client.get("/scim/Users").status_code == 401  # the default tenant
        assert client.get("/t/other/scim/Users").status_code == 401
        assert client.get("/t/nobody/scim/Users").status_code == 404  # no such tenant
        assert client.get("/operator/v1/tenants").status_code == 401
        # at the tenant's own address the operator API exists, and refuses its admin
        problem(client.get("/t/acme/operator/v1/tenants"), 403, "operator")
        # a tenant's administrator cannot make an operator
        refused = client.post(
            "/t/acme/api/v1/clients", json={"name": "op", "permissions": ["operator"]}
        )
        problem(refused, 400, "operator")

    with server.client() as default_admin:  # the default tenant's initial admin
        assert default_admin.get("/t/acme/scim/Users").status_code == 401
        assert default_admin.get("/t/acme/api/v1/me").status_code == 401
        assert default_admin.get("/operator/v1/tenants").status_code == 401
        problem(default_admin.get("/t/default/operator/v1/tenants"), 403, "operator")
        assert default_admin.get("/api/v1/me").json()["tenant"] == "default"


def test_disable_enable_and_delete_touch_one_tenant(server: LiveServer) -> None:
    with server.client(auth=operator_of(server), path="/operator/v1") as op:
        admin = op.post("/tenants", json={"name": "acme"}).raise_for_status().json()
        acme = (admin["administrator"]["client_id"], admin["administrator"]["client_secret"])

        # the same things in both tenants: users, a group with a member, a system
        for tenant, auth in (("/t/acme", acme), ("", server.admin)):
            with httpx.Client(base_url=server.url + tenant, auth=auth) as client:
                ids = [
                    client.post("/scim/Users", json=user(f"u{i}")).raise_for_status().json()["id"]
                    for i in range(3)
                ]
                group = {"schemas": [GROUP], "displayName": "g", "members": [{"value": ids[0]}]}
                client.post("/scim/Groups", json=group).raise_for_status()
                client.post("/api/v1/systems", json=LID_SOURCE).raise_for_status()
        before = rows_by_tenant(server)
        assert of(before, "acme")["users"] == 3 and of(before, "acme")["systems"] == 1

        assert op.post("/tenants/acme/disable").json()["enabled"] is False
        with httpx.Client(base_url=server.url, auth=acme) as client:
            problem(client.get("/t/acme/api/v1/me"), 404, "No tenant")
            assert client.get("/t/acme/scim/Users").status_code == 404
            assert op.get("/tenants/acme").json()["enabled"] is False
            assert op.post("/tenants/acme/enable").json()["enabled"] is True
            assert client.get("/t/acme/scim/Users").json()["totalResults"] == 3

        gone = op.delete("/tenants/acme")
        assert gone.status_code == 200, gone.text
        deleted = gone.json()
        assert deleted["name"] == "acme"
        after = rows_by_tenant(server)
        assert of(after, "acme") == {}
        assert of(after, "default") == of(before, "default")
        # what the answer says went is what went (the audit log's record of the deletion
        # is the installation's)
        assert deleted["deleted"] == of(before, "acme")
        assert deleted["total"] == sum(of(before, "acme").values())

        problem(op.get("/tenants/acme"), 404, "acme")
        assert [t["name"] for t in op.get("/tenants").json()["items"]] == ["default"]
    with httpx.Client(base_url=server.url, auth=acme) as client:
        assert client.get("/t/acme/scim/Users").status_code == 404
    with server.client() as default_admin:
        assert default_admin.get("/scim/Users").json()["totalResults"] == 3


def test_the_default_tenant_stays(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(auth=operator_of(sqlite_server), path="/operator/v1") as op:
        problem(op.post("/tenants/default/disable"), 409, "default tenant")
        problem(op.patch("/tenants/default", json={"enabled": False}), 409, "default tenant")
        problem(op.delete("/tenants/default"), 409, "default tenant")
        shown = op.get("/tenants/default").json()
        assert shown["enabled"] is True
        assert shown["urls"] == {"path": sqlite_server.url}  # the installation's own URLs
        assert shown["usage"]["clients"] == 1  # its initial admin
        assert op.post("/tenants/default/enable").status_code == 200


def test_bad_names_duplicates_and_unknown_tenants(sqlite_server: LiveServer) -> None:
    with sqlite_server.client(auth=operator_of(sqlite_server), path="/operator/v1") as op:
        for bad in ("Acme", "-x", "x-", "t", "operator", "a" * 64, "", "a.b", "a_b"):
            problem(op.post("/tenants", json={"name": bad}), 400)
        assert op.post("/tenants", json={"name": "a" * 63}).status_code == 201
        op.post("/tenants", json={"name": "acme"}).raise_for_status()
        problem(op.post("/tenants", json={"name": "acme"}), 409, "already exists")
        problem(op.post("/tenants", json={"name": "x", "quotas": {"users": 3}}), 400, "users")
        for bad_quota in (-1, True, "3", 1.5):
            wrong = {"name": "x", "quotas": {"sourceSystems": bad_quota}}
            problem(op.post("/tenants", json=wrong), 400, "sourceSystems")
        problem(op.post("/tenants", json={"name": "x", "colour": "red"}), 400, "colour")
        problem(op.post("/tenants", json={"name": "x", "title": "a\nb"}), 400, "title")
        problem(op.post("/tenants", json={"name": "x", "bundle": "nope"}), 400)
        problem(op.get("/tenants/nobody"), 404, "nobody")
        problem(op.patch("/tenants/nobody", json={"title": "x"}), 404, "nobody")
        problem(op.post("/tenants/nobody/disable"), 404, "nobody")
        problem(op.delete("/tenants/nobody"), 404, "nobody")
        problem(op.patch("/tenants/acme", json={"enabled": "maybe"}), 400, "enabled")
        # nothing half made: the refused names left no tenant
        names = [t["name"] for t in op.get("/tenants").json()["items"]]
        assert names == ["a" * 63, "acme", "default"]
    with httpx.Client(base_url=sqlite_server.url) as anonymous:
        assert anonymous.get("/operator/v1/tenants").status_code == 401


def test_quotas_are_enforced_and_merged(sqlite_server: LiveServer) -> None:
    live = sqlite_server
    with live.client(auth=operator_of(live), path="/operator/v1") as op:
        quotas = {"sourceSystems": 1, "directoryEntities": 2}
        made = op.post("/tenants", json={"name": "acme", "quotas": quotas}).raise_for_status()
        creds = made.json()["administrator"]
        acme = httpx.Client(
            base_url=live.url + "/t/acme", auth=(creds["client_id"], creds["client_secret"])
        )
        with acme:
            acme.post("/api/v1/systems", json=LID_SOURCE).raise_for_status()
            second = acme.post("/api/v1/systems", json={**LID_SOURCE, "name": "LID 2"})
            assert second.status_code == 409, second.text

            acme.post("/scim/Users", json=user("one")).raise_for_status()
            group = {"schemas": [GROUP], "displayName": "g"}
            acme.post("/scim/Groups", json=group).raise_for_status()
            third = acme.post("/scim/Users", json=user("three"))
            assert third.status_code == 403, third.text
            assert third.headers["content-type"].startswith(SCIM_ERROR)
            assert "directoryEntities" in third.json()["detail"]
            assert acme.post("/scim/Groups", json={**group, "displayName": "h"}).status_code == 403
            bulk = {
                "schemas": [BULK],
                "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "a", "data": user("b")}
                ],
            }
            ops = acme.post("/scim/Bulk", json=bulk).raise_for_status().json()["Operations"]
            assert ops[0]["status"] == "403"
            assert acme.get("/scim/Users").json()["totalResults"] == 1

            # quotas are merged: one changed, the other kept; null is the default again
            changed = op.patch("/tenants/acme", json={"quotas": {"directoryEntities": 3}})
            assert changed.json()["quotas"] == {"sourceSystems": 1, "directoryEntities": 3}
            acme.post("/scim/Users", json=user("three")).raise_for_status()
            reset = op.patch("/tenants/acme", json={"quotas": {"sourceSystems": None}})
            assert reset.json()["quotas"] == {"directoryEntities": 3}
            assert op.get("/tenants/acme").json()["usage"]["users"] == 2
            problem(op.patch("/tenants/acme", json={"quotas": {"jobConcurrency": 0}}), 400)

    # the default tenant has no quota: nothing is counted, nothing refused
    with live.client(path="/scim") as default:
        for i in range(4):
            default.post("/Users", json=user(f"d{i}")).raise_for_status()


def test_bundles_export_and_import(sqlite_server: LiveServer) -> None:
    live = sqlite_server
    with live.client(auth=operator_of(live), path="/operator/v1") as op:
        bundled = {"name": "acme", "bundle": "hr-to-identity-authentication"}
        made = op.post("/tenants", json=bundled)
        assert made.status_code == 201, made.text
        assert made.json()["kind"] == "bundle"
        assert made.json()["bundle"] == "hr-to-identity-authentication"
        creds = made.json()["administrator"]
        acme = (creds["client_id"], creds["client_secret"])
        usage = op.get("/tenants/acme").json()["usage"]
        assert usage["sourceSystems"] == 2 and usage["targetSystems"] == 2

        # a bundle that does not fit the quotas leaves no tenant, and no administrator
        small = {**bundled, "name": "small", "quotas": {"sourceSystems": 1}}
        problem(op.post("/tenants", json=small), 409)
        problem(op.get("/tenants/small"), 404)
        problem(op.post("/tenants", json={**bundled, "name": "x", "bundle": "nope"}), 400, "nope")

        exported = op.get("/tenants/acme/configuration")
        assert exported.status_code == 200, exported.text
        assert "provisor-acme-" in exported.headers["Content-Disposition"]
        document = exported.json()
        names = sorted(s["name"] for s in document["systems"])
        assert len(names) == 4

        op.post("/tenants", json={"name": "beta"}).raise_for_status()
        plan = op.post("/tenants/beta/configuration/plan", json=document)
        assert plan.status_code == 200, plan.text
        assert plan.json()["counts"]["create"] >= 4 and plan.json()["applied"] is False
        stale = op.post(
            "/tenants/beta/configuration/apply", params={"expect": "0" * 64}, json=document
        )
        problem(stale, 409)
        applied = op.post(
            "/tenants/beta/configuration/apply",
            params={"expect": plan.json()["fingerprint"]},
            json=document,
        )
        assert applied.status_code == 200, applied.text
        assert applied.json()["applied"] is True
        again = op.post("/tenants/beta/configuration/plan", json=document).json()
        assert again["counts"]["create"] == again["counts"]["update"] == 0

        broken = op.post("/tenants/beta/configuration/plan", json={"systems": "no"})
        assert problem(broken, 400)["problems"]
        problem(op.get("/tenants/nobody/configuration"), 404, "nobody")
        problem(op.post("/tenants/nobody/configuration/plan", json=document), 404, "nobody")

    # beta's systems are acme's; the operator is the author in beta's audit log
    with httpx.Client(base_url=live.url + "/t/acme", auth=acme) as client:
        theirs = sorted(s["name"] for s in client.get("/api/v1/systems").json()["items"])
        assert theirs == names
        problem(client.get("/operator/v1/tenants/acme/configuration"), 403, "operator")
    with live.services.db.unscoped_read() as conn:
        authors = set(
            conn.execute(
                select(tables.audit_log.c.actor).where(tables.audit_log.c.tenant == "beta")
            ).scalars()
        )
    assert "operator:initial-operator" in authors


@pytest.mark.slow  # a live server, started here
def test_a_tenant_domain_gives_each_tenant_a_host(sqlite_settings: Settings) -> None:
    settings = sqlite_settings.model_copy(update={"tenant_domain": "tenants.test"})
    with serve(settings) as live:
        with live.client(auth=operator_of(live), path="/operator/v1") as op:
            made = op.post("/tenants", json={"name": "acme"}).raise_for_status().json()
            port = live.url.rsplit(":", 1)[1]
            urls = {"path": f"{live.url}/t/acme", "host": f"http://acme.tenants.test:{port}"}
            assert made["urls"] == urls
            assert op.get("/tenants/acme").json()["urls"] == urls
        admin = made["administrator"]
        host = {"Host": f"acme.tenants.test:{port}"}
        auth = (admin["client_id"], admin["client_secret"])
        with httpx.Client(base_url=live.url, auth=auth, headers=host) as client:
            assert client.get("/api/v1/me").json()["tenant"] == "acme"
