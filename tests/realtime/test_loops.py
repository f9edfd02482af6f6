"""Loop prevention (spec §6.4): two back-ends that each report their changes in real time,
each the source of the other. A change made in one reaches the other once and stops."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from provisor.runtime import Services
from tests.conftest import LiveServer
from tests.helpers import user_body
from tests.jobs.conftest import run_job, stats, system

BASE = "/ipsproxy/service/api/v1/systems"


class Backend:
    """A SCIM service that, like Identity Authentication, reports every change it stores
    to a real-time provisioning URL."""

    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.push_to: str | None = None
        self.auth: tuple[str, str] | None = None
        self.pushes = 0
        self.pending: list[threading.Thread] = []

    def store(self, user: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            user = {**user, "meta": {"resourceType": "User", "lastModified": time.time()}}
            self.users[user["id"]] = user
        self.report("PUT", user)
        return user

    def report(self, method: str, user: dict[str, Any]) -> None:
        base = self.push_to
        if base is None:
            return

        def push() -> None:
            with self.lock:
                self.pushes += 1
            url = f"{base}/{user['id']}" if method != "POST" else base
            httpx.request(method, url, json=user, auth=self.auth, timeout=30)

        thread = threading.Thread(target=push)
        self.pending.append(thread)
        thread.start()

    def settle(self) -> None:
        """Wait until no report is under way any more."""
        while any(t.is_alive() for t in self.pending):
            time.sleep(0.05)


def _handler(backend: Backend) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            return dict(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

        def do_POST(self) -> None:
            user = self._body()
            with backend.lock:
                taken = any(u["userName"] == user["userName"] for u in backend.users.values())
            if taken:
                self._answer(409, {"status": "409", "scimType": "uniqueness"})
                return
            user["id"] = str(uuid.uuid4())
            self._answer(201, backend.store(user))

        def do_PUT(self) -> None:
            user = self._body()
            user["id"] = self.path.rsplit("/", 1)[1]
            self._answer(200, backend.store(user))

        def do_GET(self) -> None:
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            wanted = query.get("filter", [""])[0].split('"')[1:2]
            with backend.lock:
                found = [
                    u for u in backend.users.values() if not wanted or [u["userName"]] == wanted
                ]
            self._answer(
                200,
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                    "totalResults": len(found),
                    "Resources": found,
                },
            )

    return Handler


@contextmanager
def backend() -> Iterator[tuple[Backend, str]]:
    state = Backend()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}/scim"
    finally:
        state.settle()
        server.shutdown()
        server.server_close()


def scim(services: Services, name: str, role: str, url: str, **data: Any) -> Any:
    return system(
        services,
        name=name,
        type="scim",
        role=role,
        properties={"URL": url, "Authentication": "NoAuthentication"},
        **data,
    )


def test_two_systems_that_feed_each_other_do_not_loop(server: LiveServer) -> None:
    services = server.services
    credentials = server.new_client("realtime_api")
    with backend() as (x, x_url), backend() as (y, y_url):
        x_source = scim(services, "X", "source", x_url)
        y_source = scim(services, "Y", "source", y_url)
        scim(services, "to Y", "target", y_url, sourceSystemIds=[x_source.id])
        scim(services, "to X", "target", x_url, sourceSystemIds=[y_source.id])
        for state, source in ((x, x_source), (y, y_source)):
            state.push_to = f"{server.url}{BASE}/{source.id}/entities/user"
            state.auth = credentials

        # Someone creates a user in X: X reports it, provisor writes it to Y, Y reports
        # that back, and provisor recognises its own write.
        x.store({**user_body("ada"), "id": "x-ada"})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not y.users:
            time.sleep(0.05)
        for _ in range(3):
            x.settle()
            y.settle()
            time.sleep(0.3)
        assert [u["userName"] for u in y.users.values()] == ["ada"]
        assert (x.pushes, y.pushes) == (1, 1), "one change, one report each, then quiet"
        assert len(x.users) == 1

        # Someone changes the user in Y: it reaches X once and stops there.
        [copy] = y.users.values()
        y.store({**copy, "displayName": "Countess of Lovelace"})
        for _ in range(5):
            x.settle()
            y.settle()
            time.sleep(0.3)
        assert x.users["x-ada"]["displayName"] == "Countess of Lovelace"
        assert (x.pushes, y.pushes) == (2, 2)

    with server.client(path="/api/v1") as admin:
        items = admin.get("/realtime-logs").json()["items"]
    echoes = [
        i for i in items if any("loop prevention" in (s["reason"] or "") for s in i["systems"])
    ]
    assert len(echoes) == 2 and len(items) == 4


def test_what_a_job_wrote_is_not_reported_back(server: LiveServer) -> None:
    services = server.services
    credentials = server.new_client("realtime_api")
    with backend() as (x, x_url), backend() as (y, y_url):
        x_source = scim(services, "X", "source", x_url)
        y_source = scim(services, "Y", "source", y_url)
        scim(services, "to Y", "target", y_url, sourceSystemIds=[x_source.id])
        scim(services, "to X", "target", x_url, sourceSystemIds=[y_source.id])
        x.store({**user_body("grace"), "id": "x-grace"})
        y.push_to, y.auth = f"{server.url}{BASE}/{y_source.id}/entities/user", credentials
        job = run_job(services, "X")
        assert stats(job, "to Y")["created"] == 1
        y.settle()
        assert y.pushes == 1
        assert list(x.users) == ["x-grace"]
    with server.client(path="/api/v1") as admin:
        [log] = admin.get("/realtime-logs").json()["items"]
    assert "loop prevention" in log["systems"][0]["reason"]
    assert [s["systemName"] for s in log["systems"]] == ["Y"], "nothing written to X"
