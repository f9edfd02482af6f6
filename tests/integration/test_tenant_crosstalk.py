"""Issue 17: two tenants on one server (SQLite), and on two server processes sharing
PostgreSQL, run jobs, real-time pushes and proxy calls at the same time, with no cross-talk:
each tenant's target gets its own users only, each tenant's logs and operational data hold
its own only. Both tenants name their systems alike (names are per tenant)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.runtime import Services
from provisor.settings import Settings
from tests.conftest import free_port, serve
from tests.connectors.scim_peers import SCIM2Server, scim2_server
from tests.helpers import user_body, wait_until_serving
from tests.jobs.conftest import running_jobs
from tests.tenancy import PROXY, PUSH, Tenant, create_tenant

pytestmark = pytest.mark.slow  # live servers on loopback

USERS = 8  # per tenant, in its Local Identity Directory before the traffic
PUSHES = 4  # real-time pushes per tenant
PROXY_CREATES = 3  # users created through each tenant's proxy
PROXY_READS = 4
UNLIMITED: dict[str, Any] = {"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 0}
ENDED = {"Success", "Failed", "Partially Successful", "Manually Terminated"}


@dataclass
class Side:
    """One tenant's systems and what it sent."""

    tenant: Tenant
    peer: SCIM2Server
    source: str = ""
    target: str = ""
    proxy: str = ""
    users: dict[str, str] = field(default_factory=dict)  # userName -> LID id
    jobs: list[str] = field(default_factory=list)
    pushed: list[str] = field(default_factory=list)  # LID ids pushed in real time
    proxied: list[str] = field(default_factory=list)  # userNames created through the proxy

    @property
    def name(self) -> str:
        return self.tenant.name


def _ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code in (200, 201, 202), (answer.request.url, answer.text)
    body: dict[str, Any] = answer.json()
    return body


def set_up(url: str, side: Side) -> None:
    """The same three systems in each tenant (a LID source, a SCIM target on the tenant's
    own SCIM server, a LID proxy) and USERS users, through the tenant's admin API."""
    with side.tenant.client(url) as http:
        side.source = _ok(
            http.post(
                "/api/v1/systems",
                json={"name": "Source", "type": "local-identity-directory", "role": "source"},
            )
        )["id"]
        side.target = _ok(
            http.post(
                "/api/v1/systems",
                json={
                    "name": "Target",
                    "type": "scim",
                    "role": "target",
                    "sourceSystemIds": [side.source],
                    "properties": {"URL": side.peer.url, "Authentication": "NoAuthentication"},
                },
            )
        )["id"]
        side.proxy = _ok(
            http.post(
                "/api/v1/systems",
                json={"name": "Proxy", "type": "local-identity-directory", "role": "proxy"},
            )
        )["id"]
        for i in range(USERS):
            name = f"{side.name}-user-{i}"
            side.users[name] = _ok(http.post("/scim/Users", json=user_body(name)))["id"]


def traffic(side: Side, url: Callable[[int], str]) -> list[Callable[[], None]]:
    """A tenant's calls, each to the server ``url(i)`` for its i-th call: a job, real-time
    pushes of its users, creates and reads through its proxy."""
    calls: list[Callable[[], None]] = []
    counter = iter(range(10_000))

    def client() -> httpx.Client:
        return side.tenant.client(url(next(counter)))

    def start_job() -> None:
        with client() as http:
            answer = http.post(f"/api/v1/systems/{side.source}/jobs", json={"type": "READ"})
            side.jobs.append(_ok(answer)["id"])

    def push(user_id: str, by_name: bool) -> Callable[[], None]:
        def call() -> None:
            source = "Source" if by_name else side.source  # both tenants' sources are "Source"
            with client() as http:
                entity = _ok(http.get(f"/scim/Users/{user_id}"))
                answer = http.put(f"{PUSH}/{source}/entities/user/{user_id}", json=entity)
                result = _ok(answer)
                assert result["status"] == "Finished Successfully", result
                assert {s["systemName"] for s in result["systems"]} == {"Source", "Target"}
                side.pushed.append(user_id)

        return call

    def proxy_create(i: int) -> Callable[[], None]:
        def call() -> None:
            name = f"{side.name}-proxied-{i}"
            with client() as http:
                created = http.post(f"{PROXY}/{side.proxy}/Users", json=user_body(name))
                assert created.status_code == 201, created.text
                side.proxied.append(name)

        return call

    def proxy_read(by_name: bool) -> Callable[[], None]:
        def call() -> None:
            proxy = "Proxy" if by_name else side.proxy  # both tenants' proxies are "Proxy"
            with client() as http:
                listed = _ok(http.get(f"{PROXY}/{proxy}/Users"))
                names = [u["userName"] for u in listed["Resources"]]
                assert names and all(n.startswith(f"{side.name}-") for n in names), names

        return call

    calls.append(start_job)
    pushed = list(side.users.values())[:PUSHES]
    calls.extend(push(user_id, i % 2 == 1) for i, user_id in enumerate(pushed))
    calls.extend(proxy_create(i) for i in range(PROXY_CREATES))
    calls.extend(proxy_read(i % 2 == 1) for i in range(PROXY_READS))
    return calls


def wait_for_jobs(url: str, side: Side, seconds: float = 120) -> list[dict[str, Any]]:
    deadline = time.monotonic() + seconds
    with side.tenant.client(url) as http:
        while True:
            jobs = [_ok(http.get(f"/api/v1/jobs/{job}")) for job in side.jobs]
            if all(j["status"] in ENDED for j in jobs):
                return jobs
            assert time.monotonic() < deadline, f"{side.name}'s jobs did not end: {jobs}"
            time.sleep(0.1)


