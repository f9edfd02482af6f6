"""/scim/Groups: members, nesting, User.groups, large groups, concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import insert, select

from provisor.context import Context
from provisor.directory import store
from provisor.directory.service import Directory
from provisor.storage import tables as t
from provisor.storage.database import Database
from provisor.timestamps import now
from provisor.types import EntityType
from tests.conftest import LiveServer
from tests.helpers import USER, create, group_body, patch, scim_error, user_body

CTX = Context.system("tests")  # the service calls a test makes directly


def _member_ids(group: dict) -> set[str]:
    return {m["value"] for m in group.get("members", [])}


def test_create_with_members_and_read_back(scim: httpx.Client) -> None:
    alice = create(scim, "/Users", user_body())
    bob = create(scim, "/Users", user_body())
    group = create(scim, "/Groups", group_body("Admins", [alice["id"], bob["id"]]))
    assert _member_ids(group) == {alice["id"], bob["id"]}
    member = next(m for m in group["members"] if m["value"] == alice["id"])
    assert member["type"] == "User"
    assert member["$ref"].endswith(f"/scim/Users/{alice['id']}")
    assert scim.get(f"/Groups/{group['id']}").json() == group


def test_user_groups_are_computed_direct_and_indirect(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    inner = create(scim, "/Groups", group_body("inner", [user["id"]]))
    outer = create(scim, "/Groups", group_body("outer", [inner["id"]]))
    groups = scim.get(f"/Users/{user['id']}").json()["groups"]
    assert {(g["value"], g["type"], g["display"]) for g in groups} == {
        (inner["id"], "direct", "inner"),
        (outer["id"], "indirect", "outer"),
    }
    assert next(m for m in outer["members"])["type"] == "Group"
    # groups is read-only
    op = patch({"op": "add", "path": "groups", "value": [{"value": outer["id"]}]})
    scim_error(scim.patch(f"/Users/{user['id']}", json=op), 400, "mutability")


def test_patch_members_add_remove_replace(scim: httpx.Client) -> None:
    users = [create(scim, "/Users", user_body())["id"] for _ in range(4)]
    group = create(scim, "/Groups", group_body("team", users[:2]))
    url = f"/Groups/{group['id']}"
    added = scim.patch(
        url,
        json=patch(
            {"op": "add", "path": "members", "value": [{"value": users[2]}, {"value": users[0]}]}
        ),
    ).json()
    assert _member_ids(added) == set(users[:3])
    assert added["meta"]["version"] == 'W/"2"'
    removed = scim.patch(
        url, json=patch({"op": "remove", "path": f'members[value eq "{users[1]}"]'})
    ).json()
    assert _member_ids(removed) == {users[0], users[2]}
    entra_style = scim.patch(
        url, json=patch({"op": "Remove", "path": "members", "value": [{"value": users[0]}]})
    ).json()
    assert _member_ids(entra_style) == {users[2]}
    replaced = scim.patch(
        url, json=patch({"op": "replace", "path": "members", "value": [{"value": users[3]}]})
    ).json()
    assert _member_ids(replaced) == {users[3]}
    pathless = scim.patch(
        url,
        json=patch(
            {"op": "add", "value": {"members": [{"value": users[1]}], "displayName": "team 2"}}
        ),
    ).json()
    assert _member_ids(pathless) == {users[1], users[3]}
    assert pathless["displayName"] == "team 2"
    cleared = scim.patch(url, json=patch({"op": "remove", "path": "members"})).json()
    assert "members" not in cleared
    unchanged = scim.patch(url, json=patch({"op": "remove", "path": "members"})).json()
    assert unchanged["meta"]["version"] == cleared["meta"]["version"]


def test_members_filter_with_or_and_type(scim: httpx.Client) -> None:
    users = [create(scim, "/Users", user_body())["id"] for _ in range(3)]
    sub = create(scim, "/Groups", group_body())["id"]
    group = create(scim, "/Groups", group_body(None, [*users, sub]))
    url = f"/Groups/{group['id']}"
    op = {"op": "remove", "path": f'members[value eq "{users[0]}" or value eq "{users[1]}"]'}
    assert _member_ids(scim.patch(url, json=patch(op)).json()) == {users[2], sub}
    op = {"op": "remove", "path": 'members[type eq "Group"]'}
    assert _member_ids(scim.patch(url, json=patch(op)).json()) == {users[2]}


def test_member_errors(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    group = create(scim, "/Groups", group_body())
    url = f"/Groups/{group['id']}"
    wrong_type = patch(
        {"op": "add", "path": "members", "value": [{"value": user["id"], "type": "Group"}]}
    )
    scim_error(scim.patch(url, json=wrong_type), 400, "invalidValue")
    itself = patch({"op": "add", "path": "members", "value": [{"value": group["id"]}]})
    scim_error(scim.patch(url, json=itself), 400, "invalidValue")
    no_value = patch({"op": "add", "path": "members", "value": [{"type": "User"}]})
    scim_error(scim.patch(url, json=no_value), 400, "invalidValue")
    modify = patch(
        {"op": "replace", "path": f'members[value eq "{user["id"]}"].value', "value": "x"}
    )
    scim_error(scim.patch(url, json=modify), 400, "mutability")


def test_a_member_that_does_not_exist_is_refused(scim: httpx.Client) -> None:
    """POST, PUT and every PATCH form answer 404 and store nothing: no dangling member."""
    user = create(scim, "/Users", user_body())
    group = create(scim, "/Groups", group_body("kept", [user["id"]]))
    url = f"/Groups/{group['id']}"
    ghost = {"value": "hr-4711"}
    posted = group_body("new")
    posted["members"] = [{"value": user["id"]}, ghost]
    scim_error(scim.post("/Groups", json=posted), 404)
    put = group_body("renamed")
    put["members"] = [ghost]
    scim_error(scim.put(url, json=put), 404)
    for operation in (
        {"op": "add", "path": "members", "value": [{"value": user["id"]}, ghost]},
        {"op": "Add", "path": "members", "value": [{"$ref": None, **ghost}]},
        {"op": "replace", "path": "members", "value": [ghost]},
        {"op": "add", "value": {"members": [ghost], "displayName": "renamed"}},
    ):
        scim_error(scim.patch(url, json=patch(operation)), 404)
    assert scim.get(url).json() == group  # unchanged, version included
    listed = scim.get("/Groups", params={"filter": 'displayName eq "new"'}).json()
    assert listed["totalResults"] == 0


def test_a_member_deleted_while_it_is_added_leaves_no_dangling_row(pg_database: str) -> None:
    """PostgreSQL: a member found by a write stays locked until it commits, so a concurrent
    delete of the member waits, then removes the new membership with the others."""
    db = Database(pg_database)
    directory = Directory(db)
    try:
        user_id = directory.create(CTX, EntityType.USER, user_body(), "/scim").id
        group_id = directory.create(CTX, EntityType.GROUP, group_body(), "/scim").id
        deleting = threading.Thread(target=directory.delete, args=(CTX, EntityType.USER, user_id))
        with db.write(CTX) as tx:  # what adding a member does, held open
            assert store.kinds_of(tx, [user_id]) == {user_id: EntityType.USER}
            deleting.start()
            while deleting.is_alive() and not _waits_for_a_lock(db):
                deleting.join(0.01)
            store.add_members(tx, group_id, [store.MemberRow(user_id, "User", None)], now())
        deleting.join()
        with db.read(CTX) as tx:
            assert store.member_ids(tx, group_id) == []
    finally:
        db.dispose()


def test_a_member_deleted_while_its_group_is_renamed_does_not_deadlock(pg_database: str) -> None:
    """PostgreSQL: renaming a group locks it, then its users; deleting a user locks the
    user's groups first, so it waits for the rename instead of deadlocking with it."""
    db = Database(pg_database)
    directory = Directory(db)
    failures: list[BaseException] = []

    def delete_user() -> None:
        try:
            directory.delete(CTX, EntityType.USER, user_id)
        except BaseException as exc:  # reported to the test below
            failures.append(exc)

    try:
        user_id = directory.create(CTX, EntityType.USER, user_body(), "/scim").id
        group_id = directory.create(CTX, EntityType.GROUP, group_body("old", [user_id]), "/scim").id
        deleting = threading.Thread(target=delete_user)
        with db.write(CTX) as tx:  # what renaming the group does, held open
            assert store.get(tx, EntityType.GROUP, group_id, lock=True) is not None
            deleting.start()
            while deleting.is_alive() and not _waits_for_a_lock(db):
                deleting.join(0.01)
            store.touch_below(tx, [group_id], now())
        deleting.join()
        assert failures == []
        with db.read(CTX) as tx:
            assert store.get(tx, EntityType.USER, user_id) is None
            assert store.member_ids(tx, group_id) == []
    finally:
        db.dispose()


