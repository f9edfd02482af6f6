"""Every request has an id, echoed in the response, refused requests included: the
caller's X-Request-ID when a trusted reverse proxy sends a sane one, else a new one."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from provisor.settings import Settings
from provisor.storage.tables import audit_log
from tests.conftest import LiveServer, serve


def test_a_caller_gets_a_new_id(sqlite_server: LiveServer) -> None:
    """The loopback peer is no trusted proxy here: its ids are not taken."""
    with sqlite_server.client() as http:
        given = http.get("/api/v1/systems", headers={"X-Request-ID": "trace-42.a:b"})
        other = http.get("/api/v1/systems")
    assert given.headers["x-request-id"] != "trace-42.a:b"
    assert len(given.headers["x-request-id"]) == 32
    assert other.headers["x-request-id"] != given.headers["x-request-id"]


def test_a_trusted_proxy_passes_its_id_on(
    sqlite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """From a trusted proxy a sane id is taken (and lands on the request's access line and
    in its audit entries); an insane one is replaced."""
    settings = sqlite_settings.model_copy(
        update={"trusted_proxies": ["127.0.0.0/8"], "access_log": True}
    )
    with serve(settings) as live:
        with live.client() as http:
            given = http.get("/api/v1/systems", headers={"X-Request-ID": "trace-42.a:b"})
            made = http.get("/api/v1/systems", headers={"X-Request-ID": "bad id\twith spaces"})
            created = http.post(
                "/api/v1/clients",
                json={"name": "by-proxy", "permissions": ["manage_users"]},
                headers={"X-Request-ID": "change-7"},
            )
        with live.client(auth=None) as anonymous:
            refused = anonymous.get("/api/v1/systems", headers={"X-Request-ID": "r1"})
        with live.services.db.unscoped_read() as conn:
            ids = set(conn.execute(select(audit_log.c.request_id)).scalars())
    assert given.headers["x-request-id"] == "trace-42.a:b"
    assert len(made.headers["x-request-id"]) == 32 and " " not in made.headers["x-request-id"]
    assert created.status_code == 201, created.text
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r1"
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    requests = {e["request_id"]: e for e in lines if e.get("event") == "request"}
    assert requests["trace-42.a:b"]["status"] == 200
    assert requests["r1"]["status"] == 401 and requests["r1"]["actor"] is None
    assert "change-7" in ids
