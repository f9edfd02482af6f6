"""The directory's group pages: search, view, create, rename, members paged, add and remove,
delete; viewers read only."""

from __future__ import annotations

from typing import Any

from provisor.admins.model import Role
from provisor.context import Context
from provisor.scim import schemas as s
from provisor.types import EntityType
from tests.console.conftest import Console, csrf_of

CTX = Context.system("test")


def make(console: Console, kind: EntityType, body: dict[str, Any]) -> str:
    return console.services.directory.create(CTX, kind, body, "/scim").id


def user(console: Console, name: str) -> str:
    return make(console, EntityType.USER, {"schemas": [s.USER], "userName": name})


def group(console: Console, name: str, members: list[str] = []) -> str:  # noqa: B006
    body = {"schemas": [s.GROUP], "displayName": name, "members": [{"value": m} for m in members]}
    return make(console, EntityType.GROUP, body)


def member_ids(console: Console, group_id: str) -> list[str]:
    rows, _total, _next = console.services.directory.members(CTX, group_id, limit=1000)
    return [r.id for r in rows]


def test_groups_are_searched_by_display_name_prefix(console: Console) -> None:
    group(console, "Sales EMEA")
    group(console, "Sales US")
    group(console, "Support")
    browser = console.signed_in("ada")
    page = browser.get("/console/directory/groups", params={"q": "sales"})
    assert page.status_code == 200
    assert "Sales EMEA" in page.text and "Sales US" in page.text and "Support" not in page.text


def test_members_are_paged_with_names(console: Console) -> None:
    users = [user(console, f"member{i:02}") for i in range(53)]
    group_id = group(console, "Big", users)
    browser = console.signed_in("ada")
    first = browser.get(f"/console/directory/groups/{group_id}")
    assert first.status_code == 200
    assert first.text.count('<td><a href="/console/directory/users/') == 50
    assert '<span class="count">53</span>' in first.text
    link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = browser.get(link)
    assert second.text.count('<td><a href="/console/directory/users/') == 3
    shown = {
        part.split('"')[0]
        for page in (first, second)
        for part in page.text.split('<td><a href="/console/directory/users/')[1:]
    }
    assert shown == set(users)
    assert 'rel="next"' not in second.text
    bad = browser.get(f"/console/directory/groups/{group_id}", params={"after": "'; drop"})
    assert bad.status_code == 400 and "page link" in bad.text


def test_a_large_group_counts_its_members_up_to_a_bound(console: Console) -> None:
    users = [user(console, f"m{i}") for i in range(4)]
    group_id = group(console, "Four", users)
    rows, total, following = console.services.directory.members(CTX, group_id, limit=2, most=2)
    assert len(rows) == 2 and total == 3 and following == rows[-1].id
    rest, _total, last = console.services.directory.members(CTX, group_id, after=following)
    assert len(rest) == 2 and last is None


def test_create_rename_add_remove_delete(console: Console) -> None:
    alice, alfred, bob = user(console, "alice"), user(console, "alfred"), user(console, "bob")
    browser = console.signed_in("ada")
    csrf = csrf_of(browser.get("/console/directory/groups/new"))
    created = browser.post(
        "/console/directory/groups/new", data={"csrf": csrf, "displayName": "Readers"}
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    group_id = location.rsplit("/", 1)[1]
    found = browser.get(location, params={"find": "al"})
    assert "alice" in found.text and "alfred" in found.text and "bob" not in found.text
    added = browser.post(f"{location}/members/add", data={"csrf": csrf, "member": [alice, alfred]})
    assert added.status_code == 303, added.text
    assert sorted(member_ids(console, group_id)) == sorted([alice, alfred])
    none = browser.post(f"{location}/members/add", data={"csrf": csrf})
    assert none.status_code == 400 and "Select the users" in none.text
    unknown = browser.post(f"{location}/members/add", data={"csrf": csrf, "member": ["nope"]})
    assert unknown.status_code == 404 and "nope" in unknown.text
    removed = browser.post(f"{location}/members/remove", data={"csrf": csrf, "member": alice})
    assert removed.status_code == 303
    assert member_ids(console, group_id) == [alfred]
    renamed = browser.post(location, data={"csrf": csrf, "displayName": "Writers"})
    assert renamed.status_code == 303
    assert "Writers" in browser.get(location).text
    stale = browser.post(location, data={"csrf": csrf, "displayName": "X", "version": 'W/"1"'})
    assert stale.status_code == 412 and "version" in stale.text
    deleted = browser.post(f"{location}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert browser.get(location).status_code == 404
    assert bob


def test_a_viewer_cannot_change_members(console: Console) -> None:
    alice = user(console, "alice")
    group_id = group(console, "Readers", [alice])
    browser = console.signed_in("val", Role.VIEWER)
    page = browser.get(f"/console/directory/groups/{group_id}")
    assert page.status_code == 200 and "alice" in page.text
    assert "Remove" not in page.text and "Delete group" not in page.text
    refused = browser.post(
        f"/console/directory/groups/{group_id}/members/remove",
        data={"csrf": csrf_of(page), "member": alice},
    )
    assert refused.status_code == 403
    assert member_ids(console, group_id) == [alice]
