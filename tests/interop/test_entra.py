"""A replay of what Microsoft Entra ID's provisioning service sends to a SCIM app.

Request shapes as Microsoft publishes them ("Tutorial: Develop and plan provisioning for a
SCIM endpoint", "Known issues ... SCIM 2.0 protocol compliance", the SCIM validator):
lookups by ``userName``/``externalId`` before a create, capitalised ops, ``"False"`` for
booleans, ``emails[type eq "work"].value`` paths, path-less updates keyed by dotted and
URN-qualified names, the enterprise manager as a bare id, ``active`` false before the
delete, groups read without their members, members added with ``"$ref": null`` and removed
by value list (the older job) or by value filter (``aadOptscim062020``).
"""

from __future__ import annotations

import uuid

import httpx

from tests.helpers import ENTERPRISE, GROUP, PATCH_OP, USER, scim_error

MANAGER = f"{ENTERPRISE}:manager"


def _patch(*operations: dict[str, object]) -> dict[str, object]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def _entra_user(user_name: str, external_id: str) -> dict[str, object]:
    """The body of Entra's POST /Users."""
    return {
        "schemas": [USER, ENTERPRISE],
        "externalId": external_id,
        "userName": user_name,
        "active": True,
        "emails": [
            {"primary": True, "type": "work", "value": f"{user_name.split('@')[0]}@testuser.com"}
        ],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
        ENTERPRISE: {"department": "Engineering"},
    }


def _provision(scim: httpx.Client, user_name: str) -> str:
    """Entra's create: look the user up by its matching attribute, then POST it."""
    external_id = str(uuid.uuid4())
    for query in (f'userName eq "{user_name}"', f'externalId eq "{external_id}"'):
        lookup = scim.get("/Users", params={"filter": query})
        assert lookup.status_code == 200
        assert lookup.json()["totalResults"] == 0 and lookup.json()["Resources"] == []
    created = scim.post("/Users", json=_entra_user(user_name, external_id))
    assert created.status_code == 201, created.text
    assert "roles" not in created.json()  # an empty list is an unassigned attribute
    found = scim.get("/Users", params={"filter": f'externalId eq "{external_id}"'}).json()
    assert [r["id"] for r in found["Resources"]] == [created.json()["id"]]
    return str(created.json()["id"])


