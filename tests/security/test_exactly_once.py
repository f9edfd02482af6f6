"""Every entity exactly once in every target, even when the worker dies in a page's write
(issue 13 item 12): a real worker process is killed (SIGKILL) at many points of writing a
page, the job continues in a new one, and the rows of every target are counted."""

from __future__ import annotations

import asyncio
import csv
import json
import multiprocessing
import signal
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from provisor.connectors.base import ConnectorConfig, EntityConflict, Role
from provisor.connectors.csv.connector import CSVConnector
from provisor.context import Context
from provisor.errors import ConfigError
from provisor.jobs.model import Job, JobStatus
from provisor.runtime import Services, prepare
from provisor.settings import Settings
from provisor.storage import tables as t
from tests.jobs.conftest import run_job, system
from tests.security import crashing_worker

USERS = 45
PAGE = 15  # users per page of the source: three pages

# Where the workers of the chain die, in turn (see crashing_worker): the Nth pass of a point
# in that worker. The targets write at their own pace, so which page a point falls in varies;
# a worker that reaches the end of the job ends the chain.
KILLS = [
    ("intents", 2),  # two targets' intents recorded, nothing of them sent
    ("create", 20),  # part of a page sent
    ("replace", 1),  # the CSV target's first rows on disk (it flushes every 10)
    ("replace", 2),  # more of them on disk, not settled
    ("settle", 2),  # two targets settled, the third not
    ("commit", 2),  # pages committed
    ("create", 30),
    ("settle", 1),
    ("create", 5),
    ("replace", 1),
]


class _PlainSCIM(BaseHTTPRequestHandler):
    """A SCIM target that checks nothing: a second create of a user makes a second user (as
    many back-ends do), so only provisor can keep it from happening."""

    users: dict[str, dict[str, Any]] = {}  # noqa: RUF012
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

    def _body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return body

    def do_POST(self) -> None:
        body = self._body()
        body["id"] = str(uuid.uuid4())
        with self.lock:
            self.users[body["id"]] = body
            self.stored(body)
        self._answer(201, body)

    def stored(self, body: dict[str, Any]) -> None:
        """A user was created (under the lock): for subclasses that count."""

    def do_PUT(self) -> None:
        body = self._body()
        user_id = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
        with self.lock:
            if user_id not in self.users:
                self._answer(404, {"status": "404"})
                return
            body["id"] = user_id
            self.users[user_id] = body
        self._answer(200, body)

    def do_DELETE(self) -> None:
        user_id = urllib.parse.urlsplit(self.path).path.rsplit("/", 1)[-1]
        with self.lock:
            found = self.users.pop(user_id, None)
        if found is None:
            self._answer(404, {"status": "404"})
            return
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        user_id = parts.path.rsplit("/", 1)[-1]
        with self.lock:
            if user_id != "Users":
                found = self.users.get(user_id)
                self._answer(200 if found else 404, found or {"status": "404"})
                return
            query = urllib.parse.parse_qs(parts.query)
            wanted = query.get("filter", [""])[0].split('"')[1:2]
            hits = [u for u in self.users.values() if [u["userName"]] == wanted]
        self._answer(
            200,
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(hits),
                "Resources": hits,
            },
        )


@contextmanager
def serving_scim(handler: type[_PlainSCIM]) -> Iterator[str]:
    """A SCIM target of this kind on a loopback port, with no user yet: its base URL."""
    handler.users = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/scim"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def plain_scim() -> Iterator[str]:
    with serving_scim(_PlainSCIM) as url:
        yield url


