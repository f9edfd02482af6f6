"""Shared fixtures: real databases (SQLite and PostgreSQL) and real servers on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from provisor.asgi import create_app
from provisor.context import Context
from provisor.runtime import Services, prepare
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage.database import Database
from tests import route_analysis
from tests.pg_databases import Databases

route_analysis.share()  # FastAPI analyses the routes once per worker, not once per test's app

CTX = Context.system("tests")  # the service calls a test makes directly

PG_HOST = os.environ.get("PROVISOR_TEST_PG_HOST", "127.0.0.1")
PG_ADMIN_URL = f"postgresql://postgres@{PG_HOST}:5432/postgres"
BACKENDS = ["sqlite", "postgresql"]


# Argon2id at its smallest costs: hashing a secret takes microseconds instead of most of a second
# (the default costs are tested in tests/unit/auth). Settings read it from the environment, so it
# reaches every Settings a test makes and every provisor process it starts.
CHEAP_HASHING = {"PROVISOR_SECRET_HASH_ITERATIONS": "1", "PROVISOR_SECRET_HASH_MEMORY_KIB": "32"}


# -- the quick subset: `pytest -m fast` (every test not slow) -----------------------------------

# Fixtures that make a test slow wherever it is (directly or through another fixture): PostgreSQL
# databases, slapd, and a live server (uvicorn on loopback: its tests are the HTTP half, their
# services are covered in-process). Tests that start provisor processes or take seconds are
# marked slow where they are written.
SLOW_FIXTURES = frozenset(
    {
        "pg_database",
        "pg_databases",
        "pg_empty_database",
        "pg_template",
        "ldap_server",
        "slapd",
        "server",
        "sqlite_server",
    }
)
# Modules that run the CLI as a process for each command (until they use the in-process runner,
# or mark the tests that must run a process).
PROCESS_MODULES = frozenset(
    {
        "tests/integration/test_cli.py",
        "tests/integration/test_cli_certs.py",
        "tests/integration/test_cli_systems.py",
        "tests/integration/test_job_logs.py",
        "tests/integration/test_start_errors.py",
        "tests/integration/test_transform_cli.py",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark slow the tests on PostgreSQL (a ``postgresql`` parameter or database), on slapd, on
    a live server and in PROCESS_MODULES, and fast every other test not marked slow by hand:
    new tests land on their side by rule."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgresql = callspec is not None and "postgresql" in callspec.params.values()
        uses = set(getattr(item, "fixturenames", ()))
        module = item.path.relative_to(config.rootpath).as_posix()
        if on_postgresql or uses & SLOW_FIXTURES or module in PROCESS_MODULES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)


# -- pytest-xdist: how many workers `-n auto` starts -----------------------------------------------

MAX_WORKERS = 8  # each worker holds its own PostgreSQL connections, slapd and servers


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Two workers per core (at most MAX_WORKERS): the tests wait for sockets, servers and
    processes much of the time, and another worker uses the core meanwhile."""
    return min(2 * (os.cpu_count() or 1), MAX_WORKERS)


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PROVISOR_* setting of the developer's shell leaks into a test; secrets are hashed
    cheaply."""
    for name in list(os.environ):
        if name.startswith("PROVISOR_"):
            monkeypatch.delenv(name)
    for name, value in CHEAP_HASHING.items():
        monkeypatch.setenv(name, value)


# -- PostgreSQL: one migrated template per session, one clone per test ----------------------------

# The role provisor's test databases belong to and are used as: no superuser and no BYPASSRLS,
# as operators run provisor (docs/security.md). A superuser, or a role with BYPASSRLS, skips
# row-level security: connected as postgres the suite would never meet the policies.
PG_ROLE = "provisor_app"


def _pg_admin() -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # fail, never skip: the suite needs PostgreSQL
        pytest.fail(
            f"PostgreSQL is required at {PG_HOST}:5432 (trust auth) and cannot be reached: {exc}",
            pytrace=False,
        )


_PG_ROLE_READY: list[bool] = []  # made or checked by this process


def _pg_role(conn: psycopg.Connection[Any]) -> None:
    """Create PG_ROLE unless it exists (several workers may try at once); fail if an earlier
    run left it a superuser or able to bypass row-level security."""
    if _PG_ROLE_READY:
        return
    try:
        conn.execute(f"CREATE ROLE {PG_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS")
    except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        pass  # made by another worker or run (UniqueViolation: at the same moment)
    row = conn.execute(
        "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = %s", [PG_ROLE]
    ).fetchone()
    if row != (False, False, True):
        pytest.fail(
            f"the PostgreSQL role {PG_ROLE} must log in with neither SUPERUSER nor BYPASSRLS "
            f"(row-level security is tested through it); drop it and run again: {row}",
            pytrace=False,
        )
    _PG_ROLE_READY.append(True)


def create_pg_database(name: str, template: str | None = None) -> None:
    """Create the database ``name`` owned by PG_ROLE (a copy of ``template`` if given)."""
    with _pg_admin() as conn:
        _pg_role(conn)
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}" OWNER {PG_ROLE}{copy}')


def drop_pg_database(name: str) -> None:
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database migrated by PG_ROLE (which owns its tables, as in production), once per
    worker."""
    name = f"provisor_tpl_{os.getpid()}"
    drop_pg_database(name)
    create_pg_database(name)
    db = Database(pg_url(name))
    migrate.upgrade(db)
    db.dispose()
    yield name
    drop_pg_database(name)


