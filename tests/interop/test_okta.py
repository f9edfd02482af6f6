"""A replay of Okta's "SCIM 2.0 Spec Test" and of Okta's provisioning requests.

The spec test (the Runscope suite Okta gives ISVs) in its order: list one user, read it,
look up unknown and random users, create a user with realistic values (sent as
``application/json``), read it back, expect 409 on the same values again, look the user
up with its userName in capitals, list groups, expect 401 with a SCIM error for a bad
credential and 404 for an unknown id. Then what Okta sends when it provisions (SCIM 2.0
reference): deactivation by a path-less replace of ``active``, a full PUT carrying ``id``
and ``groups``, and group push: create, rename by a path-less replace that carries the id,
members added with ``display`` and removed by value filter, PUT with members, delete.
"""

from __future__ import annotations

import random
import string
import uuid

import httpx

from tests.conftest import LiveServer
from tests.helpers import ERROR, GROUP, PATCH_OP, USER, create, scim_error, user_body

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
OKTA_HEADERS = {
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "Content-Type": "application/scim+json; charset=utf-8",
    "User-Agent": "OKTA SCIM Integration",
}


def _random(length: int = 8) -> str:
    return "".join(random.choices(string.ascii_lowercase, k=length))


def _okta(server: LiveServer) -> httpx.Client:
    return server.client(path="/scim", headers=OKTA_HEADERS)


def _patch(*operations: dict[str, object]) -> dict[str, object]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def test_okta_scim_2_spec_test(server: LiveServer) -> None:
    with _okta(server) as scim:
        create(scim, "/Users", user_body())  # the ISV's existing user

        # Required Test: Test Users endpoint.
        page = scim.get("/Users", params={"count": 1, "startIndex": 1})
        assert page.status_code == 200
        listed = page.json()
        assert LIST in listed["schemas"] and listed["Resources"]
        assert all(
            isinstance(listed[k], int) for k in ("itemsPerPage", "startIndex", "totalResults")
        )
        first = listed["Resources"][0]
        for value in (
            first["id"],
            first["name"]["familyName"],
            first["name"]["givenName"],
            first["userName"],
            first["emails"][0]["value"],
        ):
            assert value
        assert first["active"] is True

        # Required Test: Get Users/{{id}}.
        got = scim.get(f"/Users/{first['id']}")
        assert got.status_code == 200 and got.json()["id"] == first["id"]
        assert got.json()["emails"][0]["value"] == first["emails"][0]["value"]

        # Required Tests: invalid user by userName, by id; the random user does not exist.
        invalid = scim.get("/Users", params={"filter": f'userName eq "{_random()}@example.com"'})
        assert invalid.status_code == 200 and invalid.json()["totalResults"] == 0
        assert LIST in invalid.json()["schemas"]
        scim_error(scim.get(f"/Users/{uuid.uuid4()}"), 404)
        given, family = _random().capitalize(), _random().capitalize()
        username = f"{given}.{family}@example.com".lower()
        email = f"{_random()}@example.com"
        random_user = scim.get("/Users", params={"filter": f'userName eq "{email}"'}).json()
        assert random_user["totalResults"] == 0 and LIST in random_user["schemas"]

        # Required Test: Create Okta user with realistic values (plain application/json).
        body = {
            "schemas": [USER],
            "userName": username,
            "name": {"givenName": given, "familyName": family},
            "emails": [{"primary": True, "value": email, "type": "work"}],
            "displayName": f"{given} {family}",
            "active": True,
        }
        json_headers = {"Content-Type": "application/json", "Accept": "application/scim+json"}
        created = scim.post("/Users", json=body, headers=json_headers)
        assert created.status_code == 201, created.text
        user = created.json()
        assert user["active"] is True and user["id"]
        assert user["name"] == {"givenName": given, "familyName": family}
        assert USER in user["schemas"] and user["userName"] == username

        # Required Test: Verify that user was created.
        again = scim.get(f"/Users/{user['id']}").json()
        assert (again["userName"], again["name"]["familyName"]) == (username, family)

        # Required Test: Expect failure when recreating user with same values.
        body["emails"] = [{"primary": True, "value": username, "type": "work"}]
        scim_error(scim.post("/Users", json=body, headers=json_headers), 409, "uniqueness")

        # Required Test: Username Case Sensitivity Check.
        caps = scim.get("/Users", params={"filter": f'userName eq "{username.upper()}"'})
        assert caps.status_code == 200
        assert [r["id"] for r in caps.json()["Resources"]] == [user["id"]]

        # Optional Test: Verify Groups endpoint.
        groups = scim.get("/Groups")
        assert groups.status_code == 200 and isinstance(groups.json()["Resources"], list)

        # Required Test: Check status 404.
        missing = scim_error(scim.get("/Users/00919288221112222"), 404)
        assert missing["schemas"] == [ERROR]

    # Required Test: Check status 401 (a credential that is not one).
    with server.client(auth=None, path="/scim", headers=OKTA_HEADERS) as anonymous:
        refused = anonymous.get(
            "/Users",
            params={"filter": f'userName eq "{username.upper()}"'},
            headers={"Authorization": "non-token"},
        )
    body_401 = scim_error(refused, 401)
    assert body_401["status"] == "401" and body_401["detail"]


