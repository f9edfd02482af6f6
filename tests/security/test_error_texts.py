"""Issue 16, item 8: error texts a person understands. A refused caller learns what was
refused, which permissions would allow it and what to do; a bad request learns what was
wrong, where, and what to send; a node whose master key cannot decrypt the data answers a
server error (500), not a client error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from provisor.runtime import Services
from provisor.settings import Settings
from provisor.web.app import create_app
from tests.conftest import LiveServer

PROBLEM = "application/problem+json"
SCIM = "application/scim+json"


@pytest.fixture
def api(sqlite_server: LiveServer) -> Iterator[httpx.Client]:
    with sqlite_server.client(path="/api/v1") as client:
        yield client


def detail(response: httpx.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    text: str = body["detail"]
    return text


def post_json(api: httpx.Client, path: str, text: bytes, **headers: str) -> httpx.Response:
    return api.post(path, content=text, headers={"content-type": "application/json", **headers})


def test_a_refusal_names_the_call_the_permissions_and_what_to_do(
    sqlite_server: LiveServer,
) -> None:
    with sqlite_server.client(auth=sqlite_server.new_client("manage_users")) as hr:
        text = detail(hr.get("/api/v1/systems"), 403)
        name = text.removeprefix("The client ").split(" ")[0]  # the client's name
        assert name.startswith("test-")
        assert text == (
            f"The client {name} may not call GET /api/v1/systems: that needs one of the "
            "permissions view or admin. Ask an administrator for a technical user with one of "
            "these permissions."
        )
        scim = hr.get("/scim/Groups")
    assert scim.status_code == 403 and scim.headers["content-type"].startswith(SCIM)
    assert scim.json()["detail"] == (
        f"The client {name} may not call GET /scim/Groups: that needs one of the "
        "permissions manage_groups, view or admin. Ask an administrator for a technical user with "
        "one of these permissions."
    )


def test_json_syntax_errors_give_line_and_column(api: httpx.Client) -> None:
    text = detail(post_json(api, "/systems", b'{"name": "x",\n "type": }'))
    assert text == (
        "The request body is not valid JSON: expecting value at line 2, column 10. "
        "Send a well-formed JSON document."
    )
    assert "decode error" not in text


def test_missing_fields_wrong_types_and_unknown_values_are_named(api: httpx.Client) -> None:
    missing = api.post("/systems", json={"name": "x"})
    assert detail(missing) == (
        "The field type is missing: it is required. The field role is missing: it is required."
    )
    assert missing.json()["problems"] == [
        "The field type is missing: it is required.",
        "The field role is missing: it is required.",
    ]
    wrong = api.post(
        "/systems", json={"name": 5, "type": "scim", "role": "target", "properties": []}
    )
    assert detail(wrong) == (
        "The field name should be a string, not 5. "
        "The field properties should be a JSON object, not an array."
    )
    nested = api.post(
        "/systems", json={"name": "x", "type": "scim", "role": "target", "properties": {"URL": 1}}
    )
    assert detail(nested) == "The field properties.URL should be a string, not 1."
    role = api.post("/systems", json={"name": "x", "type": "scim", "role": "bogus"})
    assert detail(role) == (
        "The field role should be one of 'source', 'target' or 'proxy', not \"bogus\"."
    )


def test_a_misspelt_field_lists_the_fields_the_request_takes(api: httpx.Client) -> None:
    text = detail(api.put("/job-settings", json={"retention_days": 7}))
    assert text == (
        "The field logRetentionDays is missing: it is required. The field retention_days is "
        "not one this request takes (misspelt?). The fields it takes are logRetentionDays."
    )


def test_query_parameters_are_named_with_what_they_take(api: httpx.Client) -> None:
    assert detail(api.get("/jobs", params={"limit": "abc"})) == (
        'The query parameter limit should be a whole number, not "abc".'
    )
    assert detail(api.get("/jobs", params={"status": "Bogus"})).startswith(
        "The query parameter status should be one of 'Queued', 'Running',"
    )
    assert detail(api.post("/certificates/maintain", params={"at": "soon"})) == (
        'The query parameter at should be a date and time such as 2026-01-31T12:00:00Z, not "soon".'
    )


def test_a_body_that_is_not_a_json_object_says_what_to_send(api: httpx.Client) -> None:
    assert detail(post_json(api, "/systems", b"[]")) == (
        "The request body should be a JSON object, not an array."
    )
    assert detail(post_json(api, "/systems", b"")) == (
        "The request has no body: send a JSON object (Content-Type: application/json)."
    )
    text = api.post("/systems", content=b"name=x", headers={"content-type": "text/plain"})
    assert detail(text) == (
        "The request body is text/plain, which this operation does not read: send JSON with "
        "the header Content-Type: application/json."
    )


def test_a_secret_of_the_wrong_type_is_not_repeated(api: httpx.Client) -> None:
    body = {"name": "x", "type": "scim", "role": "target", "properties": {"Password": 4711}}
    assert detail(api.post("/systems", json=body)) == (
        "The field properties.Password should be a string."
    )


def test_scim_query_errors_keep_the_scim_body(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as scim:
        response = scim.get("/scim/Users", params={"count": "many"})
    assert response.status_code == 400 and response.headers["content-type"].startswith(SCIM)
    assert response.json()["scimType"] == "invalidValue"
    assert response.json()["detail"] == (
        'The query parameter count should be a whole number, not "many".'
    )


@pytest.mark.anyio
async def test_a_node_with_another_master_key_answers_a_server_error(
    sqlite_server: LiveServer,
) -> None:
    with sqlite_server.client(path="/api/v1") as api:
        assert api.get("/certificates/ca").status_code == 200  # the CA key is stored now
    other: Settings = sqlite_server.settings.model_copy(
        update={"secret_key": SecretStr("another node's key " * 3)}
    )
    services = Services.open(other)
    try:
        transport = httpx.ASGITransport(app=create_app(other, services))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://node2", auth=sqlite_server.admin
        ) as node2:
            response = await node2.get("/api/v1/certificates/ca")
    finally:
        services.close()
    assert response.status_code == 500 and response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["title"] == "The master key does not match the data"
    assert body["detail"].startswith(
        "Stored certificate keys cannot be decrypted: this server's master key "
        "(PROVISOR_SECRET_KEY or <data-dir>/secret.key) is not the one they were saved with."
    )


def test_a_pattern_of_words_and_a_wrong_method_are_explained(api: httpx.Client) -> None:
    source = api.post(
        "/systems", json={"name": "S", "type": "local-identity-directory", "role": "source"}
    ).json()
    export = api.get(f"/systems/{source['id']}/export", params={"format": "xml"})
    assert detail(export) == 'The query parameter format should be one of json or csv, not "xml".'
    wrong = api.delete("/job-settings")
    assert detail(wrong, 405) == "DELETE is not allowed on /api/v1/job-settings: use GET, PUT."
    assert wrong.headers["allow"] == "GET, PUT"
