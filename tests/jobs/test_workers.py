"""Jobs run by ``provisor worker`` processes: on PostgreSQL through procrastinate (several
workers), on SQLite by the embedded executor. A worker killed mid-job, on several nodes:
tests/integration/test_several_nodes.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provisor.context import Context
from provisor.jobs.model import JobStatus
from provisor.runtime import Services, prepare
from provisor.settings import Settings
from provisor.storage import tables as t
from tests.jobs.conftest import add_users, lid_source, stats, system

pytestmark = pytest.mark.slow  # provisor worker processes

USERS = 200
DELAY = 0.02  # seconds per create: the job lasts about USERS * DELAY


class _SlowTarget(BaseHTTPRequestHandler):
    """A SCIM target that takes its time and keeps userName unique (409 on a second create,
    found by a filter, then replaced), so a page written twice makes no copies."""

    users: dict[str, dict[str, Any]] = {}  # noqa: RUF012
    creates = 0
    lock = threading.Lock()

    def log_message(self, *args: Any) -> None:
        return None

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/scim+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(DELAY)
        with self.lock:
            type(self).creates += 1
            if body["userName"] in self.users:
                self._answer(409, {"status": "409", "scimType": "uniqueness"})
                return
            body["id"] = f"id-{body['userName']}"
            self.users[body["userName"]] = body
        self._answer(201, body)

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.lock:
            body["id"] = f"id-{body['userName']}"
            self.users[body["userName"]] = body
        self._answer(200, body)

    def do_GET(self) -> None:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        wanted = query.get("filter", [""])[0].split('"')[1:2]
        with self.lock:
            found = [u for name, u in self.users.items() if [name] == wanted]
        self._answer(
            200,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(found),
                "Resources": found,
            },
        )


@pytest.fixture
def slow_target() -> Iterator[str]:
    _SlowTarget.users, _SlowTarget.creates = {}, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowTarget)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/scim"
    server.shutdown()
    server.server_close()


@contextmanager
def workers(
    settings: Settings, count: int, *options: str, **environ: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``provisor worker`` processes (with ``options``, and ``environ`` over the settings),
    each logging into ``worker-<i>.log`` in the data folder."""
    env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
    env["PROVISOR_DATA_DIR"] = str(settings.data_dir)
    env["PROVISOR_JOB_STALE_SECONDS"] = "3"
    if settings.database_url:
        env["PROVISOR_DATABASE_URL"] = settings.database_url
    env.update(environ)
    logs = [(settings.data_dir / f"worker-{i}.log").open("wb") for i in range(count)]
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "provisor", "worker", *options],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for log in logs
    ]
    try:
        yield started
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def logged(settings: Settings, count: int) -> list[dict[str, Any]]:
    """What the workers wrote on standard error: JSON lines only (procrastinate's too)."""
    return [
        json.loads(line)
        for i in range(count)
        for line in (settings.data_dir / f"worker-{i}.log").read_text().splitlines()
    ]


def wait_for(condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def setup_sync(settings: Settings, target_url: str) -> Services:
    prepare(settings)
    services = Services.open(settings)
    add_users(services, *(f"w{i:03d}" for i in range(USERS)))
    source = lid_source(services, **{"idds.page.size": "20"})
    system(
        services,
        name="Slow",
        type="scim",
        role="target",
        sourceSystemIds=[source.id],
        properties={
            "URL": target_url,
            "Authentication": "NoAuthentication",
            "ips.write.concurrency": "1",
        },
    )
    return services


def worker_of(services: Services, job_id: str) -> str | None:
    with services.db.unscoped_read() as conn:
        return conn.execute(select(t.jobs.c.worker).where(t.jobs.c.id == job_id)).scalar()


def test_jobs_of_one_source_run_one_after_the_other(
    pg_database: str, tmp_path: Path, slow_target: str
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=pg_database)
    services = setup_sync(settings, slow_target)
    try:
        with workers(settings, 2):
            first = services.jobs.start(Context.administrator("test"), "LID")
            wait_for(lambda: worker_of(services, first.id), "a worker to take the job")
            second = services.jobs.start(Context.administrator("test"), "LID")  # waits its turn
            wait_for(
                lambda: len(services.jobs.runners(Context.administrator("test"))) == 2,
                "both workers to say they are alive",
            )
            wait_for(
                lambda: services.jobs.get(Context.administrator("test"), second.id).status.finished,
                "both jobs",
                120,
            )
        assert services.jobs.runners(Context.administrator("test")) == [], "stopped: gone"
        said = [e["event"] for e in logged(settings, 2)]
        assert said.count("running jobs") == 2
        one, two = (
            services.jobs.get(Context.administrator("test"), first.id),
            services.jobs.get(Context.administrator("test"), second.id),
        )
        assert one.status is JobStatus.SUCCESS and two.status is JobStatus.SUCCESS
        assert one.ended is not None and two.started is not None and one.ended <= two.started
        assert stats(two, "Slow").get("created", 0) == 0, "the second finds nothing new"
        assert _SlowTarget.creates == USERS
    finally:
        services.close()


def test_the_embedded_executor_runs_queued_jobs(tmp_path: Path, slow_target: str) -> None:
    settings = Settings(data_dir=tmp_path)
    services = setup_sync(settings, slow_target)
    try:
        with workers(settings, 1):
            job = services.jobs.start(Context.administrator("test"), "LID")
            wait_for(
                lambda: services.jobs.get(Context.administrator("test"), job.id).status.finished,
                "the job",
                60,
            )
            assert len(services.jobs.runners(Context.administrator("test"))) == 1
        assert services.jobs.get(Context.administrator("test"), job.id).status is JobStatus.SUCCESS
        assert services.jobs.runners(Context.administrator("test")) == [], "stopped: gone"
        assert len(_SlowTarget.users) == USERS
        assert [e["event"] for e in logged(settings, 1)].count("running jobs") == 1
    finally:
        services.close()
