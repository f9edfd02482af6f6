"""The hybrid scenario with an external identity manager (SAP Identity Management, spec
§4.5, §5.8): the proxy exported as the IdM's SCIM repository file, then an IdM played by
this test: initial load with paging, and its changes pushed back through the proxy."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import orjson

from provisor.context import Context
from provisor.types import EntityType
from tests.conftest import LiveServer, cli_for
from tests.helpers import PATCH_OP, group_body, user_body
from tests.proxy.conftest import proxy_system

CTX = Context.system("tests")  # the service calls a test makes directly


def repository_file(server: LiveServer, system_id: str) -> dict[str, str]:
    """The CSV from the admin API; the CLI writes the same file."""
    with server.client() as admin:
        response = admin.get(f"/api/v1/systems/{system_id}/export", params={"format": "csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    cwd = server.settings.data_dir.parent / "cli"
    cwd.mkdir(exist_ok=True)
    cli = cli_for(server, cwd).invoke("systems", "export", system_id, "--format", "csv")
    assert cli.stdout == response.text
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    return rows[0]


def load_all(client: httpx.Client, endpoint: str, count: int) -> list[dict[str, Any]]:
    """An initial load as SAP's documentation tells clients to page (spec §5.5)."""
    loaded: list[dict[str, Any]] = []
    start = 1
    while True:
        page = client.get(endpoint, params={"startIndex": start, "count": count})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["itemsPerPage"] <= count
        loaded += body["Resources"]
        start += body["itemsPerPage"]
        if body["itemsPerPage"] == 0 or start > body["totalResults"]:
            return loaded


def stored(server: LiveServer, kind: str, resource_id: str) -> dict[str, Any] | None:
    from provisor.scim.errors import ResourceNotFoundError

    try:
        found = server.services.directory.get(CTX, EntityType.parse(kind), resource_id, "/scim")
    except ResourceNotFoundError:
        return None
    assert found.body is not None
    document: dict[str, Any] = orjson.loads(found.body)
    return document


def test_identity_manager_loads_then_pushes_changes(server: LiveServer) -> None:
    directory = server.services.directory
    user_ids = [
        directory.create(CTX, EntityType.USER, user_body(f"emp{i:03d}"), "/scim").id
        for i in range(57)
    ]
    group_ids = [
        directory.create(CTX, EntityType.GROUP, group_body(f"Dept {i}", user_ids[i::5]), "/scim").id
        for i in range(5)
    ]
    system = proxy_system(server, name="IdM Proxy")

    row = repository_file(server, system.id)
    assert row["Name"] == "IdM Proxy" and row["TypeQN"] == "com.sap.idm.connector.scim:reptype.SCIM"
    assert row["AUTH_USER"] == "" and row["AUTH_PASSWORD"] == ""
    # the administrator fills in a technical user with the proxy permission
    row["AUTH_USER"], row["AUTH_PASSWORD"] = server.new_client("proxy_api")
    url = f"{row['SCIM_PROTOCOL']}://{row['SCIM_HOST']}:{row['SCIM_PORT']}{row['SCIM_PATH']}"
    assert url == f"{server.url}/ipsproxy/service/api/v1/scim/{system.id}"

    with httpx.Client(
        base_url=url,
        auth=(row["AUTH_USER"], row["AUTH_PASSWORD"]),
        headers={"Accept": "application/scim+json"},
        timeout=60,
    ) as idm:
        # initial load
        users = load_all(idm, "/Users", 25)
        groups = load_all(idm, "/Groups", 2)
        assert sorted(u["id"] for u in users) == sorted(user_ids)
        assert sorted(g["id"] for g in groups) == sorted(group_ids)
        dept0 = next(g for g in groups if g["displayName"] == "Dept 0")
        assert {m["value"] for m in dept0["members"]} == set(user_ids[0::5])

        # a new hire
        created = idm.post("/Users", json=user_body("newhire"))
        assert created.status_code == 201, created.text
        hire = created.json()["id"]
        assert created.headers["Location"].endswith(f"/Users/{hire}")
        assert (stored(server, "User", hire) or {})["userName"] == "newhire"

        # a change of name (PUT, as SCIM_ASSIGNMENT_METHOD=PUT does)
        replaced = idm.put(f"/Users/{hire}", json=user_body("newhire", displayName="New Hire"))
        assert replaced.status_code == 200, replaced.text
        assert (stored(server, "User", hire) or {})["displayName"] == "New Hire"

        # a change by PATCH
        patch = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}],
        }
        assert idm.patch(f"/Users/{hire}", json=patch).status_code == 200
        assert (stored(server, "User", hire) or {})["title"] == "Engineer"

        # assignments: PATCH adds the hire to Dept 0, PUT sets Dept 1's members
        assign = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": hire}]}],
        }
        assert idm.patch(f"/Groups/{dept0['id']}", json=assign).status_code == 200
        members0 = {m["value"] for m in (stored(server, "Group", dept0["id"]) or {})["members"]}
        assert members0 == {*user_ids[0::5], hire}
        dept1 = next(g for g in groups if g["displayName"] == "Dept 1")
        put = idm.put(f"/Groups/{dept1['id']}", json=group_body("Dept 1", [hire, user_ids[1]]))
        assert put.status_code == 200, put.text
        members1 = {m["value"] for m in (stored(server, "Group", dept1["id"]) or {})["members"]}
        assert members1 == {hire, user_ids[1]}
        unassign = {
            "schemas": [PATCH_OP],
            "Operations": [{"op": "remove", "path": f'members[value eq "{hire}"]'}],
        }
        assert idm.patch(f"/Groups/{dept0['id']}", json=unassign).status_code == 200
        members0 = {m["value"] for m in (stored(server, "Group", dept0["id"]) or {})["members"]}
        assert members0 == set(user_ids[0::5])

        # a new group, then leavers
        team = idm.post("/Groups", json=group_body("Project X", [hire]))
        assert team.status_code == 201, team.text
        assert idm.delete(f"/Users/{hire}").status_code == 204
        assert stored(server, "User", hire) is None
        assert idm.delete(f"/Groups/{team.json()['id']}").status_code == 204
        assert stored(server, "Group", team.json()["id"]) is None

        # the next initial load sees the back-end as it is
        assert len(load_all(idm, "/Users", 100)) == 57
        assert len(load_all(idm, "/Groups", 100)) == 5