def _waits_for_a_lock(db: Database) -> bool:
    with db.unscoped_read() as conn:
        waiting = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).scalar()
    return bool(waiting)


def _displays(group: dict) -> dict[str, str | None]:
    return {m["value"]: m.get("display") for m in group.get("members", [])}


def test_member_display_is_accepted_and_returned(scim: httpx.Client) -> None:
    """display is a sub-attribute of members (RFC 7643 §2.4, §8.4), as Okta sends it."""
    a, b, c = (create(scim, "/Users", user_body())["id"] for _ in range(3))
    body = group_body("shown")
    body["members"] = [{"value": a, "display": "Alice"}, {"value": b}]
    group = create(scim, "/Groups", body)
    assert _displays(group) == {a: "Alice", b: None}
    url = f"/Groups/{group['id']}"
    add = {
        "op": "add",
        "path": "members",
        "value": [{"value": c, "display": "Carol"}, {"value": a, "display": "Other"}],
    }
    added = scim.patch(url, json=patch(add)).json()
    assert _displays(added) == {a: "Alice", b: None, c: "Carol"}  # add leaves a member as is
    body["members"] = [{"value": a, "display": "Alice Smith"}, {"value": c, "display": "Carol"}]
    replaced = scim.put(url, json=body).json()
    assert _displays(replaced) == {a: "Alice Smith", c: "Carol"}
    assert replaced["meta"]["version"] == 'W/"3"'
    assert scim.get(url).json() == replaced
    unchanged = scim.put(url, json=body).json()
    assert unchanged["meta"]["version"] == 'W/"3"'
    member = next(m for m in replaced["members"] if m["value"] == a)
    assert member["type"] == "User" and member["$ref"].endswith(f"/Users/{a}")
    found = scim.get("/Groups", params={"filter": 'members.display eq "alice smith"'}).json()
    assert [r["id"] for r in found["Resources"]] == [group["id"]]
    removed = scim.patch(url, json=patch({"op": "remove", "path": 'members[display eq "Carol"]'}))
    assert _displays(removed.json()) == {a: "Alice Smith"}
    path_less = {"op": "replace", "value": {"members": [{"value": b, "display": "Bob"}]}}
    assert _displays(scim.patch(url, json=patch(path_less)).json()) == {b: "Bob"}


