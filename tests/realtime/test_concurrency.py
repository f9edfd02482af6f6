"""Concurrent real-time calls for one entity do one thing (issue 14 item 6): calls and jobs
that write the same source entity take turns through a lock per (source, entity type, id),
so no target gets it twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.context import Context
from provisor.jobs.locking import entity_key
from provisor.jobs.model import JobStatus
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.types import EntityType
from tests.conftest import LiveServer, free_port, serve
from tests.helpers import patch, scim_error
from tests.jobs.conftest import add_users, lid_source, run_job, system
from tests.jobs.test_pipeline import csv_target, rows
from tests.security import test_exactly_once
from tests.security.test_exactly_once import _PlainSCIM

CTX = Context.system("tests")  # the service calls a test makes directly

BASE = "/ipsproxy/service/api/v1/systems"
CALLS = 8
plain_scim = test_exactly_once.plain_scim  # the SCIM target that accepts duplicates
GATE_SECONDS = 3  # how long the gated target holds a lone create
UNLIMITED = {"inbound_throttle_per_minute": 0, "inbound_max_per_minute": 0}


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """A live server without the tenant's budget: on PostgreSQL, pyrate-limiter refuses
    (429) a call that finds the budget's table locked by a concurrent one."""
    with serve(settings.model_copy(update=UNLIMITED)) as live:
        yield live


def _plain_target(services: Services, source_id: str, url: str) -> None:
    properties = {"URL": url, "Authentication": "NoAuthentication"}
    system(
        services,
        name="Plain",
        type="scim",
        role="target",
        sourceSystemIds=[source_id],
        properties=properties,
    )


def _entity(services: Services, user_id: str) -> dict[str, Any]:
    """The user as the Local Identity Directory holds it: what a source pushes."""
    entity: dict[str, Any] = json.loads(
        services.directory.get(CTX, EntityType.USER, user_id, "/scim").body or b""
    )
    return entity


