"""The OpenAPI document tells the truth: the errors provisor sends, SCIM bodies, tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from provisor.settings import Settings
from provisor.web.app import create_app
from tests.conftest import LiveServer
from tests.helpers import GROUP, USER, create, user_body

SCIM_JSON = "application/scim+json"
PROBLEM_JSON = "application/problem+json"
METHODS = {"get", "put", "post", "patch", "delete"}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The document /openapi.json serves (made once: FastAPI takes seconds to make it)."""
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("openapi")))
    yield app.openapi()
    app.state.services.close()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method.upper(), operation


def error_media_type(path: str) -> str:
    """What provisor's error handler answers on this path (web/errors.py)."""
    if path.startswith(("/scim", "/ipsproxy")):
        return SCIM_JSON
    if path in ("/oauth2/token", "/health", "/health/live", "/health/ready"):
        return "application/json"  # RFC 6749 §5.2 errors; the health report
    return PROBLEM_JSON


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):  # not SCIM's $ref attribute
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_no_validation_error_responses_that_provisor_never_sends(
    document: dict[str, Any],
) -> None:
    assert '"422"' not in json.dumps(document)
    schemas = document["components"]["schemas"]
    assert not {"HTTPValidationError", "ValidationError"} & set(schemas)
    for ref in set(refs(document)):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_every_operation_has_a_declared_tag_in_one_group(document: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in document["tags"]}
    grouped = [tag for group in document["x-tagGroups"] for tag in group["tags"]]
    assert sorted(grouped) == sorted(declared)
    used = set()
    for path, method, operation in operations(document):
        assert operation.get("tags"), f"{method} {path} has no tag"
        assert set(operation["tags"]) <= declared, (method, path, operation["tags"])
        used.update(operation["tags"])
    assert used == declared


def test_errors_and_scim_bodies_declare_their_media_types(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        expected = error_media_type(path)
        for status, response in operation["responses"].items():
            where = f"{method} {path} {status}"
            content = response.get("content", {})
            if status == "default" or int(status) >= 400:
                assert list(content) == [expected], where
                assert content[expected]["schema"], where
            elif path.startswith("/scim") and status not in ("204", "304"):
                assert list(content) == [SCIM_JSON], where
                assert "$ref" in content[SCIM_JSON]["schema"], where
        if path.startswith(("/scim", "/ipsproxy", "/api/v1", "/ips/")):
            assert {"400", "401", "403", "default"} <= set(operation["responses"]), path


def conforms(document: dict[str, Any], response: httpx.Response, component: str) -> None:
    """The response is what the document declares for it."""
    assert response.headers["content-type"].startswith(SCIM_JSON), response.headers
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(response.json())


def test_what_the_scim_api_answers_conforms_to_the_document(
    sqlite_server: LiveServer, document: dict[str, Any]
) -> None:
    with sqlite_server.client(path="/scim") as scim:
        user = create(scim, "/Users", user_body())
        create(
            scim,
            "/Groups",
            {"schemas": [GROUP], "displayName": "g", "members": [{"value": user["id"]}]},
        )
        answers = {
            "/Users": "UserList",
            f"/Users/{user['id']}": "User",
            "/Groups": "GroupList",
            "/ServiceProviderConfig": "ServiceProviderConfig",
            "/ResourceTypes": "ResourceTypeList",
            "/ResourceTypes/User": "ResourceType",
            "/Schemas": "SchemaList",
            f"/Schemas/{USER}": "Schema",
            "/Users?attributes=userName": "UserList",
            "/Nope": "ScimError",
            "/Users?count=x": "ScimError",
        }
        for path, component in answers.items():
            conforms(document, scim.get(path), component)
        with pytest.raises(jsonschema.ValidationError):  # the check can fail
            conforms(document, scim.get("/Groups"), "ScimError")