def _setup(settings: Settings, scim_url: str) -> Services:
    prepare(settings)
    services = Services.open(settings)
    lines = ["id,userName,name.givenName,name.familyName,emails[0].value"]
    lines += [f"{i},u{i:03d},Given{i},Family{i},u{i:03d}@example.com" for i in range(USERS)]
    (settings.data_dir / "hr.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = system(
        services,
        name="HR",
        type="csv",
        role="source",
        properties={"csv.user.file": "hr.csv", "csv.page.size": str(PAGE)},
    )
    targets: list[dict[str, Any]] = [
        {"name": "Out", "type": "csv", "properties": {"csv.user.file": "out.csv"}},
        {"name": "Directory", "type": "local-identity-directory", "properties": {}},
        {
            "name": "Plain",
            "type": "scim",
            "properties": {"URL": scim_url, "Authentication": "NoAuthentication"},
        },
    ]
    for target in targets:
        target["properties"]["csv.page.size"] = "10"  # the CSV target flushes mid-page
        system(services, role="target", sourceSystemIds=[source.id], **target)
    return services


def _worker(settings: Settings, job_id: str, point: str, times: int) -> int | None:
    """Run the job in a worker process of its own (forked from a server that has imported
    provisor once); its exit code: -9 when it was killed."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tests.security.crashing_worker"])
    url = settings.database_url
    args = (str(settings.data_dir), url, job_id, point, times)
    process = context.Process(target=crashing_worker.run, args=args)
    process.start()
    process.join(120)
    return process.exitcode


def _chain(services: Services, first: Job) -> list[Job]:
    with services.db.unscoped_read() as conn:
        ids = conn.execute(
            select(t.jobs.c.id).where(t.jobs.c.chain_id == first.id).order_by(t.jobs.c.created)
        ).scalars()
        return [services.jobs.get(Context.administrator("test"), i) for i in ids]


@pytest.mark.slow  # worker processes, killed
def test_a_worker_killed_anywhere_in_a_page_writes_every_entity_once(
    settings: Settings, plain_scim: str
) -> None:
    services = _setup(settings, plain_scim)
    try:
        first = services.jobs.start(Context.administrator("test"), "HR")
        services.jobs.stale_seconds = 0  # a worker killed is found at once
        killed, codes = [], []
        for point, times in [*KILLS, ("none", 0)]:
            job = _chain(services, first)[-1]
            if job.status is JobStatus.RUNNING:  # its worker was killed: continue it
                [job] = services.jobs.recover(Context.system("worker"))
            if job.status.finished:
                break
            assert job.status is JobStatus.QUEUED, job.status
            codes.append(_worker(settings, job.id, point, times))
            if codes[-1] == -signal.SIGKILL:
                killed.append(point)
        jobs = _chain(services, first)
        last = jobs[-1]
        failed = [
            e.reason
            for e in services.jobs.entity_logs(Context.administrator("test"), last.id, ["failed"])[
                0
            ]
        ]
        assert last.status is JobStatus.SUCCESS, (last.status, last.error, failed)
        wanted = [f"u{i:03d}" for i in range(USERS)]
        with (settings.data_dir / "out.csv").open(encoding="utf-8") as handle:
            in_csv = sorted(row["userName"] for row in csv.DictReader(handle))
        assert in_csv == wanted, "the CSV target has each user once"
        in_scim = sorted(u["userName"] for u in _PlainSCIM.users.values())
        assert in_scim == wanted, "the SCIM target has each user once"
        with services.db.unscoped_read() as conn:
            in_directory = sorted(conn.execute(select(t.users.c.user_name)).scalars())
        assert in_directory == wanted, "the directory has each user once"

        source = services.systems.get(Context.system("test"), "HR")
        for name in ("Out", "Directory", "Plain"):
            target = services.systems.get(Context.system("test"), name)
            records = services.jobs.operational(Context.system("test")).records(
                source.id, target.id, "user", [str(i) for i in range(USERS)]
            )
            assert len(records) == USERS, name
            existed = sorted(r.source_entity_id for r in records.values() if r.existed_before)
            assert existed == [], f"{name}: created by provisor, not found as existing"
        with services.db.unscoped_read() as conn:
            assert conn.execute(select(t.write_intents)).all() == [], "no intent is left"
        assert set(codes) <= {0, -signal.SIGKILL}, codes
        assert len(killed) >= 6 and set(killed) == {p for p, _ in KILLS}, killed
        assert [j.status for j in jobs[:-1]] == [JobStatus.PENDING_RESTART] * len(killed)
    finally:
        services.close()


# -- a CSV target knows its rows by their unique attributes -----------------------------------


def _csv(folder: Path, **properties: str) -> CSVConnector:
    props = {"csv.user.file": "users.csv", "csv.group.file": "groups.csv", **properties}
    return CSVConnector(ConnectorConfig("s1", "CSV", Role.TARGET, props, {"data_dir": folder}))


def test_a_csv_target_refuses_a_second_row_with_a_unique_value(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("id,userName\nu1,bjensen\n", encoding="utf-8")

    async def scenario() -> None:
        target = _csv(tmp_path)
        assert target.unique_attributes("user") == ("id", "userName")
        assert target.unique_attributes("group") == ("id", "displayName")
        with pytest.raises(EntityConflict, match="userName 'bjensen' is taken by id 'u1'"):
            await target.create("user", {"userName": "bjensen"})  # in the file
        await target.create("user", {"userName": "jsmith"}, entity_id="u2")
        with pytest.raises(EntityConflict, match="taken by id 'u2'"):
            await target.create("user", {"userName": "jsmith"})  # waiting for the flush
        with pytest.raises(EntityConflict, match="taken by id 'u1'"):
            await target.update("user", "u2", {"userName": "bjensen"})
        await target.update("user", "u1", {"userName": "babs"})  # frees bjensen
        await target.create("user", {"userName": "bjensen"}, entity_id="u3")
        await target.flush()
        with pytest.raises(EntityConflict, match="taken by id 'u3'"):
            await target.create("user", {"userName": "bjensen"})  # flushed
        await target.delete("user", "u3")
        await target.create("user", {"userName": "bjensen"}, entity_id="u4")
        await target.aclose()
        found = await _csv(tmp_path).find("user", "userName", "bjensen")
        assert [e["id"] for e in found] == ["u4"]
        loose = _csv(tmp_path, **{"csv.user.unique.attribute": "none"})
        await loose.create("user", {"userName": "bjensen"}, entity_id="u5")
        await loose.aclose()

    asyncio.run(scenario())
    with (tmp_path / "users.csv").open(encoding="utf-8") as handle:
        rows = [(r["id"], r["userName"]) for r in csv.DictReader(handle)]
    assert rows == [("u1", "babs"), ("u2", "jsmith"), ("u4", "bjensen"), ("u5", "bjensen")]
    with pytest.raises(ConfigError, match=r"csv\.user\.unique\.attribute"):
        _csv(tmp_path, **{"csv.user.unique.attribute": "emails[].value"})


def test_a_job_finds_a_row_already_in_a_csv_target(settings: Settings) -> None:
    """A user already in the target file (not written by provisor) is updated, remembered as
    existed before, and not written a second time."""
    prepare(settings)
    services = Services.open(settings)
    try:
        (settings.data_dir / "hr.csv").write_text(
            "id,userName,displayName\n1,bjensen,Barbara\n2,jsmith,John\n", encoding="utf-8"
        )
        (settings.data_dir / "out.csv").write_text(
            "id,userName,displayName\nold-1,bjensen,Babs\n", encoding="utf-8"
        )
        source = system(
            services, name="HR", type="csv", role="source", properties={"csv.user.file": "hr.csv"}
        )
        target = system(
            services,
            name="Out",
            type="csv",
            role="target",
            sourceSystemIds=[source.id],
            properties={"csv.user.file": "out.csv"},
        )
        job = run_job(services, "HR")
        assert job.status is JobStatus.SUCCESS, job.error
        with (settings.data_dir / "out.csv").open(encoding="utf-8") as handle:
            rows = sorted((r["userName"], r["displayName"]) for r in csv.DictReader(handle))
        assert rows == [("bjensen", "Barbara"), ("jsmith", "John")]
        records = services.jobs.operational(Context.system("test")).records(
            source.id, target.id, "user", ["1", "2"]
        )
        assert records["1"].target_entity_id == "old-1" and records["1"].existed_before
        assert not records["2"].existed_before
    finally:
        services.close()
