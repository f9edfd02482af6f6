"""Builders and assertions shared by the tests."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SAP_USER = "urn:ietf:params:scim:schemas:extension:sap:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def user_body(name: str | None = None, **extra: Any) -> dict[str, Any]:
    """A realistic SCIM user."""
    name = name or f"user-{uuid.uuid4().hex[:10]}"
    body: dict[str, Any] = {
        "schemas": [USER],
        "userName": name,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Barbara Jensen",
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        "active": True,
    }
    body.update(extra)
    return body


def group_body(name: str | None = None, members: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schemas": [GROUP], "displayName": name or f"g-{uuid.uuid4().hex[:8]}"}
    if members is not None:
        body["members"] = [{"value": m} for m in members]
    return body


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def scim_error(
    response: httpx.Response, status: int, scim_type: str | None = None
) -> dict[str, Any]:
    """Assert that a response is a SCIM error with this status (and scimType)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(SCIM_JSON)
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("detail")
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def create(client: httpx.Client, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(endpoint, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def wait_until_serving(url: str, process: subprocess.Popen[Any], log: Path) -> None:
    """Wait (at most 120 s: a busy machine) until the ``provisor serve`` subprocess at ``url``
    answers /health; its log's end when it stops first."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, f"provisor serve stopped: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "provisor serve did not start"
        time.sleep(0.2)
