"""The request sequence Microsoft Entra ID's provisioning service sends to a SCIM app.

Shapes as Entra documents them ("Tutorial: Develop and plan provisioning for a SCIM
endpoint"): capitalised ops, string booleans, value-filter paths, path-less updates keyed by
URN-qualified names, member removal by value list.
"""

from __future__ import annotations

import httpx

from tests.helpers import ENTERPRISE, GROUP, PATCH_OP, USER, scim_error


def test_entra_user_and_group_lifecycle(scim: httpx.Client) -> None:
    # 1. Entra looks the user up by its matching attribute first.
    lookup = scim.get("/Users", params={"filter": 'userName eq "Test_User_ab6490ee"'}).json()
    assert lookup["totalResults"] == 0 and lookup["Resources"] == []

    # 2. Create.
    user = scim.post(
        "/Users",
        json={
            "schemas": [USER, ENTERPRISE],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-7e4c-4e5f-9ca2-75f77fcd2b2c@testuser.com",
            "active": True,
            "emails": [
                {"primary": True, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}
            ],
            "meta": {"resourceType": "User"},
            "name": {
                "formatted": "givenName familyName",
                "familyName": "familyName",
                "givenName": "givenName",
            },
            "roles": [],
            ENTERPRISE: {"department": "Engineering"},
        },
    )
    assert user.status_code == 201, user.text
    uid = user.json()["id"]
    assert "roles" not in user.json()  # an empty list is an unassigned attribute

    # 3. Lookup by the matching attribute, case-insensitively.
    found = scim.get(
        "/Users",
        params={
            "filter": 'userName eq "TEST_USER_AB6490EE-7E4C-4E5F-9CA2-75F77FCD2B2C@testuser.com"'
        },
    ).json()
    assert [r["id"] for r in found["Resources"]] == [uid]

    # 4. Update several attributes at once, Entra style.
    updated = scim.patch(
        f"/Users/{uid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "path": 'emails[type eq "work"].value',
                    "value": "updatedEmail@microsoft.com",
                },
                {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
                {
                    "op": "Add",
                    "path": 'phoneNumbers[type eq "mobile"].value',
                    "value": "+1 555 0100",
                },
                {
                    "op": "Replace",
                    "value": {f"{ENTERPRISE}:department": "Sales", "displayName": "Updated Name"},
                },
            ],
        },
    )
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["emails"] == [
        {"primary": True, "type": "work", "value": "updatedEmail@microsoft.com"}
    ]
    assert body["name"]["familyName"] == "updatedFamilyName"
    assert body["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]
    assert body[ENTERPRISE] == {"department": "Sales"}
    assert body["displayName"] == "Updated Name"

    # 5. Disable with a string boolean.
    disabled = scim.patch(
        f"/Users/{uid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )
    assert disabled.json()["active"] is False

    # 6. Groups: create empty, add a member, remove it by value list, rename.
    group = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP],
            "externalId": "8aa1a0c0",
            "displayName": "Group1DisplayName",
            "members": [],
        },
    )
    assert group.status_code == 201
    gid = group.json()["id"]
    lookup = scim.get(
        "/Groups",
        params={"filter": 'displayName eq "Group1DisplayName"', "excludedAttributes": "members"},
    ).json()
    assert [r["id"] for r in lookup["Resources"]] == [gid]
    add = scim.patch(
        f"/Groups/{gid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": uid}]}],
        },
    )
    assert add.status_code == 200
    member_filter = scim.get(
        "/Groups",
        params={"filter": f'id eq "{gid}" and members eq "{uid}"', "excludedAttributes": "members"},
    ).json()
    assert member_filter["totalResults"] == 1
    remove = scim.patch(
        f"/Groups/{gid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": uid}]}],
        },
    )
    assert "members" not in remove.json()
    renamed = scim.patch(
        f"/Groups/{gid}",
        json={
            "schemas": [PATCH_OP],
            "Operations": [
                {
                    "op": "Replace",
                    "path": "displayName",
                    "value": "1879db59-3bdf-4490-ad68-ab880a269474",
                }
            ],
        },
    )
    assert renamed.json()["displayName"] == "1879db59-3bdf-4490-ad68-ab880a269474"

    # 7. Delete.
    assert scim.delete(f"/Users/{uid}").status_code == 204
    assert scim.delete(f"/Groups/{gid}").status_code == 204
    scim_error(scim.get(f"/Users/{uid}"), 404)


def test_me_is_not_implemented(scim: httpx.Client) -> None:
    scim_error(scim.get("/Me"), 501)
