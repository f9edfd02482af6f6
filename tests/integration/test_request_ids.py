"""Every request has an id: the caller's X-Request-ID when sane, else a new one; it is
echoed in the response, refused requests included."""

from __future__ import annotations

from tests.conftest import LiveServer


def test_a_request_id_is_echoed_or_made(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as http:
        given = http.get("/api/v1/systems", headers={"X-Request-ID": "trace-42.a:b"})
        made = http.get("/api/v1/systems", headers={"X-Request-ID": "bad id\twith spaces"})
        other = http.get("/api/v1/systems")
    assert given.headers["x-request-id"] == "trace-42.a:b"
    assert len(made.headers["x-request-id"]) == 32 and " " not in made.headers["x-request-id"]
    assert other.headers["x-request-id"] != made.headers["x-request-id"]
    with sqlite_server.client(auth=None) as anonymous:
        refused = anonymous.get("/api/v1/systems", headers={"X-Request-ID": "r1"})
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "r1"
