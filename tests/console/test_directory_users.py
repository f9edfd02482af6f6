"""The directory's user pages: search (simple and SCIM filter), view, create, edit, replace,
delete; viewers read only."""

from __future__ import annotations

import orjson

from provisor.admins.model import Role
from provisor.context import Context, Permission
from provisor.directory.service import ListQuery
from provisor.scim import schemas as s
from provisor.types import EntityType
from tests.console.conftest import Console, csrf_of

CTX = Context.system("test")
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def make_user(console: Console, user_name: str, **extra: object) -> str:
    body = {"schemas": [s.USER], "userName": user_name, **extra}
    return console.services.directory.create(CTX, EntityType.USER, body, "/scim").id


def test_simple_search_finds_by_user_name_display_name_and_email(console: Console) -> None:
    make_user(console, "alice", displayName="Alice Liddell", emails=[{"value": "al@x.org"}])
    make_user(console, "bob", displayName="Robert <b>", emails=[{"value": "bob@x.org"}])
    make_user(console, "alfred", active=False)
    browser = console.signed_in("ada")
    page = browser.get("/console/directory/users")
    assert page.status_code == 200
    assert "alice" in page.text and "bob" in page.text
    assert "Robert &lt;b&gt;" in page.text  # user data is escaped
    found = browser.get("/console/directory/users", params={"q": "AL"})
    assert "alice" in found.text and "alfred" in found.text and ">bob<" not in found.text
    assert "inactive" in found.text
    assert found.text.index(">alfred<") < found.text.index(">alice<")  # in userName order
    by_display = browser.get("/console/directory/users", params={"q": "rob", "by": "displayName"})
    assert ">bob<" in by_display.text and "alice" not in by_display.text
    by_mail = browser.get("/console/directory/users", params={"q": "BOB@x.org", "by": "email"})
    assert ">bob<" in by_mail.text and "alice" not in by_mail.text
    address = browser.get("/console/directory/users", params={"q": "al@x.org"})
    assert ">alice<" in address.text  # a userName search with an address finds it too


def test_scim_filter_and_its_errors(console: Console) -> None:
    make_user(
        console, "carol", **{"schemas": [s.USER, ENTERPRISE], ENTERPRISE: {"department": "Sales"}}
    )
    make_user(console, "dave")
    browser = console.signed_in("ada")
    page = browser.get(
        "/console/directory/users", params={"filter": f'{ENTERPRISE}:department eq "Sales"'}
    )
    assert page.status_code == 200
    assert "carol" in page.text and "dave" not in page.text
    bad = browser.get("/console/directory/users", params={"filter": 'userName eq "unclosed'})
    assert bad.status_code == 400
    assert "The filter is not valid" in bad.text
    unknown = browser.get("/console/directory/users", params={"filter": 'nope eq "x"'})
    assert unknown.status_code == 400
    assert "nope" in unknown.text


def test_cursor_paging_is_bounded(console: Console) -> None:
    for i in range(55):
        make_user(console, f"user{i:02}")
    browser = console.signed_in("ada")
    first = browser.get("/console/directory/users")
    assert first.text.count('<td><a href="/console/directory/users/') == 50
    assert "55" in first.text
    link = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = browser.get(link.replace("&amp;", "&"))
    assert second.status_code == 200
    assert second.text.count('<td><a href="/console/directory/users/') == 5
    bad = browser.get("/console/directory/users", params={"after": "x' or 1=1"})
    assert bad.status_code == 400
    prefixed = browser.get("/console/directory/users", params={"q": "user"})
    assert prefixed.text.count('<td><a href="/console/directory/users/') == 50
    assert "1\u201350 of 55" in prefixed.text
    rest = browser.get("/console/directory/users", params={"q": "user", "start": 51})
    assert rest.text.count('<td><a href="/console/directory/users/') == 5
    assert ">user54<" in rest.text and 'rel="prev"' in rest.text
    too_deep = browser.get("/console/directory/users", params={"q": "user", "start": 10**6})
    assert too_deep.status_code == 400 and "start must be" in too_deep.text