def run_job(url: str, side: Side) -> dict[str, Any]:
    """Another READ job of the tenant's source, to its end (whichever process runs it)."""
    with side.tenant.client(url) as http:
        side.jobs.append(_ok(http.post(f"/api/v1/systems/{side.source}/jobs"))["id"])
    return wait_for_jobs(url, side)[-1]


def peer_users(peer: SCIM2Server) -> list[str]:
    with httpx.Client(base_url=peer.url) as client:
        return [u["userName"] for u in client.get("/Users").json()["Resources"]]


def assert_only_its_own(url: str, side: Side, other: Side) -> None:
    """The tenant's target, job logs, real-time logs, jobs and operational data hold its own
    users, every one of them, once; nothing of the other tenant."""
    with side.tenant.client(url) as http:
        listed = _ok(http.get("/scim/Users", params={"count": 1000}))["Resources"]
        directory = {u["userName"]: u["id"] for u in listed}
        expected = set(side.users) | set(side.proxied)
        assert set(directory) == expected
        in_target = peer_users(side.peer)
        assert sorted(in_target) == sorted(expected), "each of its users once, no other"

        jobs = _ok(http.get("/api/v1/jobs", params={"limit": 100}))["items"]
        assert sorted(j["id"] for j in jobs) == sorted(side.jobs)
        assert {j["sourceSystemId"] for j in jobs} == {side.source}
        for job in side.jobs:
            entities = _ok(http.get(f"/api/v1/jobs/{job}/entities", params={"limit": 1000}))
            names = {e["name"] for e in entities["items"] if e["name"]}
            assert names <= expected, names - expected

        logs = _ok(http.get("/api/v1/realtime-logs", params={"limit": 100}))["items"]
        assert sorted(log["entityId"] for log in logs) == sorted(side.pushed)
        assert {log["sourceSystemId"] for log in logs} == {side.source}

        systems = _ok(http.get("/api/v1/systems"))["items"]
        assert {s["id"] for s in systems} == {side.source, side.target, side.proxy}
        for kind in ("source", "target", "proxy"):
            foreign = http.get(f"/api/v1/systems/{getattr(other, kind)}")
            assert foreign.status_code == 404

        # operational data: one record per user it wrote to its target, none of the other's
        reset = _ok(http.post(f"/api/v1/systems/{side.source}/reset"))
        assert reset["removedRecords"] == len(expected)


def crosstalk(urls: list[str], sides: list[Side], jobs_done: Callable[[], None]) -> None:
    """Both tenants' traffic at once, spread over ``urls`` (a tenant's i-th call goes to
    ``urls[i % len(urls)]``, so with two servers each tenant talks to both)."""
    for i, side in enumerate(sides):
        set_up(urls[i % len(urls)], side)
    calls = [c for i, side in enumerate(sides) for c in traffic(side, _spread(urls, i))]
    random.Random(17).shuffle(calls)
    with ThreadPoolExecutor(max_workers=8) as pool:
        for future in [pool.submit(call) for call in calls]:
            future.result()
    jobs_done()
    for i, side in enumerate(sides):  # the proxies' creates reach the targets too
        assert run_job(urls[(i + 1) % len(urls)], side)["status"] == "Success"
    a, b = sides
    assert_only_its_own(urls[0], a, b)
    assert_only_its_own(urls[-1], b, a)


def _spread(urls: list[str], offset: int) -> Callable[[int], str]:
    return lambda i: urls[(i + offset) % len(urls)]


@contextmanager
def two_sides(services: Services) -> Iterator[list[Side]]:
    with scim2_server() as peer_a, scim2_server() as peer_b:
        yield [
            Side(create_tenant(services, "a"), peer_a),
            Side(create_tenant(services, "b"), peer_b),
        ]


def test_two_tenants_on_one_sqlite_server(sqlite_settings: Settings) -> None:
    with (
        serve(sqlite_settings.model_copy(update=UNLIMITED)) as live,
        running_jobs(live.services),
        two_sides(live.services) as sides,
    ):

        def jobs_done() -> None:
            for side in sides:
                assert [j["status"] for j in wait_for_jobs(live.url, side)] == ["Success"]

        crosstalk([live.url], sides, jobs_done)


# -- two provisor serve processes on one PostgreSQL database --------------------------------------


@contextmanager
def provisor_serve(settings: Settings, name: str) -> Iterator[str]:
    """``provisor serve`` (one web worker and its jobs process) on a free port; its URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update({k: v for k, v in os.environ.items() if k.startswith("PROVISOR_SECRET_HASH")})
    env.update(
        PROVISOR_DATA_DIR=str(settings.data_dir),
        PROVISOR_INBOUND_THROTTLE_PER_MINUTE="0",
        PROVISOR_INBOUND_MAX_PER_MINUTE="0",
    )
    if settings.database_url:
        env["PROVISOR_DATABASE_URL"] = settings.database_url
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port), "--workers", "1"]
    with (Path(settings.data_dir) / f"{name}.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_serving(url, process, Path(log.name))
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_two_tenants_on_two_processes_sharing_postgresql(pg_database: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_database, **UNLIMITED)
    with ExitStack() as stack:
        first = stack.enter_context(provisor_serve(settings, "serve-1"))
        second = stack.enter_context(provisor_serve(settings, "serve-2"))
        services = Services.open(settings)
        stack.callback(services.close)
        sides = stack.enter_context(two_sides(services))

        def jobs_done() -> None:
            for side in sides:
                assert [j["status"] for j in wait_for_jobs(first, side)] == ["Success"]

        crosstalk([first, second], sides, jobs_done)