def pg_url(name: str) -> str:
    """The URL of database ``name`` as PG_ROLE: what provisor uses in the tests."""
    return f"postgresql+psycopg://{PG_ROLE}@{PG_HOST}:5432/{name}"


def pg_connect(name: str) -> psycopg.Connection[Any]:
    """An autocommit connection to database ``name`` as the superuser."""
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def pg_reused_databases(template: str, prefix: str) -> Databases:
    """Databases made from ``template`` (named ``prefix`` and a random suffix), emptied and
    used again."""
    return Databases(
        template,
        connect=pg_connect,
        create=create_pg_database,
        drop=drop_pg_database,
        new_name=lambda: f"{prefix}{uuid.uuid4().hex[:12]}",
    )


@pytest.fixture(scope="session")
def pg_databases(pg_template: str) -> Iterator[Databases]:
    """This worker's migrated databases: made from the template, emptied between tests."""
    databases = pg_reused_databases(pg_template, "provisor_test_")
    yield databases
    databases.close()


@pytest.fixture
def pg_database(pg_databases: Databases) -> Iterator[str]:
    """A migrated PostgreSQL database holding what a new one holds; its URL."""
    name = pg_databases.take()
    yield pg_url(name)
    pg_databases.give_back(name)


@pytest.fixture
def pg_empty_database() -> Iterator[str]:
    """A fresh PostgreSQL database without any table (owned by PG_ROLE); its URL."""
    name = f"provisor_empty_{uuid.uuid4().hex[:12]}"
    create_pg_database(name)
    yield pg_url(name)
    drop_pg_database(name)


# -- SQLite: one migrated database per session, one copy per test ---------------------------------

SQLITE_FILE = "provisor.db"  # the database in the data folder (Settings.sqlalchemy_url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, made once per worker (migrating takes most of a second)."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    db = Database(Settings(data_dir=folder).sqlalchemy_url)
    migrate.upgrade(db)
    db.dispose()
    return folder / SQLITE_FILE