def test_view_shows_every_schema_and_groups(console: Console) -> None:
    user_id = make_user(
        console,
        "erin",
        **{"schemas": [s.USER, ENTERPRISE], ENTERPRISE: {"employeeNumber": "E-42"}},
        name={"givenName": "Erin", "familyName": "Example"},
    )
    group = {"schemas": [s.GROUP], "displayName": "Readers", "members": [{"value": user_id}]}
    console.services.directory.create(CTX, EntityType.GROUP, group, "/scim")
    browser = console.signed_in("ada")
    page = browser.get(f"/console/directory/users/{user_id}")
    assert page.status_code == 200
    assert "E-42" in page.text and "Enterprise" in page.text
    assert "Readers" in page.text and "direct" in page.text
    assert 'id="user-form"' in page.text
    missing = browser.get("/console/directory/users/nope")
    assert missing.status_code == 404


def test_create_edit_replace_and_delete(console: Console) -> None:
    browser = console.signed_in("ada")
    csrf = csrf_of(browser.get("/console/directory/users/new"))
    created = browser.post(
        "/console/directory/users/new",
        data={
            "csrf": csrf,
            "userName": "frank",
            "givenName": "Frank",
            "email": "f@x.org",
            "active": "1",
        },
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    user_id = location.rsplit("/", 1)[1]
    doc = orjson.loads(
        console.services.directory.get(CTX, EntityType.USER, user_id, "/scim").body or b"{}"
    )
    assert doc["emails"] == [{"value": "f@x.org", "primary": True}]
    page = browser.get(location)
    version = page.text.split('name="version" value="')[1].split('"')[0]
    edited = browser.post(
        location,
        data={
            "csrf": csrf,
            "version": version.replace("&#34;", '"'),
            "userName": "frank2",
            "familyName": "Ford",
            "email": "",
        },
    )
    assert edited.status_code == 303, edited.text
    doc = orjson.loads(
        console.services.directory.get(CTX, EntityType.USER, user_id, "/scim").body or b"{}"
    )
    assert doc["userName"] == "frank2" and doc["active"] is False
    assert doc["name"] == {"familyName": "Ford"} and "emails" not in doc
    stale = browser.post(location, data={"csrf": csrf, "version": 'W/"1"', "userName": "x"})
    assert stale.status_code in (409, 412) and "version" in stale.text
    duplicate = make_user(console, "taken")
    assert duplicate
    clash = browser.post(location, data={"csrf": csrf, "userName": "taken"})
    assert clash.status_code == 409 and "already" in clash.text
    replaced = browser.post(
        f"{location}/json",
        data={
            "csrf": csrf,
            "document": orjson.dumps({"schemas": [s.USER], "userName": "frank3"}).decode(),
        },
    )
    assert replaced.status_code == 303, replaced.text
    bad_json = browser.post(f"{location}/json", data={"csrf": csrf, "document": "{nope"})
    assert bad_json.status_code == 400 and "not JSON" in bad_json.text
    invalid = browser.post(
        f"{location}/json", data={"csrf": csrf, "document": '{"schemas": ["' + s.USER + '"]}'}
    )
    assert invalid.status_code == 400 and "userName" in invalid.text
    deleted = browser.post(f"{location}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert browser.get(location).status_code == 404


def test_a_viewer_reads_but_changes_nothing(console: Console) -> None:
    user_id = make_user(console, "gina")
    browser = console.signed_in("val", Role.VIEWER)
    page = browser.get(f"/console/directory/users/{user_id}")
    assert page.status_code == 200
    assert 'id="user-form"' not in page.text and "Delete user" not in page.text
    csrf = csrf_of(page)
    refused = browser.post(f"/console/directory/users/{user_id}/delete", data={"csrf": csrf})
    assert refused.status_code == 403
    edit = browser.post(f"/console/directory/users/{user_id}", data={"csrf": csrf, "userName": "x"})
    assert edit.status_code == 403
    listed = orjson.loads(
        console.services.directory.search(CTX, EntityType.USER, ListQuery(), "/scim")
    )
    assert [r["userName"] for r in listed["Resources"]] == ["gina"]
    assert Permission.VIEW
