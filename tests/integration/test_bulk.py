"""/scim/Bulk (RFC 7644 §3.7): bulkId references, failOnErrors, limits."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import LiveServer
from tests.helpers import GROUP, create, patch, scim_error, user_body

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


def bulk(*operations: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"schemas": [BULK], "Operations": list(operations), **extra}


def test_bulk_with_forward_bulk_id_references(scim: httpx.Client) -> None:
    # The group comes first but refers to users created later in the same request.
    request = bulk(
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "team",
            "data": {
                "schemas": [GROUP],
                "displayName": "Tour Guides",
                "members": [
                    {"type": "User", "value": "bulkId:alice"},
                    {"type": "User", "value": "bulkId:bob"},
                ],
            },
        },
        {"method": "POST", "path": "/Users", "bulkId": "alice", "data": user_body()},
        {"method": "POST", "path": "/Users", "bulkId": "bob", "data": user_body()},
        {
            "method": "PATCH",
            "path": "/Users/bulkId:bob",
            "data": patch({"op": "replace", "path": "title", "value": "Guide"}),
        },
    )
    response = scim.post("/Bulk", json=request)
    assert response.status_code == 200
    body = response.json()
    assert body["schemas"] == [BULK_RESPONSE]
    ops = body["Operations"]
    assert [op["status"] for op in ops] == ["201", "201", "201", "200"]
    assert [op.get("bulkId") for op in ops] == ["team", "alice", "bob", None]
    group = scim.get(ops[0]["location"]).json()
    users = {scim.get(op["location"]).json()["id"] for op in ops[1:3]}
    assert {m["value"] for m in group["members"]} == users
    assert scim.get(ops[2]["location"]).json()["title"] == "Guide"
    assert ops[0]["version"] == 'W/"1"'


def test_bulk_errors_are_reported_per_operation(scim: httpx.Client) -> None:
    existing = create(scim, "/Users", user_body())
    request = bulk(
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "dup",
            "data": user_body(existing["userName"]),
        },
        {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user_body()},
        {"method": "DELETE", "path": "/Users/no-such-user"},
        {
            "method": "PUT",
            "path": f"/Users/{existing['id']}",
            "version": 'W/"99"',
            "data": user_body(existing["userName"]),
        },
        {"method": "DELETE", "path": f"/Users/{existing['id']}"},
    )
    ops = scim.post("/Bulk", json=request).json()["Operations"]
    assert [op["status"] for op in ops] == ["409", "201", "404", "412", "204"]
    assert ops[0]["response"]["scimType"] == "uniqueness"
    assert ops[2]["response"]["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_bulk_refuses_members_that_do_not_exist(scim: httpx.Client) -> None:
    """Inside Bulk too, a member must be a user or group: 404 per operation, nothing stored."""
    user = create(scim, "/Users", user_body())
    group = create(scim, "/Groups", {"schemas": [GROUP], "displayName": "kept"})
    ghost = {"value": "no-such-user", "display": "Nobody"}
    url = f"/Groups/{group['id']}"
    request = bulk(
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "g",
            "data": {"schemas": [GROUP], "displayName": "ghosts", "members": [ghost]},
        },
        {
            "method": "PUT",
            "path": url,
            "data": {"schemas": [GROUP], "displayName": "kept", "members": [ghost]},
        },
        {
            "method": "PATCH",
            "path": url,
            "data": patch({"op": "add", "path": "members", "value": [ghost]}),
        },
        {
            "method": "PATCH",
            "path": url,
            "data": patch(
                {"op": "add", "path": "members", "value": [{"value": user["id"], "display": "U"}]}
            ),
        },
    )
    ops = scim.post("/Bulk", json=request).json()["Operations"]
    assert [op["status"] for op in ops] == ["404", "404", "404", "200"]
    assert all(op["response"]["status"] == "404" for op in ops[:3])
    members = scim.get(url).json()["members"]
    assert [(m["value"], m["display"]) for m in members] == [(user["id"], "U")]
    listed = scim.get("/Groups", params={"filter": 'displayName eq "ghosts"'}).json()
    assert listed["totalResults"] == 0


def test_fail_on_errors_stops_processing(scim: httpx.Client) -> None:
    request = bulk(
        {"method": "DELETE", "path": "/Users/missing-1"},
        {"method": "DELETE", "path": "/Users/missing-2"},
        {"method": "POST", "path": "/Users", "bulkId": "never", "data": user_body()},
        failOnErrors=2,
    )
    ops = scim.post("/Bulk", json=request).json()["Operations"]
    assert [op["status"] for op in ops] == ["404", "404"]


def test_unresolvable_and_circular_references(scim: httpx.Client) -> None:
    request = bulk(
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "a",
            "data": {"schemas": [GROUP], "displayName": "A", "members": [{"value": "bulkId:b"}]},
        },
        {
            "method": "POST",
            "path": "/Groups",
            "bulkId": "b",
            "data": {"schemas": [GROUP], "displayName": "B", "members": [{"value": "bulkId:a"}]},
        },
        {
            "method": "POST",
            "path": "/Users",
            "bulkId": "c",
            "data": user_body(title="bulkId:nowhere"),
        },
    )
    ops = scim.post("/Bulk", json=request).json()["Operations"]
    assert [op["status"] for op in ops] == ["409", "409", "409"]
    assert ops[0]["response"]["scimType"] == "invalidValue"


def test_bulk_request_validation_and_limits(server: LiveServer) -> None:
    with server.client() as client:
        scim_error(client.post("/scim/Bulk", json={"Operations": []}), 400, "invalidSyntax")
        scim_error(
            client.post("/scim/Bulk", json=bulk({"method": "GET", "path": "/Users"})),
            400,
            "invalidSyntax",
        )
        no_bulk_id = bulk({"method": "POST", "path": "/Users", "data": user_body()})
        scim_error(client.post("/scim/Bulk", json=no_bulk_id), 400, "invalidSyntax")
        too_many = bulk(*[{"method": "DELETE", "path": f"/Users/{i}"} for i in range(1001)])
        scim_error(client.post("/scim/Bulk", json=too_many), 413, "tooLarge")
        config = client.get("/scim/ServiceProviderConfig").json()
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": 1000,
        "maxPayloadSize": server.settings.max_body_bytes,
    }


def test_bulk_checks_permissions_per_operation(server: LiveServer) -> None:
    users_only = server.new_client("manage_users")
    with server.client(auth=users_only) as client:
        request = bulk(
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": user_body()},
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {"schemas": [GROUP], "displayName": "G"},
            },
        )
        ops = client.post("/scim/Bulk", json=request).json()["Operations"]
    assert [op["status"] for op in ops] == ["201", "403"]
