"""The directory's custom schema pages: list, view, create from JSON, delete; viewers read."""

from __future__ import annotations

import orjson

from provisor.admins.model import Role
from provisor.context import Context
from tests.console.conftest import Console, csrf_of

CTX = Context.system("test")
URN = "urn:example:params:scim:schemas:extension:2.0:Badge"
SCHEMA = {
    "id": URN,
    "name": "Badge",
    "description": "Building badges",
    "attributes": [{"name": "badgeNumber", "type": "string", "multiValued": False}],
}


def test_create_view_and_delete_a_custom_schema(console: Console) -> None:
    browser = console.signed_in("ada")
    page = browser.get("/console/directory/schemas")
    assert page.status_code == 200 and "No custom schema yet." in page.text
    csrf = csrf_of(page)
    created = browser.post(
        "/console/directory/schemas", data={"csrf": csrf, "document": orjson.dumps(SCHEMA).decode()}
    )
    assert created.status_code == 303, created.text
    view = browser.get(created.headers["location"])
    assert view.status_code == 200
    assert "badgeNumber" in view.text and URN in view.text
    assert [x.id for x in console.services.directory.schemas(CTX).custom] == [URN]
    again = browser.post(
        "/console/directory/schemas", data={"csrf": csrf, "document": orjson.dumps(SCHEMA).decode()}
    )
    assert again.status_code == 409 and "already exists" in again.text
    broken = browser.post("/console/directory/schemas", data={"csrf": csrf, "document": "[1"})
    assert broken.status_code == 400 and "not JSON" in broken.text
    invalid = browser.post(
        "/console/directory/schemas", data={"csrf": csrf, "document": '{"id": "nope"}'}
    )
    assert invalid.status_code == 400
    assert browser.get("/console/directory/schemas/view", params={"id": "nope"}).status_code == 404
    deleted = browser.post("/console/directory/schemas/delete", data={"csrf": csrf, "id": URN})
    assert deleted.status_code == 303
    assert console.services.directory.schemas(CTX).custom == ()


def test_a_viewer_cannot_add_or_delete_schemas(console: Console) -> None:
    console.services.directory.create_schema(CTX, SCHEMA)
    browser = console.signed_in("val", Role.VIEWER)
    page = browser.get("/console/directory/schemas")
    assert "Badge" in page.text and 'id="schema-form"' not in page.text
    csrf = csrf_of(page)
    refused = browser.post("/console/directory/schemas/delete", data={"csrf": csrf, "id": URN})
    assert refused.status_code == 403
    assert [x.id for x in console.services.directory.schemas(CTX).custom] == [URN]
