"""Access lines: one JSON line per request with who called (a technical user or an
administrator), never the query string; and ``provisor serve``'s standard error is JSON lines
only, uvicorn's own included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from provisor.admins.model import Role
from provisor.asgi import create_app
from provisor.runtime import Services
from provisor.settings import Settings
from tests.conftest import CTX, free_port
from tests.console.conftest import ORIGIN, PASSWORD, sign_in
from tests.helpers import wait_until_serving


def _requests(text: str) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [e for e in events if e.get("event") == "request"]


def test_access_lines_name_the_caller(
    sqlite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = sqlite_settings.model_copy(update={"access_log": True})
    services = Services.open(settings)
    try:
        _, creds = services.clients.create(CTX, "hr-sync", ["manage_users"])
        services.administrators.create(CTX, "ada", Role.ADMINISTRATOR, PASSWORD)
        app = create_app(settings, services)
        capsys.readouterr()
        with TestClient(app, base_url=ORIGIN, headers={"origin": ORIGIN}) as browser:
            listed = browser.get(
                "/scim/Users",
                params={"filter": 'userName eq "jane.secret@example.org"'},
                auth=(creds.client_id, creds.client_secret),
            )
            token = browser.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials"},
                auth=(creds.client_id, creds.client_secret),
            )
            bearer = token.json()["access_token"]
            with_token = browser.get("/scim/Users", headers={"Authorization": f"Bearer {bearer}"})
            sign_in(browser, "ada", PASSWORD)
            home = browser.get("/console/")
            anonymous = browser.get("/api/v1/systems", auth=("nobody", "wrong"))
    finally:
        services.close()
    assert listed.status_code == 200 and home.status_code == 200
    text = capsys.readouterr().err
    assert "jane.secret" not in text and creds.client_secret not in text
    lines = {e["request_id"]: e for e in _requests(text)}
    api = lines[listed.headers["x-request-id"]]
    assert (api["method"], api["path"], api["status"]) == ("GET", "/scim/Users", 200)
    assert (api["actor"], api["actor_type"], api["tenant"]) == ("hr-sync", "client", "default")
    assert (api["client_id"], api["auth"]) == (creds.client_id, "basic")
    assert api["bytes"] == len(listed.content) and api["duration_ms"] >= 0
    issued = lines[token.headers["x-request-id"]]
    assert (issued["path"], issued["actor"]) == ("/oauth2/token", "hr-sync")
    assert issued["auth"] == "basic"
    assert lines[with_token.headers["x-request-id"]]["auth"] == "bearer"
    assert bearer not in text
    page = lines[home.headers["x-request-id"]]
    assert (page["path"], page["actor"], page["auth"]) == ("/console/", "ada", "session")
    assert (page["actor_type"], page["client_id"]) == ("administrator", None)
    refused = lines[anonymous.headers["x-request-id"]]
    assert refused["status"] == 401 and refused["actor"] is None


def test_no_access_lines_unless_asked(
    sqlite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    services = Services.open(sqlite_settings)
    try:
        with TestClient(create_app(sqlite_settings, services)) as browser:
            assert browser.get("/health").status_code == 200
    finally:
        services.close()
    assert _requests(capsys.readouterr().err) == []


@pytest.mark.slow  # a provisor serve process
def test_serve_writes_json_lines_only(tmp_path: Path) -> None:
    """Everything ``provisor serve --access-log`` writes on standard error is a JSON line:
    its own, uvicorn's (start-up, shut-down) and the libraries' (migrations); the access line
    of a request carries the response's request id and the technical user."""
    port = free_port()
    env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "1"]
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--data-dir", str(tmp_path), "--access-log"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_serving(url, process, tmp_path / "serve.log")
            admin = json.loads((tmp_path / "initial-admin.json").read_text())
            auth = (admin["client_id"], admin["client_secret"])
            called = httpx.get(url + "/scim/Users?count=1&filter=userName%20pr", auth=auth)
            missing = httpx.get(url + "/t/nowhere/scim/Users")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)  # uvicorn re-raises SIGTERM: -15
    text = (tmp_path / "serve.log").read_text()
    events = [json.loads(line) for line in text.splitlines()]  # every line: JSON
    loggers = {e.get("logger") for e in events}
    assert {"uvicorn.error", "alembic.runtime.migration"} <= loggers
    said = [e["event"] for e in events]
    assert "Application startup complete." in said and "provisor serving" in said
    assert any(e["event"].startswith("Created the initial admin client") for e in events)
    lines = {e["request_id"]: e for e in events if e["event"] == "request"}
    line = lines[called.headers["x-request-id"]]
    assert (line["path"], line["status"], line["client_id"]) == ("/scim/Users", 200, auth[0])
    assert (line["actor"], line["actor_type"], line["auth"]) == ("initial-admin", "client", "basic")
    assert lines[missing.headers["x-request-id"]]["status"] == 404
    assert "userName%20pr" not in text and "count=1" not in text  # no query string
