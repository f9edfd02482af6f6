"""Credentials stay secret (issue 13, items 4a, 4b, 4d): credential status cannot be dropped
without the value, transformations never see a credential, and errors carry no back-end
body beyond a short excerpt and no server internals."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from provisor.context import Context
from provisor.jobs.export import LogType
from provisor.jobs.model import JobStatus, JobType
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.systems import store
from provisor.systems.secrets import MASK
from provisor.timestamps import now
from tests.conftest import LiveServer
from tests.jobs.conftest import add_users, lid_source, run_job, system

SECRET = "S3cret-XYZ-4711"
TOKEN = "tok-9f8e7d6c5b4a"
PROBLEM = "application/problem+json"


@pytest.fixture
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client(path="/api/v1") as client:
        yield client


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    detail: str = response.json()["detail"]
    return detail


def csv_target_body(source_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Files",
        "type": "csv",
        "role": "target",
        "sourceSystemIds": [source_id],
        "properties": {
            "csv.user.file": "secret-users.csv",
            "csv.group.file": "secret-groups.csv",
            "Password": SECRET,
            "ApiToken": TOKEN,
        },
        "credentialKeys": ["Password", "ApiToken"],
        **extra,
    }


def leaking_write_document() -> dict[str, Any]:
    """The CSV default write document, plus constants naming the credentials."""
    leaks = [
        {"constant": "%Password%", "targetPath": "$.nickName"},
        {"constant": "token %ApiToken%", "targetPath": "$.title"},
    ]
    return {
        "user": {
            "mappings": [
                {"sourcePath": "$", "targetPath": "$"},
                {"type": "remove", "targetPath": "$.schemas"},
                {"sourceVariable": "entityIdTargetSystem", "targetPath": "$.id"},
                *leaks,
            ]
        }
    }


def store_unchecked(services: Services, system_id: str, document: dict[str, Any]) -> None:
    """A write transformation stored as an older release could have saved it (no check)."""
    with services.db.write(Context.system("test")) as tx:
        store.add_transformation(
            tx,
            system_id,
            "write",
            text=orjson.dumps(document).decode(),
            description="saved before credentials were refused",
            author="test",
            created=now(),
        )


# -- 4(a) credential status ---------------------------------------------------------------------


def test_credential_status_is_not_removed_without_the_value(api: httpx.Client) -> None:
    created = api.post(
        "/systems",
        json={
            "name": "HR",
            "type": "scim",
            "role": "target",
            "properties": {"URL": "http://127.0.0.1:9/scim", "ApiToken": TOKEN},
            "credentialKeys": ["ApiToken"],
        },
    )
    assert created.status_code == 201, created.text
    system_id = created.json()["id"]
    path = f"/systems/{system_id}"

    assert "ApiToken" in problem(api.patch(path, json={"credentialKeys": []}), 400)
    kept_masked = {"properties": {"ApiToken": MASK}, "credentialKeys": []}
    assert "ApiToken" in problem(api.patch(path, json=kept_masked), 400)
    put = api.put(
        f"{path}/properties",
        json={
            "properties": {"URL": "http://127.0.0.1:9/scim", "ApiToken": MASK},
            "credentialKeys": [],
        },
    )
    assert put.status_code in (400, 422), put.text
    assert "ApiToken" in put.text
    assert TOKEN not in put.text

    shown = api.get(path).raise_for_status().json()
    assert shown["properties"]["ApiToken"] == MASK
    assert "ApiToken" in shown["credentialKeys"]
    exported = api.get(f"{path}/export").raise_for_status()
    assert TOKEN not in exported.text
    assert "ApiToken" in exported.json()["credentialKeys"]
    assert "ApiToken" not in exported.json()["properties"]

    # Whoever sends the value again may make it plain text: nothing secret is revealed.
    plain = api.patch(path, json={"credentialKeys": [], "properties": {"ApiToken": "public"}})
    assert plain.status_code == 200, plain.text
    assert plain.json()["properties"]["ApiToken"] == "public"


# -- 4(b) transformations never see credentials ---------------------------------------------------


def test_transformations_naming_a_credential_are_refused(
    server: LiveServer, api: httpx.Client
) -> None:
    source = lid_source(server.services)
    target = api.post("/systems", json=csv_target_body(source.id))
    assert target.status_code == 201, target.text
    target_id = target.json()["id"]
    document = leaking_write_document()

    refused = api.put(
        f"/systems/{target_id}/transformations/write",
        json={"document": document, "description": "copy the password"},
    )
    assert refused.status_code == 400, refused.text
    assert "Password" in refused.text and "ApiToken" in refused.text
    assert SECRET not in refused.text and TOKEN not in refused.text
    with_document = api.post(
        "/systems",
        json=csv_target_body(source.id, name="Files2", transformations={"write": document}),
    )
    assert with_document.status_code == 400, with_document.text

    # A document stored before the check: validation shows no credential, anywhere.
    store_unchecked(server.services, target_id, document)
    sample = {
        "users": [
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": "u1",
                "userName": "ada",
            }
        ]
    }
    answer = api.post(f"/systems/{source.id}/validate", json=sample)
    assert answer.status_code == 200, answer.text
    assert SECRET not in answer.text and TOKEN not in answer.text
    [entity] = answer.json()["entities"]
    [to_csv] = entity["targets"]
    assert to_csv["status"] == "Transformed"
    assert to_csv["document"]["nickName"] == "null", "an unknown placeholder, as in SAP"


def test_a_job_writes_no_credential_into_files_logs_or_exports(
    services: Services, settings: Settings
) -> None:
    add_users(services, "ada", "grace")
    source = lid_source(services)
    target = system(services, **csv_target_body(source.id))
    store_unchecked(services, target.id, leaking_write_document())
    job = run_job(services, "LID", JobType.READ, trace=True)
    assert job.status is JobStatus.SUCCESS, job

    folder = Path(settings.data_dir)
    written = (folder / "secret-users.csv").read_text(encoding="utf-8")
    assert "ada" in written and "grace" in written
    everything = [written, json.dumps(job.to_dict())]
    for kind in LogType:
        _, data = services.jobs.export(Context.administrator("test"), job.id, kind.value)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            everything += [archive.read(n).decode("utf-8", "replace") for n in archive.namelist()]
    assert any("ada" in text for text in everything[2:]), "the traced logs hold the entities"
    for text in everything:
        assert SECRET not in text and TOKEN not in text


# -- 4(d) errors ----------------------------------------------------------------------------------


class _Chatty(BaseHTTPRequestHandler):
    """A back-end that answers every request 400 with a long body and terminal escapes."""

    def do_GET(self) -> None:
        body = orjson.dumps({"detail": "\x1b[31mALERT\x07\r\nline two " + "x" * 5000})
        self.send_response(400)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def chatty() -> Iterator[str]:
    backend = ThreadingHTTPServer(("127.0.0.1", 0), _Chatty)
    thread = threading.Thread(target=backend.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{backend.server_address[1]}/scim"
    finally:
        backend.shutdown()
        backend.server_close()


def test_test_connection_repeats_a_short_sanitised_excerpt(api: httpx.Client, chatty: str) -> None:
    created = api.post(
        "/systems",
        json={
            "name": "Chatty",
            "type": "scim",
            "role": "target",
            "properties": {"URL": chatty, "Authentication": "NoAuthentication"},
        },
    )
    assert created.status_code == 201, created.text
    result = api.post(f"/systems/{created.json()['id']}/test").raise_for_status().json()
    message = json.dumps(result)
    assert "ALERT" in message, "the excerpt starts with what the back-end said"
    assert "x" * 200 not in message
    assert not any(ord(c) < 32 for c in str(result)), result


def test_an_unexpected_job_error_shows_no_internals(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_users(services, "ada")
    lid_source(services)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("/var/lib/provisor/internal/state.db: disk I/O error")

    monkeypatch.setattr("provisor.jobs.runner.Runner._sync", broken)
    job = run_job(services, "LID")
    assert job.status is JobStatus.FINISHED_WITH_ERROR
    shown = json.dumps(job.to_dict())
    assert "/var/lib" not in shown and "disk I/O" not in shown, shown
    assert "reference" in shown and "server log" in shown