def test_entra_user_lifecycle(scim: httpx.Client) -> None:
    name = f"Test_User_{uuid.uuid4()}@testuser.com"
    uid = _provision(scim, name)
    boss = _provision(scim, f"Test_User_{uuid.uuid4()}@testuser.com")
    url = f"/Users/{uid}"

    # Lookup by the matching attribute, case-insensitively.
    found = scim.get("/Users", params={"filter": f'userName eq "{name.upper()}"'}).json()
    assert [r["id"] for r in found["Resources"]] == [uid]

    # Update User [Multi-valued properties], as the older job sends it.
    multi = scim.patch(
        url,
        json=_patch(
            {
                "op": "Replace",
                "path": 'emails[type eq "work"].value',
                "value": "updatedEmail@microsoft.com",
            },
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
            {"op": "Add", "path": 'addresses[type eq "work"].locality', "value": "Columbus"},
            {"op": "Add", "path": "nickName", "value": "Babs"},
            {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
        ),
    )
    assert multi.status_code == 200, multi.text
    body = multi.json()
    assert body["emails"] == [
        {"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}
    ]
    assert body["name"]["familyName"] == "updatedFamilyName"
    assert body["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]
    assert body["addresses"] == [{"type": "work", "locality": "Columbus"}]
    assert body["nickName"] == "Babs"
    assert body[ENTERPRISE] == {"department": "Engineering", "employeeNumber": "Eqpj"}

    # Update User [Single-valued properties].
    renamed = f"{uuid.uuid4()}@testuser.com"
    single = scim.patch(url, json=_patch({"op": "Replace", "path": "userName", "value": renamed}))
    assert single.json()["userName"] == renamed

    # The compliant job: several attributes in one path-less replace, dotted and URN keys.
    path_less = scim.patch(
        url,
        json=_patch(
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "TestMhvaes@test.microsoft.com",
            },
            {
                "op": "replace",
                "value": {
                    "displayName": "Bjfe",
                    "name.givenName": "Kkom",
                    "name.familyName": "Unua",
                    f"{ENTERPRISE}:employeeNumber": "Aklq",
                },
            },
        ),
    ).json()
    assert path_less["displayName"] == "Bjfe"
    assert path_less["name"]["givenName"] == "Kkom" and path_less["name"]["familyName"] == "Unua"
    assert path_less[ENTERPRISE]["employeeNumber"] == "Aklq"
    assert path_less["emails"][0]["value"] == "TestMhvaes@test.microsoft.com"

    # The manager, as a bare id; then cleared.
    managed = scim.patch(url, json=_patch({"op": "Add", "path": MANAGER, "value": boss})).json()
    assert managed[ENTERPRISE]["manager"] == {"value": boss}
    cleared = scim.patch(url, json=_patch({"op": "Remove", "path": MANAGER})).json()
    assert "manager" not in cleared[ENTERPRISE]

    # Disable: a string boolean (older job), then a boolean (compliant job). The user stays
    # readable and findable until Entra deletes it.
    for value in ("False", "True", False):
        toggled = scim.patch(url, json=_patch({"op": "Replace", "path": "active", "value": value}))
        assert toggled.json()["active"] is (value == "True")
    assert scim.get(url).json()["active"] is False
    still = scim.get("/Users", params={"filter": f'userName eq "{renamed}"'}).json()
    assert [r["active"] for r in still["Resources"]] == [False]

    # Delete.
    assert scim.delete(url).status_code == 204
    scim_error(scim.get(url), 404)
    scim_error(
        scim.patch(url, json=_patch({"op": "Replace", "path": "active", "value": "True"})), 404
    )


def test_entra_group_lifecycle(scim: httpx.Client) -> None:
    uid = _provision(scim, f"Test_User_{uuid.uuid4()}@testuser.com")
    other = _provision(scim, f"Test_User_{uuid.uuid4()}@testuser.com")
    display_name = f"Group_{uuid.uuid4().hex[:8]}"
    lean = {"excludedAttributes": "members"}

    # Create Group: looked up by displayName first, then created without members.
    lookup = scim.get("/Groups", params={**lean, "filter": f'displayName eq "{display_name}"'})
    assert lookup.json()["totalResults"] == 0
    group = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "externalId": str(uuid.uuid4()),
            "displayName": display_name,
            "meta": {"resourceType": "Group"},
        },
    )
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    url = f"/Groups/{gid}"

    # Get Group and Get Group by displayName, without members.
    got = scim.get(url, params=lean).json()
    assert got["displayName"] == display_name and "members" not in got
    by_name = scim.get("/Groups", params={**lean, "filter": f'displayName eq "{display_name}"'})
    assert [r["id"] for r in by_name.json()["Resources"]] == [gid]

    # Update Group [Non-member attributes].
    new_name = f"{uuid.uuid4()}updatedDisplayName"
    renamed = scim.patch(
        url, json=_patch({"op": "Replace", "path": "displayName", "value": new_name})
    )
    assert renamed.status_code == 200 and renamed.json()["displayName"] == new_name

    # Update Group [Add Members], then Entra checks the membership with a filter.
    add = _patch(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": uid}]},
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": other}]},
    )
    assert scim.patch(url, json=add).status_code == 200
    check = {**lean, "filter": f'id eq "{gid}" and members eq "{uid}"'}
    assert scim.get("/Groups", params=check).json()["totalResults"] == 1
    ghost = _patch({"op": "Add", "path": "members", "value": [{"$ref": None, "value": "gone"}]})
    scim_error(scim.patch(url, json=ghost), 404)

    # Update Group [Remove Members]: by value list (older job), by value filter (compliant).
    by_list = _patch({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": uid}]})
    assert [m["value"] for m in scim.patch(url, json=by_list).json()["members"]] == [other]
    assert scim.get("/Groups", params=check).json()["totalResults"] == 0
    by_filter = _patch({"op": "remove", "path": f'members[value eq "{other}"]'})
    assert "members" not in scim.patch(url, json=by_filter).json()

    # Delete Group.
    assert scim.delete(url).status_code == 204
    scim_error(scim.get(url, params=lean), 404)


def test_me_is_not_implemented(scim: httpx.Client) -> None:
    scim_error(scim.get("/Me"), 501)