def test_okta_user_and_group_provisioning(server: LiveServer) -> None:
    with _okta(server) as scim:
        user = create(scim, "/Users", user_body(f"{_random()}@example.com"))
        url = f"/Users/{user['id']}"

        # Okta's existence check and import paging.
        query: dict[str, str | int] = {
            "filter": f'userName eq "{user["userName"]}"',
            "startIndex": 1,
            "count": 100,
        }
        assert [r["id"] for r in scim.get("/Users", params=query).json()["Resources"]] == [
            user["id"]
        ]

        # Deactivate: a path-less replace of active.
        off = scim.patch(url, json=_patch({"op": "replace", "value": {"active": False}}))
        assert off.status_code == 200 and off.json()["active"] is False

        # Profile update: a full PUT that carries id, the read-only groups and meta.
        put = {
            **{k: v for k, v in user.items() if k != "meta"},
            "name": {"givenName": "Test", "familyName": "User"},
            "groups": [],
            "active": True,
            "meta": {"resourceType": "User"},
        }
        replaced = scim.put(url, json=put)
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["name"] == {"givenName": "Test", "familyName": "User"}
        assert replaced.json()["active"] is True and "groups" not in replaced.json()

        # Group push.
        name = f"Test SCIMv2 {_random()}"
        group = scim.post("/Groups", json={"schemas": [GROUP], "displayName": name, "members": []})
        assert group.status_code == 201, group.text
        gid = group.json()["id"]
        gurl = f"/Groups/{gid}"
        found = scim.get("/Groups", params={"filter": f'displayName eq "{name}"'}).json()
        assert [r["id"] for r in found["Resources"]] == [gid]
        assert scim.get("/Groups", params={"startIndex": 1, "count": 100}).json()["totalResults"]
        rename = _patch({"op": "replace", "value": {"id": gid, "displayName": f"{name} 2"}})
        assert scim.patch(gurl, json=rename).json()["displayName"] == f"{name} 2"
        member = {"value": user["id"], "display": user["userName"]}
        added = scim.patch(gurl, json=_patch({"op": "add", "path": "members", "value": [member]}))
        assert added.status_code == 200, added.text
        assert [(m["value"], m["display"]) for m in added.json()["members"]] == [
            (user["id"], user["userName"])
        ]
        in_user = scim.get(url).json()["groups"]
        assert [(g["value"], g["display"]) for g in in_user] == [(gid, f"{name} 2")]
        removed = scim.patch(
            gurl, json=_patch({"op": "remove", "path": f'members[value eq "{user["id"]}"]'})
        )
        assert "members" not in removed.json()
        pushed = scim.put(
            gurl,
            json={"schemas": [GROUP], "id": gid, "displayName": name, "members": [member]},
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["displayName"] == name and pushed.json()["members"][0] == {
            "value": user["id"],
            "$ref": f"{server.url}/scim/Users/{user['id']}",
            "display": user["userName"],
            "type": "User",
        }
        unknown = {"value": str(uuid.uuid4()), "display": "nobody@example.com"}
        scim_error(
            scim.patch(gurl, json=_patch({"op": "add", "path": "members", "value": [unknown]})),
            404,
        )
        assert scim.delete(gurl).status_code == 204
        scim_error(scim.get(gurl), 404)
