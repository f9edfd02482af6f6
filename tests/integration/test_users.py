"""/scim/Users over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.helpers import (
    ENTERPRISE,
    SAP_USER,
    SCIM_JSON,
    USER,
    create,
    patch,
    scim_error,
    user_body,
)


def test_create_returns_201_location_etag_and_meta(scim: httpx.Client) -> None:
    response = scim.post("/Users", json=user_body("bjensen"))
    assert response.status_code == 201
    assert response.headers["content-type"].startswith(SCIM_JSON)
    user = response.json()
    assert response.headers["location"] == user["meta"]["location"]
    assert user["meta"]["location"].endswith(f"/scim/Users/{user['id']}")
    assert response.headers["etag"] == user["meta"]["version"] == 'W/"1"'
    assert user["meta"]["resourceType"] == "User"
    assert user["meta"]["created"] == user["meta"]["lastModified"]
    assert user["userName"] == "bjensen"
    assert user["schemas"] == [USER]


def test_get_by_id_and_unknown_id(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    got = scim.get(f"/Users/{user['id']}")
    assert got.status_code == 200
    assert got.json() == user
    scim_error(scim.get("/Users/does-not-exist"), 404)


def test_password_is_stored_but_never_returned(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body(password="S3cret!pass"))
    assert "password" not in user
    assert "password" not in scim.get(f"/Users/{user['id']}").json()
    listed = scim.get("/Users", params={"attributes": "password,userName"}).json()
    assert all("password" not in r for r in listed["Resources"])


def test_sap_extension_gets_a_user_uuid(scim: httpx.Client) -> None:
    body = user_body(schemas=[USER, SAP_USER])
    body[SAP_USER] = {"sourceSystem": 39, "sourceSystemId": "HR-1", "userUuid": "forged"}
    user = create(scim, "/Users", body)
    uuid = user[SAP_USER]["userUuid"]
    assert uuid != "forged" and len(uuid) == 36
    assert user[SAP_USER]["sourceSystem"] == 39
    # read-only: kept across PUT and PATCH, whatever the client sends
    replaced = scim.put(f"/Users/{user['id']}", json=body).json()
    assert replaced[SAP_USER]["userUuid"] == uuid
    patched = scim.patch(
        f"/Users/{user['id']}",
        json=patch({"op": "replace", "path": f"{SAP_USER}:sourceSystemId", "value": "HR-2"}),
    ).json()
    assert patched[SAP_USER] == {"sourceSystem": 39, "sourceSystemId": "HR-2", "userUuid": uuid}
    found = scim.get("/Users", params={"filter": f'{SAP_USER}:userUuid eq "{uuid}"'}).json()
    assert [r["id"] for r in found["Resources"]] == [user["id"]]


def test_username_is_unique_case_insensitively(scim: httpx.Client) -> None:
    create(scim, "/Users", user_body("Alice"))
    body = scim_error(scim.post("/Users", json=user_body("aLICE")), 409, "uniqueness")
    assert "userName" in body["detail"]


def test_emails_are_unique_by_default(scim: httpx.Client) -> None:
    first = user_body()
    create(scim, "/Users", first)
    clash = user_body(emails=[{"value": first["emails"][0]["value"].upper()}])
    body = scim_error(scim.post("/Users", json=clash), 409, "uniqueness")
    assert "emails" in body["detail"]


def test_put_replaces_and_bumps_version(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body(title="Engineer"))
    body = user_body(user["userName"], displayName="Babs")
    response = scim.put(f"/Users/{user['id']}", json=body)
    assert response.status_code == 200
    replaced = response.json()
    assert replaced["displayName"] == "Babs"
    assert "title" not in replaced  # PUT replaces: omitted attributes are cleared
    assert replaced["meta"]["version"] == 'W/"2"'
    assert replaced["meta"]["created"] == user["meta"]["created"]
    assert replaced["meta"]["lastModified"] > user["meta"]["lastModified"]


def test_put_of_an_unchanged_resource_keeps_its_version(scim: httpx.Client) -> None:
    body = user_body()
    user = create(scim, "/Users", body)
    again = scim.put(f"/Users/{user['id']}", json=body).json()
    assert again["meta"]["version"] == user["meta"]["version"]


def test_read_only_attributes_are_ignored_on_write(scim: httpx.Client) -> None:
    body = user_body(id="my-id", meta={"version": "x"}, groups=[{"value": "g"}])
    user = create(scim, "/Users", body)
    assert user["id"] != "my-id"
    assert "groups" not in user


def test_invalid_values_are_rejected_with_invalid_value(scim: httpx.Client) -> None:
    scim_error(scim.post("/Users", json=user_body(active="maybe")), 400, "invalidValue")
    scim_error(scim.post("/Users", json=user_body(nickName=["a", "b"])), 400, "invalidValue")
    scim_error(scim.post("/Users", json=user_body(shoeSize=42)), 400, "invalidValue")
    no_name = user_body()
    del no_name["userName"]
    scim_error(scim.post("/Users", json=no_name), 400, "invalidValue")
    two_primaries = user_body(
        emails=[{"value": "a@x.org", "primary": True}, {"value": "b@x.org", "primary": True}]
    )
    scim_error(scim.post("/Users", json=two_primaries), 400, "invalidValue")
    scim_error(scim.post("/Users", json=user_body(schemas=["urn:x:y"])), 400, "invalidValue")


def test_malformed_json_and_wrong_shapes_are_invalid_syntax(scim: httpx.Client) -> None:
    response = scim.post("/Users", content=b'{"userName": ', headers={"content-type": SCIM_JSON})
    scim_error(response, 400, "invalidSyntax")
    scim_error(scim.post("/Users", json=["not", "an", "object"]), 400, "invalidSyntax")
    scim_error(scim.post("/Users", content=b""), 400, "invalidSyntax")


def test_attribute_names_are_case_insensitive(scim: httpx.Client) -> None:
    user = create(
        scim, "/Users", {"schemas": [USER], "USERNAME": "ci-user", "Name": {"GIVENNAME": "A"}}
    )
    assert user["userName"] == "ci-user"
    assert user["name"] == {"givenName": "A"}


def test_enterprise_extension_roundtrip(scim: httpx.Client) -> None:
    boss = create(scim, "/Users", user_body())
    body = user_body(schemas=[USER, ENTERPRISE])
    body[ENTERPRISE] = {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": boss["id"]},
    }
    user = create(scim, "/Users", body)
    assert user[ENTERPRISE]["manager"] == {"value": boss["id"]}
    assert user["schemas"] == [USER, ENTERPRISE]


def test_etags_if_match_and_if_none_match(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    url = f"/Users/{user['id']}"
    etag = user["meta"]["version"]
    not_modified = scim.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.headers["etag"] == etag
    assert scim.get(url, headers={"If-None-Match": 'W/"999"'}).status_code == 200
    op = patch({"op": "replace", "path": "displayName", "value": "X"})
    scim_error(scim.patch(url, json=op, headers={"If-Match": 'W/"999"'}), 412)
    ok = scim.patch(url, json=op, headers={"If-Match": etag})
    assert ok.status_code == 200
    assert ok.headers["etag"] == 'W/"2"'
    scim_error(scim.delete(url, headers={"If-Match": etag}), 412)  # stale now
    scim_error(scim.put(url, json=user_body(user["userName"]), headers={"If-Match": etag}), 412)
    assert scim.delete(url, headers={"If-Match": "*"}).status_code == 204


def test_delete_then_gone(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    response = scim.delete(f"/Users/{user['id']}")
    assert response.status_code == 204
    assert response.content == b""
    scim_error(scim.get(f"/Users/{user['id']}"), 404)
    scim_error(scim.delete(f"/Users/{user['id']}"), 404)


def test_attributes_and_excluded_attributes(scim: httpx.Client) -> None:
    body = user_body(schemas=[USER, ENTERPRISE])
    body[ENTERPRISE] = {"department": "R&D", "costCenter": "42"}
    user = create(scim, "/Users", body)
    url = f"/Users/{user['id']}"
    only = scim.get(url, params={"attributes": "userName,name.givenName"}).json()
    assert set(only) == {"schemas", "id", "userName", "name"}
    assert only["name"] == {"givenName": "Barbara"}
    ext = scim.get(url, params={"attributes": f"{ENTERPRISE}:department"}).json()
    assert ext[ENTERPRISE] == {"department": "R&D"}
    whole = scim.get(url, params={"attributes": ENTERPRISE}).json()
    assert whole[ENTERPRISE] == {"department": "R&D", "costCenter": "42"}
    without = scim.get(url, params={"excludedAttributes": "emails,meta,name.familyName"}).json()
    assert "emails" not in without and "meta" not in without
    assert without["name"] == {"givenName": "Barbara"}
    assert without["id"] == user["id"]  # returned: always
    blank = scim.get(url, params={"attributes": " , "}).json()
    assert blank == user  # only spaces and commas: ignored (SAP)


def test_attributes_apply_to_post_and_put_responses(scim: httpx.Client) -> None:
    """RFC 7644 §3.9: the parameters shape the resource returned by POST and PUT as well."""
    body = user_body(schemas=[USER, ENTERPRISE])
    body[ENTERPRISE] = {"department": "R&D"}
    picked = {"attributes": f"userName,name.givenName,{ENTERPRISE}:department"}
    created = scim.post("/Users", params=picked, json=body)
    assert created.status_code == 201 and created.headers["location"]
    user = created.json()
    assert set(user) == {"schemas", "id", "userName", "name", ENTERPRISE}
    assert user["name"] == {"givenName": "Barbara"}
    url = f"/Users/{user['id']}"
    assert scim.get(url, params=picked).json() == user
    body["title"] = "Guide"
    dropped = {"excludedAttributes": "emails,meta,name"}
    put = scim.put(url, params=dropped, json=body)
    assert put.status_code == 200 and put.headers["etag"] == 'W/"2"'
    assert put.json() == scim.get(url, params=dropped).json()
    assert put.json()["title"] == "Guide" and "emails" not in put.json()


def test_entra_bare_string_manager(scim: httpx.Client) -> None:
    """Entra sends the enterprise manager as the bare id; it is stored as {"value": id}."""
    boss, other = (create(scim, "/Users", user_body())["id"] for _ in range(2))
    user = create(scim, "/Users", user_body())
    url = f"/Users/{user['id']}"
    manager = f"{ENTERPRISE}:manager"
    added = scim.patch(url, json=patch({"op": "Add", "path": manager, "value": boss})).json()
    assert added[ENTERPRISE] == {"manager": {"value": boss}}
    assert added["schemas"] == [USER, ENTERPRISE]
    path_less = patch({"op": "Replace", "value": {manager: other}})
    assert scim.patch(url, json=path_less).json()[ENTERPRISE]["manager"] == {"value": other}
    whole = patch({"op": "replace", "path": ENTERPRISE, "value": {"manager": boss}})
    assert scim.patch(url, json=whole).json()[ENTERPRISE] == {"manager": {"value": boss}}
    removed = scim.patch(url, json=patch({"op": "Remove", "path": manager})).json()
    assert ENTERPRISE not in removed
    body = user_body(schemas=[USER, ENTERPRISE])
    body[ENTERPRISE] = {"manager": boss}
    assert create(scim, "/Users", body)[ENTERPRISE] == {"manager": {"value": boss}}
    not_an_id = patch({"op": "add", "path": manager, "value": 7})
    scim_error(scim.patch(url, json=not_an_id), 400, "invalidValue")
    emails = patch({"op": "add", "path": "emails", "value": "x@example.com"})
    scim_error(scim.patch(url, json=emails), 400, "invalidValue")  # multi-valued: no bare form


def test_search_with_post(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    request = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'userName eq "{user["userName"]}"',
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10,
    }
    result = scim.post("/Users/.search", json=request).json()
    assert result["totalResults"] == 1
    assert result["Resources"] == [
        {"schemas": user["schemas"], "id": user["id"], "userName": user["userName"]}
    ]
    scim_error(scim.post("/Users/.search", json={"filter": "x"}), 400, "invalidSyntax")
    bad = {**request, "count": "ten"}
    scim_error(scim.post("/Users/.search", json=bad), 400, "invalidValue")


def test_unknown_endpoint_and_method(scim: httpx.Client) -> None:
    scim_error(scim.get("/Widgets"), 404)
    scim_error(scim.put("/Users", json={}), 405)


def test_updates_respect_uniqueness(scim: httpx.Client) -> None:
    first = create(scim, "/Users", user_body())
    second = create(scim, "/Users", user_body())
    rename = patch({"op": "replace", "path": "userName", "value": first["userName"].upper()})
    scim_error(scim.patch(f"/Users/{second['id']}", json=rename), 409, "uniqueness")
    taken_email = user_body(second["userName"], emails=first["emails"])
    scim_error(scim.put(f"/Users/{second['id']}", json=taken_email), 409, "uniqueness")
    # nothing was half-written
    assert scim.get(f"/Users/{second['id']}").json() == second
    # a user keeps its own values
    same = scim.put(
        f"/Users/{first['id']}", json=user_body(first["userName"].upper(), emails=first["emails"])
    )
    assert same.status_code == 200


def test_shared_emails_when_uniqueness_is_off(tmp_path) -> None:
    from provisor.settings import Settings
    from tests.conftest import serve

    with serve(Settings(data_dir=tmp_path, unique_emails=False)) as live:
        with live.client() as client:
            shared = [{"value": "team@example.com"}]
            create(client, "/scim/Users", user_body(emails=shared))
            create(client, "/scim/Users", user_body(emails=shared))
            found = client.get(
                "/scim/Users", params={"filter": 'emails eq "TEAM@example.com"'}
            ).json()
    assert found["totalResults"] == 2


def test_scim_1_payloads_are_refused_with_invalid_vers(scim: httpx.Client) -> None:
    body = user_body(schemas=["urn:scim:schemas:core:1.0"])
    scim_error(scim.post("/Users", json=body), 400, "invalidVers")


def test_patching_the_password(server) -> None:
    from sqlalchemy import select

    from provisor.storage import tables as t

    with server.client() as client:
        user = create(client, "/scim/Users", user_body())
        op = patch({"op": "replace", "path": "password", "value": "n3w-Passw0rd"})
        changed = client.patch(f"/scim/Users/{user['id']}", json=op).json()
    assert "password" not in changed and changed["meta"]["version"] == 'W/"2"'
    with server.services.db.unscoped_read() as conn:
        stored = conn.execute(
            select(t.users.c.password_hash).where(t.users.c.id == user["id"])
        ).scalar_one()
    assert stored.startswith("$argon2id$") and "n3w-Passw0rd" not in stored