def test_a_member_display_must_be_a_string(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    body = group_body("typed")
    body["members"] = [{"value": user["id"], "display": 5}]
    scim_error(scim.post("/Groups", json=body), 400, "invalidValue")
    group = create(scim, "/Groups", group_body("typed"))
    add = {"op": "add", "path": "members", "value": [{"value": user["id"], "display": ["x"]}]}
    scim_error(scim.patch(f"/Groups/{group['id']}", json=patch(add)), 400, "invalidValue")
    modify = {"op": "replace", "path": f'members[value eq "{user["id"]}"].display', "value": "x"}
    scim_error(scim.patch(f"/Groups/{group['id']}", json=patch(modify)), 400, "mutability")


def test_attributes_apply_to_group_writes(scim: httpx.Client) -> None:
    """attributes/excludedAttributes shape POST, PUT and PATCH responses (RFC 7644 §3.9)."""
    user = create(scim, "/Users", user_body())
    body = group_body("lean", [user["id"]])
    lean = {"excludedAttributes": "members"}
    created = scim.post("/Groups", params=lean, json=body)
    assert created.status_code == 201
    group = created.json()
    assert "members" not in group and group["displayName"] == "lean"
    url = f"/Groups/{group['id']}"
    assert scim.get(url, params=lean).json() == group
    assert _member_ids(scim.get(url).json()) == {user["id"]}  # excluded, not dropped
    body["displayName"] = "leaner"
    put = scim.put(url, params={"attributes": "displayName"}, json=body).json()
    assert put == {"schemas": group["schemas"], "id": group["id"], "displayName": "leaner"}
    patched = scim.patch(
        url,
        params={"attributes": "members.value"},
        json=patch({"op": "replace", "path": "displayName", "value": "lean again"}),
    ).json()
    assert patched == {
        "schemas": group["schemas"],
        "id": group["id"],
        "members": [{"value": user["id"]}],
    }


def test_deleting_a_user_removes_its_memberships(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    group = create(scim, "/Groups", group_body("g", [user["id"]]))
    assert scim.delete(f"/Users/{user['id']}").status_code == 204
    after = scim.get(f"/Groups/{group['id']}").json()
    assert "members" not in after
    assert after["meta"]["version"] == 'W/"2"'  # the group changed too


def test_put_replaces_members(scim: httpx.Client) -> None:
    a, b = (create(scim, "/Users", user_body())["id"] for _ in range(2))
    group = create(scim, "/Groups", group_body("g", [a]))
    replaced = scim.put(f"/Groups/{group['id']}", json=group_body("g2", [b])).json()
    assert _member_ids(replaced) == {b}
    assert replaced["displayName"] == "g2"


def test_group_name_extension_is_unique(scim: httpx.Client) -> None:
    ext = "urn:sap:cloud:scim:schemas:extension:custom:2.0:Group"
    body = group_body("Sales")
    body["schemas"].append(ext)
    body[ext] = {"name": "SALES", "description": "Sales team"}
    create(scim, "/Groups", body)
    body2 = group_body("Sales 2")
    body2[ext] = {"name": "sales"}
    scim_error(scim.post("/Groups", json=body2), 409, "uniqueness")


def test_excluding_members_on_get(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    group = create(scim, "/Groups", group_body("g", [user["id"]]))
    lean = scim.get(f"/Groups/{group['id']}", params={"excludedAttributes": "members"}).json()
    assert "members" not in lean and lean["displayName"] == "g"


@pytest.mark.slow
def test_patching_a_group_of_100000_members_touches_one_row(server: LiveServer) -> None:
    """Add and remove one member of a 100,000-member group, quickly, without a rewrite."""
    with server.client() as client:
        group = create(client, "/scim/Groups", group_body("everyone"))
    member_ids = [f"m-{i:06d}" for i in range(100_000)]
    with server.services.db.unscoped_write() as conn:
        conn.execute(
            insert(t.group_members),
            [
                {
                    "tenant": "default",
                    "group_id": group["id"],
                    "member_id": m,
                    "member_type": "User",
                }
                for m in member_ids
            ],
        )
    with server.client() as client:
        user = create(client, "/scim/Users", user_body())
        url = f"/scim/Groups/{group['id']}"
        lean = {"excludedAttributes": "members"}
        add = client.patch(
            url,
            params=lean,
            json=patch({"op": "add", "path": "members", "value": [{"value": user["id"]}]}),
        )
        remove = client.patch(
            url,
            params=lean,
            json=patch({"op": "remove", "path": f'members[value eq "{member_ids[500]}"]'}),
        )
        assert add.status_code == remove.status_code == 200
        full = client.get(url).json()
        groups_of_user = client.get(f"/scim/Users/{user['id']}").json()["groups"]
    ids = _member_ids(full)
    assert len(ids) == 100_000 and user["id"] in ids and member_ids[500] not in ids
    assert [g["value"] for g in groups_of_user] == [group["id"]]


def test_parallel_patches_to_one_group_lose_no_member(server: LiveServer) -> None:
    with server.client() as client:
        group = create(client, "/scim/Groups", group_body("busy"))
        users = [create(client, "/scim/Users", user_body())["id"] for _ in range(40)]
    url = f"/scim/Groups/{group['id']}"

    def add(user_id: str) -> int:
        with server.client() as client:
            op = patch({"op": "add", "path": "members", "value": [{"value": user_id}]})
            return client.patch(url, json=op, params={"excludedAttributes": "members"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(add, users))
    assert statuses == [200] * len(users)
    with server.client() as client:
        final = client.get(url).json()
    assert _member_ids(final) == set(users)
    assert final["meta"]["version"] == f'W/"{1 + len(users)}"'


def test_group_display_name_is_required(scim: httpx.Client) -> None:
    scim_error(
        scim.post("/Groups", json={"schemas": [group_body()["schemas"][0]]}), 400, "invalidValue"
    )


def test_group_filters(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())
    team = create(scim, "/Groups", group_body("Team Rocket", [user["id"]]))
    create(scim, "/Groups", group_body("Other"))

    def ids(text: str) -> set[str]:
        body = scim.get("/Groups", params={"filter": text}).json()
        return {r["id"] for r in body["Resources"]}

    assert ids('displayName eq "team rocket"') == {team["id"]}
    assert ids(f'members.value eq "{user["id"]}"') == {team["id"]}
    assert ids(f'members[value eq "{user["id"]}" and type eq "User"]') == {team["id"]}
    assert team["id"] not in ids("not (members pr)")
    users = scim.get("/Users", params={"filter": f'groups.value eq "{team["id"]}"'}).json()
    assert [r["id"] for r in users["Resources"]] == [user["id"]]
    by_name = scim.get("/Users", params={"filter": 'groups.display eq "TEAM ROCKET"'}).json()
    assert [r["id"] for r in by_name["Resources"]] == [user["id"]]


def test_sap_children_on_request(scim: httpx.Client) -> None:
    child = create(scim, "/Groups", group_body("child"))
    user = create(scim, "/Users", user_body())
    parent = create(scim, "/Groups", group_body("parent", [child["id"], user["id"]]))
    sap = "urn:ietf:params:scim:schemas:extension:sap:2.0:Group"
    assert sap not in parent
    got = scim.get(f"/Groups/{parent['id']}", params={"attributes": f"{sap}:children"}).json()
    assert [c["value"] for c in got[sap]["children"]] == [child["id"]]
    assert "members" not in got


def _stamp(scim: httpx.Client, user_id: str) -> tuple[str, str]:
    """A user's (version, lastModified)."""
    meta = scim.get(f"/Users/{user_id}").json()["meta"]
    return meta["version"], meta["lastModified"]


def _changed(scim: httpx.Client, before: dict[str, tuple[str, str]]) -> set[str]:
    """Which of the users have a new version, each with a later lastModified."""
    moved = set()
    for user_id, (version, modified) in before.items():
        now_version, now_modified = _stamp(scim, user_id)
        if now_version != version:
            assert now_modified > modified, (user_id, modified, now_modified)
            moved.add(user_id)
        else:
            assert now_modified == modified
    return moved


def test_membership_changes_change_the_users_version_and_last_modified(
    scim: httpx.Client,
) -> None:
    """Each path that changes a user's groups gives exactly the affected users a new
    version and lastModified (RFC 7644 §3.14; delta reads use meta.lastModified)."""
    users = [create(scim, "/Users", user_body())["id"] for _ in range(4)]
    a, b, c, d = users
    group = create(scim, "/Groups", group_body("team", [a, b]))
    url = f"/Groups/{group['id']}"

    def after(change: httpx.Response) -> set[str]:
        assert change.status_code in (200, 201, 204), change.text
        return _changed(scim, seen)

    seen = {u: _stamp(scim, u) for u in users}
    add = patch({"op": "add", "path": "members", "value": [{"value": c}, {"value": a}]})
    assert after(scim.patch(url, json=add)) == {c}
    seen = {u: _stamp(scim, u) for u in users}
    remove = patch({"op": "remove", "path": f'members[value eq "{b}"]'})
    assert after(scim.patch(url, json=remove)) == {b}
    seen = {u: _stamp(scim, u) for u in users}
    listed = patch({"op": "remove", "path": "members", "value": [{"value": c}, {"value": d}]})
    assert after(scim.patch(url, json=listed)) == {c}
    seen = {u: _stamp(scim, u) for u in users}
    replace = patch({"op": "replace", "path": "members", "value": [{"value": a}, {"value": d}]})
    assert after(scim.patch(url, json=replace)) == {d}
    seen = {u: _stamp(scim, u) for u in users}
    put = scim.put(url, json=group_body("team", [a, b, d]))
    assert after(put) == {b}
    seen = {u: _stamp(scim, u) for u in users}
    renamed = patch({"op": "replace", "path": "displayName", "value": "crew"})
    assert after(scim.patch(url, json=renamed)) == {a, b, d}
    seen = {u: _stamp(scim, u) for u in users}
    display_only = scim.put(
        url,
        json={
            **group_body("crew", [a, b]),
            "members": [{"value": a, "display": "A"}, {"value": b}],
        },
    )
    assert after(display_only) == {d}, "a member's display is the group's, not the user's"
    seen = {u: _stamp(scim, u) for u in users}
    assert after(scim.delete(url)) == {a, b}
    seen = {u: _stamp(scim, u) for u in users}
    created = scim.post("/Groups", json=group_body("new", [c]))
    assert after(created) == {c}


def test_nesting_changes_change_the_users_below(scim: httpx.Client) -> None:
    """A user's groups include the groups above its own: changing them changes the user."""
    user, other = (create(scim, "/Users", user_body())["id"] for _ in range(2))
    inner = create(scim, "/Groups", group_body("inner", [user]))
    outer = create(scim, "/Groups", group_body("outer", [other]))
    seen = {u: _stamp(scim, u) for u in (user, other)}
    etag = scim.get(f"/Users/{user}").headers["etag"]
    add = patch({"op": "add", "path": "members", "value": [{"value": inner["id"]}]})
    assert scim.patch(f"/Groups/{outer['id']}", json=add).status_code == 200
    assert _changed(scim, seen) == {user}
    fresh = scim.get(f"/Users/{user}", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and outer["id"] in {g["value"] for g in fresh.json()["groups"]}
    seen = {u: _stamp(scim, u) for u in (user, other)}
    rename = patch({"op": "replace", "path": "displayName", "value": "top"})
    assert scim.patch(f"/Groups/{outer['id']}", json=rename).status_code == 200
    assert _changed(scim, seen) == {user, other}
    seen = {u: _stamp(scim, u) for u in (user, other)}
    assert scim.delete(f"/Groups/{outer['id']}").status_code == 204
    assert _changed(scim, seen) == {user, other}


def test_bulk_membership_changes_change_the_users(scim: httpx.Client) -> None:
    user = create(scim, "/Users", user_body())["id"]
    group = create(scim, "/Groups", group_body("bulk"))
    seen = {user: _stamp(scim, user)}
    add = patch({"op": "add", "path": "members", "value": [{"value": user}]})
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "PATCH", "path": f"/Groups/{group['id']}", "data": add}],
    }
    response = scim.post("/Bulk", json=body)
    assert response.status_code == 200 and response.json()["Operations"][0]["status"] == "200"
    assert _changed(scim, seen) == {user}


def test_a_put_that_keeps_1000_members_and_adds_one_touches_one_user(
    scim: httpx.Client, server: LiveServer
) -> None:
    group = create(scim, "/Groups", group_body("many"))
    kept = [f"kept-{i:04d}" for i in range(1000)]
    stamp = now()
    with server.services.db.unscoped_write() as conn:
        conn.execute(
            insert(t.users),
            [
                {
                    "tenant": "default",
                    "id": m,
                    "user_name": m,
                    "user_name_key": m,
                    "created": stamp,
                    "last_modified": stamp,
                    "version": 1,
                    "doc": f'{{"schemas":["{USER}"],"id":"{m}","userName":"{m}"}}',
                }
                for m in kept
            ],
        )
        conn.execute(
            insert(t.group_members),
            [
                {
                    "tenant": "default",
                    "group_id": group["id"],
                    "member_id": m,
                    "member_type": "User",
                }
                for m in kept
            ],
        )
    user = create(scim, "/Users", user_body())["id"]
    seen = {user: _stamp(scim, user)}
    put = scim.put(f"/Groups/{group['id']}", json=group_body("many", [*kept, user]))
    assert put.status_code == 200, put.text
    assert _changed(scim, seen) == {user}
    with server.services.db.unscoped_read() as conn:
        stamps = conn.execute(select(t.users.c.version, t.users.c.last_modified)).all()
    assert stamps.count((1, stamp)) == 1000, "the members kept are not touched"