def _states(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code in (200, 201), answer.text
    return {s["systemName"]: s["state"] for s in answer.json()["systems"]}


def test_eight_calls_for_one_new_user_create_it_once(
    server: LiveServer, plain_scim: str, tmp_path: Path
) -> None:
    _eight_creates_then_a_delete(server.url, server.services, plain_scim, tmp_path)


@pytest.mark.slow
@pytest.mark.slow  # two provisor serve processes
def test_eight_calls_to_two_server_processes_create_it_once(
    settings: Settings, plain_scim: str
) -> None:
    """``provisor serve --workers 2``: the calls are spread over two processes."""
    port = free_port()
    env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
    env.update(PROVISOR_INBOUND_THROTTLE_PER_MINUTE="0", PROVISOR_INBOUND_MAX_PER_MINUTE="0")
    if settings.database_url:
        env["PROVISOR_DATABASE_URL"] = settings.database_url
    folder = settings.data_dir
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port)]
    with (folder / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [*command, "--data-dir", str(folder), "--workers", "2", "--no-jobs"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(url, process)
            services = Services.open(settings)
            try:
                _eight_creates_then_a_delete(url, services, plain_scim, folder)
            finally:
                services.close()
        finally:
            process.terminate()
            process.wait(timeout=60)


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert process.poll() is None, "provisor serve stopped"
        assert time.monotonic() < deadline, "provisor serve did not start"
        time.sleep(0.2)


def _eight_creates_then_a_delete(
    url: str, services: Services, plain_scim: str, folder: Path
) -> None:
    """Eight concurrent POSTs of one new user: one row in a CSV target, one POST to a SCIM
    target; then a DELETE leaves neither."""
    source = lid_source(services)
    csv_target(services, source.id, folder)
    _plain_target(services, source.id, plain_scim)
    [ada] = add_users(services, "ada").values()
    entity = _entity(services, ada)
    _, creds = services.clients.create(CTX, "pusher", ["realtime_api"])
    auth = (creds.client_id, creds.client_secret)

    def push(_: int) -> httpx.Response:
        with httpx.Client(base_url=url + BASE, auth=auth, timeout=60) as api:
            return api.post(f"/{source.id}/entities/user", json=entity)

    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(push, range(CALLS)))
    csv_states = sorted(_states(a)["CSV"] for a in answers)
    assert csv_states.count("Entity Created") == 1, csv_states
    assert list(rows(folder / "users.csv")) == ["ada"]
    assert len(_PlainSCIM.users) == 1, "one POST reached the SCIM target"
    with httpx.Client(base_url=url + BASE, auth=auth, timeout=60) as api:
        gone = api.delete(f"/{source.id}/entities/user/{ada}")
    assert _states(gone) == {"CSV": "Entity Deleted", "Plain": "Entity Deleted"}
    assert rows(folder / "users.csv") == {}
    assert _PlainSCIM.users == {}


def test_a_call_that_cannot_have_the_lock_gets_503(settings: Settings, tmp_path: Path) -> None:
    """A call waits a bounded time for another writer of the entity, then gets a SCIM 503
    with Retry-After, and leaves a log that says why."""
    with serve(settings.model_copy(update={**UNLIMITED, "entity_lock_seconds": 0.1})) as live:
        services: Services = live.services
        source = lid_source(services)
        csv_target(services, source.id, tmp_path)
        [ada, bob] = add_users(services, "ada", "bob").values()
        held = services.jobs.locks.holder()
        assert held.take([entity_key(source.id, "user", ada)])
        try:
            with live.client(auth=live.new_client("realtime_api"), path=BASE) as api:
                busy = api.post(f"/{source.id}/entities/user", json=_entity(services, ada))
                free = api.post(f"/{source.id}/entities/user", json=_entity(services, bob))
        finally:
            held.release()
        body = scim_error(busy, 503)
        assert "PROVISOR_ENTITY_LOCK_SECONDS" in body["detail"]
        assert int(busy.headers["retry-after"]) >= 1
        assert _states(free)["CSV"] == "Entity Created", "another entity does not wait"
        assert list(rows(tmp_path / "users.csv")) == ["bob"]
        with live.client(path="/api/v1") as admin:
            logs = admin.get("/realtime-logs", params={"entityId": ada}).json()["items"]
        assert [log["status"] for log in logs] == ["Finished with Error"]
        assert "PROVISOR_ENTITY_LOCK_SECONDS" in logs[0]["errorMessage"]


class _GatedSCIM(_PlainSCIM):
    """A plain SCIM target whose first create waits until a second one arrives (then both
    are written: a duplicate) or, when none does, for GATE_SECONDS."""

    posts: list[str] = []  # noqa: RUF012
    first_in = threading.Event()
    second_in = threading.Event()

    def do_POST(self) -> None:
        with self.lock:
            self.posts.append(self.path)
            first = len(self.posts) == 1
        if first:
            self.first_in.set()
            self.second_in.wait(GATE_SECONDS)
        else:
            self.second_in.set()
        super().do_POST()


@pytest.fixture
def gated_scim() -> Iterator[str]:
    _GatedSCIM.users, _GatedSCIM.posts = {}, []
    _GatedSCIM.first_in, _GatedSCIM.second_in = threading.Event(), threading.Event()
    peer = ThreadingHTTPServer(("127.0.0.1", 0), _GatedSCIM)
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{peer.server_port}/scim"
    peer.shutdown()
    peer.server_close()


def test_a_call_during_a_job_that_creates_the_entity_does_not_create_it_again(
    server: LiveServer, gated_scim: str
) -> None:
    """The job's create of ada is in flight (held at the target) when a real-time call
    for ada comes: the call waits for the job's page, then finds ada provisioned."""
    services: Services = server.services
    source = lid_source(services)
    _plain_target(services, source.id, gated_scim)
    [ada] = add_users(services, "ada").values()
    entity = _entity(services, ada)
    with (
        server.client(auth=server.new_client("realtime_api"), path=BASE) as api,
        ThreadPoolExecutor(1) as pool,
    ):
        # The secret checked now (Argon2 is slow on a busy machine), not while the job waits.
        assert api.get(f"/{source.id}/entities/user").status_code == 200
        job = pool.submit(run_job, services, "LID")
        assert _GatedSCIM.first_in.wait(60), "the job sends its create"
        pushed = api.post(f"/{source.id}/entities/user", json=entity)
        assert job.result().status is JobStatus.SUCCESS
    assert len(_GatedSCIM.posts) == 1, "one create reached the target"
    assert len(_GatedSCIM.users) == 1
    assert _states(pushed)["Plain"] in ("Entity Already Provisioned", "Entity Updated")


def test_what_a_call_writes_during_a_job_counts_as_seen_by_it(
    server: LiveServer, tmp_path: Path
) -> None:
    """The source has the entity it pushes: the running job's deletions keep it."""
    services: Services = server.services
    source = lid_source(services)
    target = csv_target(services, source.id, tmp_path)
    [ada] = add_users(services, "ada").values()
    job = services.jobs.start(Context.administrator("test"), "LID")
    running = services.jobs.claim(Context.system("worker"), "test", job.id)
    assert running is not None
    with server.client(auth=server.new_client("realtime_api"), path=BASE) as api:
        pushed = api.post(f"/{source.id}/entities/user", json=_entity(services, ada))
    assert _states(pushed)["CSV"] == "Entity Created"
    unseen = services.jobs.operational(Context.system("test")).count_unseen(
        source.id, target.id, "user", running.chain_id
    )
    assert unseen == (0, 0), "not a deletion candidate of the running job"


def test_concurrent_updates_and_deletes_leave_nothing_behind_the_last_delete(
    server: LiveServer,
    plain_scim: str,
    tmp_path: Path,
) -> None:
    """PUT, PATCH and DELETE of one entity at once: each target holds it at most once, its
    record agrees, and a DELETE afterwards removes it everywhere."""
    services: Services = server.services
    source = lid_source(services)
    csv_target(services, source.id, tmp_path)
    _plain_target(services, source.id, plain_scim)
    [ada] = add_users(services, "ada").values()
    entity = _entity(services, ada)
    auth = server.new_client("realtime_api")
    path = f"/{source.id}/entities/user/{ada}"

    def push(turn: int) -> httpx.Response:
        with server.client(auth=auth, path=BASE) as api:
            if turn % 3 == 0:
                return api.delete(path)
            if turn % 3 == 1:
                return api.put(path, json=entity)
            return api.patch(path, json=patch())

    with ThreadPoolExecutor(CALLS) as pool:
        answers = list(pool.map(push, range(CALLS * 2)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len(rows(tmp_path / "users.csv")) <= 1
    assert len(_PlainSCIM.users) <= 1
    with server.client(auth=auth, path=BASE) as api:
        api.delete(path).raise_for_status()
    assert rows(tmp_path / "users.csv") == {}
    assert _PlainSCIM.users == {}, "nothing written without a record survives the DELETE"