@pytest.fixture
def sqlite_settings(sqlite_template: Path, tmp_path: Path) -> Settings:
    """Settings on a fresh, migrated SQLite database in tmp_path."""
    shutil.copyfile(sqlite_template, tmp_path / SQLITE_FILE)
    return Settings(data_dir=tmp_path)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings on SQLite (in tmp_path) and, in a second run, on PostgreSQL; migrated."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_settings")
    url = request.getfixturevalue("pg_database")
    return Settings(data_dir=tmp_path, database_url=url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The services of one process, on SQLite and then on PostgreSQL (migrated databases)."""
    opened = Services.open(settings)
    yield opened
    opened.close()


# -- a real server on loopback --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CLIENT_TLS = ssl.create_default_context()  # made once: loading the CA bundle takes a while


@dataclass
class LiveServer:
    """provisor served by uvicorn in a thread, with an admin client."""

    settings: Settings
    services: Services
    url: str
    admin: tuple[str, str]
    created: list[str] = field(default_factory=list)

    def client(self, auth: Any = "admin", path: str = "", **kwargs: Any) -> httpx.Client:
        if auth == "admin":
            auth = self.admin
        kwargs.setdefault("verify", CLIENT_TLS)
        return httpx.Client(base_url=self.url + path, auth=auth, timeout=60, **kwargs)

    def new_client(self, *permissions: str) -> tuple[str, str]:
        """A technical user with these permissions: (client id, secret)."""
        _, creds = self.services.clients.create(
            CTX, f"test-{uuid.uuid4().hex[:8]}", list(permissions)
        )
        return creds.client_id, creds.client_secret


@contextmanager
def uvicorn_thread(app: Any, **config: Any) -> Iterator[int]:
    """Serve an ASGI app with uvicorn in a thread on a free loopback port; the port. The socket is
    bound here and handed to uvicorn: no other test worker can take the port in between."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        try:
            yield port
        finally:
            server.should_exit = True
            thread.join(timeout=30)


@contextmanager
def serve(settings: Settings) -> Iterator[LiveServer]:
    """Prepare the database, start the app on a free port, stop it afterwards."""
    written = prepare(settings)
    assert written is not None, "a fresh store creates the initial admin"
    admin = json.loads(written.read_text())
    services = Services.open(settings)
    app = create_app(settings, services)
    # proxy_headers off, as provisor serve: the app decides whom to believe
    with uvicorn_thread(app, log_level="warning", lifespan="on", proxy_headers=False) as port:
        yield LiveServer(
            settings=settings,
            services=services,
            url=f"http://127.0.0.1:{port}",
            admin=(admin["client_id"], admin["client_secret"]),
        )


@pytest.fixture
def server(settings: Settings) -> Iterator[LiveServer]:
    """A live server on SQLite and, in a second run, on PostgreSQL."""
    with serve(settings) as live:
        yield live


@pytest.fixture
def sqlite_server(sqlite_settings: Settings) -> Iterator[LiveServer]:
    with serve(sqlite_settings) as live:
        yield live


@pytest.fixture
def scim(server: LiveServer) -> Iterator[httpx.Client]:
    """An admin HTTP client on the live server's /scim."""
    with server.client(path="/scim") as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio."""
    return "asyncio"


# -- the provisor command against a live server ---------------------------------------------------


@dataclass
class CLI:
    """The ``provisor`` command as an administrator runs it against ``server``: with
    PROVISOR_SERVER and the initial admin's credentials in the environment, in ``cwd``."""

    server: LiveServer
    cwd: Path
    env: dict[str, str]

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``python -m provisor ARGS`` in a subprocess, as a user runs it."""
        completed = subprocess.run(
            [sys.executable, "-m", "provisor", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.cwd,
            timeout=120,
            check=False,
            input=stdin,
        )
        if check:
            assert completed.returncode == 0, completed.stderr
        return completed

    def invoke(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The same command in this process (typer's runner): faster, same result shape."""
        from typer.testing import CliRunner

        from provisor.cli import app

        runner = CliRunner()
        with _chdir(self.cwd):
            result = runner.invoke(
                app, list(args), input=stdin, env=self.env, catch_exceptions=False
            )
        completed = subprocess.CompletedProcess(
            ["provisor", *args], result.exit_code, result.stdout, result.stderr
        )
        if check:
            assert completed.returncode == 0, completed.stderr
        return completed


@contextmanager
def _chdir(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cli_for(live: LiveServer, cwd: Path, credentials: tuple[str, str] | None = None) -> CLI:
    """The command as the technical user ``credentials`` (default: the initial admin) of
    ``live``, with no profile and no PROVISOR_* setting of the developer's shell."""
    client_id, secret = credentials or live.admin
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update(
        PROVISOR_SERVER=live.url,
        PROVISOR_CLIENT_ID=client_id,
        PROVISOR_CLIENT_SECRET=secret,
        PROVISOR_CONFIG_DIR=str(cwd / ".config"),  # never the developer's profiles
        COLUMNS="200",  # tables as wide as a terminal's, not clipped at 80
    )
    return CLI(server=live, cwd=cwd, env=env)


@pytest.fixture
def cli(sqlite_server: LiveServer, tmp_path: Path) -> CLI:
    """The provisor command, as the initial admin, against a live SQLite server."""
    cwd = tmp_path / "cli"
    cwd.mkdir()
    return cli_for(sqlite_server, cwd)
