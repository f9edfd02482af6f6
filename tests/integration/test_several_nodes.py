"""Several nodes on one PostgreSQL database, as docs/operations.md ("Several nodes") sets them
up: ``provisor init`` once, two ``provisor serve --no-jobs`` processes and two ``provisor
worker`` processes sharing PROVISOR_SECRET_KEY and PROVISOR_DATABASE_URL. A job started
through one server runs on a worker and is seen through both; a worker killed mid-job is
continued by the other (every user written once); the inbound budget and the console's
sessions are shared; a server killed leaves the other answering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from provisor.remote import Remote
from provisor.remote.jobs import Job
from provisor.remote.session import Session
from provisor.runtime import Services, Setup, initialise
from provisor.settings import Settings
from provisor.storage import tables as t
from tests.conftest import free_port
from tests.console.conftest import FORM_CSRF
from tests.jobs.conftest import add_users, lid_source, system
from tests.jobs.test_workers import wait_for
from tests.security.test_exactly_once import _PlainSCIM

pytestmark = pytest.mark.slow  # provisor processes

KEY = "several-nodes-share-this-master-key-0123456789"  # PROVISOR_SECRET_KEY of every node
START_SECONDS = 180  # a busy machine (the suite's other workers) starts a process slowly
STALE_SECONDS = 3
MAX_PER_MINUTE = 20
USERS = 200
PAGE = 20
DELAY = 0.02  # seconds per create: the job lasts about USERS * DELAY
PROXY = "/ipsproxy/service/api/v1/systems/no-such-system/entities/user"


class _SlowPlainSCIM(_PlainSCIM):
    """exactly-once's SCIM target that checks nothing (a second create of a user is a second
    user: only provisor can keep a user from being created twice), slow, counting creates."""

    users: dict[str, dict[str, Any]] = {}  # noqa: RUF012
    creates: Counter[str] = Counter()  # noqa: RUF012

    def do_POST(self) -> None:
        time.sleep(DELAY)
        super().do_POST()

    def stored(self, body: dict[str, Any]) -> None:
        self.creates[body["userName"]] += 1


@pytest.fixture
def slow_target() -> Iterator[str]:
    _SlowPlainSCIM.users, _SlowPlainSCIM.creates = {}, Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPlainSCIM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/scim"
    server.shutdown()
    server.server_close()


# -- the nodes --------------------------------------------------------------------------------


@dataclass
class Nodes:
    """An installation of several nodes: what they share, and the processes started."""

    folder: Path
    database_url: str
    processes: dict[str, subprocess.Popen[bytes]]

    def env(self, data_dir: Path) -> dict[str, str]:
        env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
        env.update(
            PROVISOR_DATA_DIR=str(data_dir),
            PROVISOR_DATABASE_URL=self.database_url,
            PROVISOR_SECRET_KEY=KEY,
            PROVISOR_JOB_STALE_SECONDS=str(STALE_SECONDS),
            PROVISOR_INBOUND_THROTTLE_PER_MINUTE="0",
            PROVISOR_INBOUND_MAX_PER_MINUTE=str(MAX_PER_MINUTE),
        )
        return env

    def settings(self) -> Settings:
        """The test's own view of the installation (the same database and key)."""
        return Settings(
            data_dir=self.folder / "test", database_url=self.database_url, secret_key=KEY
        )

    def command(self, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``provisor ARGS`` on node ``name`` (its own data folder), to its end."""
        return subprocess.run(
            [sys.executable, "-m", "provisor", *args],
            env=self.env(self.folder / name),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """``provisor ARGS`` on node ``name``, running; its stderr in ``<name>.log``."""
        with (self.folder / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "provisor", *args],
                env=self.env(self.folder / name),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.processes[name] = process
        return process

    def servers(self, *names: str) -> list[str]:
        """Servers without jobs (``provisor serve --no-jobs``), started at once and
        answering; their URLs."""
        ports = [free_port() for _ in names]
        started = [
            self.start(name, "serve", "--no-jobs", "--workers", "1", "--port", str(port))
            for name, port in zip(names, ports, strict=True)
        ]
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for name, url, process in zip(names, urls, started, strict=True):
            self.wait_for(partial(_up, url, process), f"server {name}", START_SECONDS)
            assert process.poll() is None, (self.folder / f"{name}.log").read_text()
        return urls

    def wait_for(self, condition: Callable[[], Any], what: str, seconds: float = 60) -> Any:
        """``wait_for``, with the end of every node's log when it times out."""
        try:
            return wait_for(condition, what, seconds)
        except AssertionError as exc:
            logs = [f"{p.name}:\n{p.read_text()[-3000:]}" for p in self.folder.glob("*.log")]
            raise AssertionError("\n".join([str(exc), *logs])) from None

    def admin(self) -> tuple[str, str]:
        """The initial admin's credentials, as ``provisor init`` wrote them."""
        found = json.loads((self.folder / "init" / "initial-admin.json").read_text())
        return found["client_id"], found["client_secret"]


@contextmanager
def nodes(folder: Path, database_url: str) -> Iterator[Nodes]:
    """The installation, initialised once (``provisor init``: migrations, first admin); every
    process started is stopped at the end."""
    made = Nodes(folder, database_url, {})
    made.command("init", "init")
    try:
        yield made
    finally:
        for process in made.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in made.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _up(url: str, process: subprocess.Popen[bytes]) -> bool:
    """Whether the server at ``url`` answers, or its process has ended."""
    if process.poll() is not None:
        return True
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def remote(url: str, admin: tuple[str, str]) -> Iterator[Remote]:
    with Session(url, client_id=admin[0], client_secret=admin[1]) as session:
        yield Remote(session)


def created(job: Job) -> int:
    return sum(s["created"] for s in job["statistics"] if s["systemName"] == "Target")


# -- the tests --------------------------------------------------------------------------------


def test_a_job_runs_on_the_workers_and_survives_one(
    pg_database: str, tmp_path: Path, slow_target: str
) -> None:
    with nodes(tmp_path, pg_database) as cluster, ExitStack() as closing:
        services = Services.open(cluster.settings())
        closing.callback(services.close)
        add_users(services, *(f"u{i:03d}" for i in range(USERS)))
        source = lid_source(services, **{"idds.page.size": str(PAGE)})
        system(
            services,
            name="Target",
            type="scim",
            role="target",
            sourceSystemIds=[source.id],
            properties={
                "URL": slow_target,
                "Authentication": "NoAuthentication",
                "ips.write.concurrency": "1",
            },
        )
        workers = [cluster.start(f"worker-{i}", "worker") for i in range(2)]
        a, b = cluster.servers("a", "b")
        on_a = closing.enter_context(remote(a, cluster.admin()))
        on_b = closing.enter_context(remote(b, cluster.admin()))
        cluster.wait_for(
            lambda: len(on_b.jobs.runners()) == 2, "both workers seen through B", START_SECONDS
        )

        first = on_a.jobs.start("LID")
        cluster.wait_for(
            lambda: created(on_b.jobs.get(first["id"])) >= 2 * PAGE, "progress seen on B"
        )
        assert created(on_a.jobs.get(first["id"])) >= 2 * PAGE, "and on A"
        owner = _worker_of(services, first["id"])
        [victim] = [w for w in workers if owner.endswith(f":{w.pid}")]
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        def ended() -> list[Job] | None:
            chain = on_a.jobs.all(source="LID")["items"][::-1]  # oldest first
            return chain if len(chain) > 1 and chain[-1]["status"] == "Success" else None

        chain = cluster.wait_for(ended, "the job continued by the other worker", 180)
        chain = [on_a.jobs.get(j["id"]) for j in chain]  # with their statistics
        seen_on_b = [on_b.jobs.get(j["id"]) for j in chain]
        successor = chain[-1]
        assert [j["status"] for j in chain] == ["Pending Restart", "Success"]
        assert seen_on_b == chain
        assert successor["resumedFrom"] == first["id"]
        assert _worker_of(services, successor["id"]) != owner
        assert sum(created(j) for j in chain) >= USERS - PAGE
        read = [s["read"] for s in successor["statistics"] if s["systemName"] == "LID"]
        assert read and read[0] < USERS, "committed pages are not read again"
        assert sorted(_SlowPlainSCIM.creates) == [f"u{i:03d}" for i in range(USERS)]
        assert set(_SlowPlainSCIM.creates.values()) == {1}, "each user created once"
        assert len(_SlowPlainSCIM.users) == USERS
        assert len(on_a.jobs.runners()) == 1, "the killed worker is no longer alive"

        def settled() -> bool:
            with services.db.unscoped_read() as conn:
                left = conn.execute(
                    text(
                        "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
                    )
                ).scalar()
            return left == 0

        # No task is left behind, the dead worker's included: waited for, since procrastinate
        # marks a task done only after its job's row says how the job ended.
        cluster.wait_for(settled, "the dead worker's task done too")


def _worker_of(services: Services, job_id: str) -> str:
    with services.db.unscoped_read() as conn:
        worker = conn.execute(select(t.jobs.c.worker).where(t.jobs.c.id == job_id)).scalar()
    assert worker, f"job {job_id} was run by no worker"
    return str(worker)


def test_servers_share_budgets_and_sessions(pg_database: str, tmp_path: Path) -> None:
    with nodes(tmp_path, pg_database) as cluster, ExitStack() as closing:
        a, b = cluster.servers("a", "b")
        on_a = closing.enter_context(remote(a, cluster.admin()))
        made = on_a.clients.create("caller", ["realtime_api"])
        client_id, secret = made["clientId"], made["clientSecret"]
        calls = [
            closing.enter_context(httpx.Client(base_url=url, auth=(client_id, secret)))
            for url in (a, b)
        ]

        # The inbound budget: one per tenant, whichever server counts the call.
        answers = [calls[i % 2].get(PROXY).status_code for i in range(MAX_PER_MINUTE)]
        assert answers == [404] * MAX_PER_MINUTE, "within the budget: answered"
        refused = [calls[i % 2].get(PROXY) for i in range(2)]
        assert [r.status_code for r in refused] == [429, 429], "past it, on A and on B"
        assert all(1 <= int(r.headers["retry-after"]) <= 60 for r in refused)

        # A bearer token issued by A is good on B (its signing key derives from the shared key).
        issued = calls[0].post("/oauth2/token", data={"grant_type": "client_credentials"})
        assert issued.status_code == 200, issued.text
        bearer = {"authorization": f"Bearer {issued.json()['access_token']}"}
        refused_on_b = httpx.get(b + PROXY, headers=bearer)
        assert refused_on_b.status_code == 429, "authenticated, then past the shared budget"
        assert httpx.get(b + PROXY, headers={"authorization": "Bearer x"}).status_code == 401

        # A console session made on A is one on B too.
        person = json.loads((cluster.folder / "init" / "initial-administrator.json").read_text())
        browser = closing.enter_context(httpx.Client(base_url=a, headers={"origin": a}))
        form = FORM_CSRF.search(browser.get("/console/login").text)
        assert form
        signed = browser.post(
            "/console/login",
            data={"name": person["name"], "password": person["password"], "csrf": form[1]},
        )
        assert signed.status_code == 303, signed.text
        cookies = {"provisor_console": browser.cookies["provisor_console"]}
        with httpx.Client(base_url=b, cookies=cookies) as on_b:
            page = on_b.get("/console")
        assert page.status_code == 200, page.headers.get("location")
        assert person["name"] in page.text

        # A technical user deleted through B is refused by A too (A's cache holds it 2 s).
        with remote(b, cluster.admin()) as on_b_admin:
            on_b_admin.clients.delete(client_id)
        cluster.wait_for(
            lambda: calls[0].get(PROXY).status_code == 401, "A to refuse the deleted user"
        )

        # A server killed: a client that retries against the other gets its answer.
        cluster.processes["a"].send_signal(signal.SIGKILL)
        cluster.processes["a"].wait(timeout=10)
        admin = closing.enter_context(httpx.Client(auth=cluster.admin()))

        def asked(path: str) -> httpx.Response:
            for url in (a, b):  # as a client (or a load balancer) that retries
                try:
                    return admin.get(url + path)
                except httpx.TransportError:
                    continue
            raise AssertionError("no server answered")

        answer = asked("/api/v1/clients")
        assert answer.status_code == 200
        assert "caller" not in [c["name"] for c in answer.json()["items"]]
        with httpx.Client(base_url=b, cookies=cookies) as on_b:
            assert on_b.get("/console").status_code == 200, "the session lives on"


def test_nodes_started_together_set_the_installation_up_once(
    pg_database: str, tmp_path: Path
) -> None:
    """Servers started at once on a new database (as a compose file starts them): one
    creates the first accounts, the others wait their turn and start (before: the others
    failed with "A client named 'initial-admin' already exists")."""
    start = threading.Barrier(3)
    setups: dict[str, Setup | Exception] = {}

    def node(name: str) -> None:
        settings = Settings(data_dir=tmp_path / name, database_url=pg_database, secret_key=KEY)
        start.wait()
        try:
            setups[name] = initialise(settings)
        except Exception as exc:
            setups[name] = exc

    threads = [threading.Thread(target=node, args=(name,)) for name in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    done = [s for s in setups.values() if isinstance(s, Setup)]
    assert len(done) == 3, setups
    assert sorted(s.admin_file is None for s in done) == [False, True, True]
    assert sorted(s.administrator_file is None for s in done) == [False, True, True]
