"""Benchmark of the SCIM 2.0 API of the Local Identity Directory, against a reference server.

What it measures, for each storage backend (SQLite, PostgreSQL) of a real ``provisor serve``
process started with its default settings (workers, pool sizes, durability):

* the load of N realistic users (~1.3 KB of JSON each) through ``POST /scim/Bulk``
  (1000 operations per request, 4 client threads), in users per second;
* with ``wrk`` (one thread, ``--connections`` connections, after a ``--warmup`` run):
  ``GET /scim/Users/{id}``, ``GET /scim/Users?filter=userName eq "..."`` (half of them
  upper-cased), ``POST /scim/Users`` and ``PATCH /scim/Users/{id}`` (replace displayName),
  in requests per second with the p50 and p99 latencies and the count of non-2xx responses;
* the full read of every user by one Python client, with SAP cursor paging
  (``startId=initial`` then ``nextId``) at ``count=1000`` and ``count=100``, in seconds.

The same measurements run against ``scim2-server`` (in-memory, WSGI, reference) loaded with
``--ref-users`` users, whose full read uses ``startIndex`` paging. The report shows the results,
the ratios provisor / scim2-server and the performance targets, marked met or not.

Run it from the project root (PostgreSQL must accept the ``--pg-url`` admin connection)::

    python benchmarks/scim_directory.py --users 100000
    python benchmarks/scim_directory.py --users 5000 --ref-users 2000 --duration 3 --warmup 1

``--compare`` runs provisor (default settings, SQLite) and its two peers in one run: it starts
and loads the three, then measures each operation on each server in turn, seconds apart (a
change of the machine's load touches both sides of a ratio alike; the idle servers wait), and
prints, per operation, each one's rate and p99 and the ratios provisor / peer, each marked
against the goal of issue 20 (POST and PATCH >= 2x scim2-server and >= 1.5x
django-scim2; GET by id and ``userName eq`` >= 3x both; bulk load >= 3,000 users/s)::

    python benchmarks/scim_directory.py --compare
    python benchmarks/scim_directory.py --compare --duration 10 --warmup 3 --json out.json

The peers are ``scim2-server`` (the reference, in memory, WSGI, one process, installed with
provisor's test extra) and ``django-scim2`` (``benchmarks/peers/django_scim2``: gunicorn with
``--django-workers`` sync workers, 2 by default, SQLite in WAL mode; its own virtual
environment is created with pinned versions the first time, see benchmarks/peers/djangoscim.py).
What makes the comparison fair:

* the same users (``loaded_user``: the same generated documents, 3,000 by default for every
  server: ``--users``, ``--ref-users``, ``--django-users``), the same wrk Lua scripts
  (benchmarks/lua/), the same connections (``--connections``), durations and warm-up, one
  server measured at a time on the same machine; PATCH replaces ``name.familyName`` on every
  server (django-scim2 answers 501 to a ``displayName`` replace);
* why one N of 3,000 for both peers: provisor's cost per request does not depend on N
  (indexed lookups), the peers' does: scim2-server reads its list linearly and django-scim2
  filters with ``UPPER(username) = UPPER(?)``, a scan of the table. A peer is no slower with
  3,000 users than with 5,000 (the issue's count for scim2-server): 3,000 does not flatter
  provisor;
* authentication: provisor checks HTTP Basic credentials on every request (the Argon2 check
  once, then an in-memory proof; the client row is re-read every 2 s); django-scim2 reads a
  bearer token and its user from SQLite on every request (what Django REST framework's
  TokenAuthentication does); scim2-server has no authentication at all and pays nothing;
* a write: provisor commits to SQLite with ``synchronous=FULL`` (its default: on disk before
  the answer); django-scim2 runs in Django's autocommit mode with ``synchronous`` from
  ``--django-synchronous`` (FULL by default, so the same durability; a POST commits twice:
  the INSERT, then ``scim_id``), persistent connections and ``BEGIN IMMEDIATE``;
  scim2-server keeps everything in memory and writes nothing;
* the bulk load: provisor takes ``POST /scim/Bulk`` (1,000 operations a request); neither
  peer implements Bulk, so they load with ``POST /Users``, 4 client threads;
* gunicorn's sync workers close the connection after each response (no keep-alive): wrk
  reconnects for every request there, as any client of such a deployment does.

It needs ``wrk`` (installed with apt-get when missing and running as root).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.peers import djangoscim  # noqa: E402

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SCIM_JSON = "application/scim+json"

BULK_SIZE = 1000
LOADER_THREADS = 4
WRK_TIMEOUT = "10s"
FULL_READ_TARGET_USERS = 100_000
LUA_DIR = Path(__file__).resolve().parent / "lua"
BIN_DIR = Path(sys.executable).parent

OPERATIONS: dict[str, str] = {
    "get": "GET /Users/{id}",
    "filter": "GET /Users?filter=userName eq",
    "post": "POST /Users",
    "patch": "PATCH /Users/{id}",
}
LUA_SCRIPTS = {
    "get": "get_user.lua",
    "filter": "filter_username.lua",
    "post": "post_user.lua",
    "patch": "patch_user.lua",
}


@dataclass(frozen=True)
class Target:
    """A performance target of one operation: req/s (minimum, ambitious) and optional p99."""

    rps: float
    ambitious: float
    p99_ms: float | None = None


TARGETS = {
    "get": Target(2000, 3500),
    "filter": Target(1800, 3000, p99_ms=50),
    "post": Target(700, 1500),
    "patch": Target(600, 1200),
}
FULL_READ_TARGET_SECONDS = 20.0

# --compare: the goals of issue 20, as the least ratio provisor / peer of each operation
PEERS = ("scim2-server", "django-scim2")
COMPARE_GOALS: dict[str, dict[str, float]] = {
    "get": {"scim2-server": 3.0, "django-scim2": 3.0},
    "filter": {"scim2-server": 3.0, "django-scim2": 3.0},
    "post": {"scim2-server": 2.0, "django-scim2": 1.5},
    "patch": {"scim2-server": 2.0, "django-scim2": 1.5},
}
BULK_LOAD_GOAL = 3000.0  # users/s through POST /scim/Bulk, an absolute goal
COMPARE_PATCH_PATH = "name.familyName"  # a path every server can replace


# -- Results -------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    operation: str
    requests: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float = 0.0
    p90_ms: float = 0.0
    p99_ms: float = 0.0
    non_2xx: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: dict[str, int] = field(default_factory=dict)
    busy_after_s: float = 0.0
    output: str = ""


@dataclass
class FullRead:
    label: str
    paging: str
    count: int
    seconds: float
    users_read: int
    total_results: int
    pages: int
    duplicates: int

    @property
    def ok(self) -> bool:
        return self.users_read == self.total_results and self.duplicates == 0


@dataclass
class LoadResult:
    users: int
    seconds: float
    failures: int
    errors: list[str]
    ids: list[str]
    names: list[str]

    @property
    def rate(self) -> float:
        return self.users / self.seconds if self.seconds else 0.0


@dataclass
class ServerRun:
    name: str
    users_requested: int
    users_loaded: int = 0
    load_seconds: float = 0.0
    load_rate: float = 0.0
    load_failures: int = 0
    measurements: dict[str, WrkResult] = field(default_factory=dict)
    full_reads: list[FullRead] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    data_dir: str = ""
    # os.getloadavg() (1, 5, 15 minutes) when the server started and when it was measured
    load_average: dict[str, list[float]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    # --compare --rounds: every round's rate and failed answers, per operation
    round_rates: dict[str, list[float]] = field(default_factory=dict)
    round_failures: dict[str, int] = field(default_factory=dict)


# -- Generic helpers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def executable(name: str) -> str:
    """The venv's console script next to this Python, else the one on PATH."""
    candidate = BIN_DIR / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"error: {name!r} not found next to {sys.executable} nor on PATH")
    return found


def basic_auth(client_id: str, secret: str) -> str:
    token = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return f"Basic {token}"


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail early when the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"server not healthy after {timeout:.0f} s:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def server_process(
    cmd: Sequence[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server subprocess with its output in ``log``; SIGTERM it (then SIGKILL) at exit."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        yield proc
    finally:
        stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print(f"  server {proc.pid} ignored SIGTERM; killing its process group")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class Progress:
    """Thread-safe counter printing a line each time another ~10% is done."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.next_step = 1
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            if not self.total or self.done * 10 < self.next_step * self.total:
                return
            self.next_step = self.done * 10 // self.total + 1
            elapsed = time.monotonic() - self.started
            rate = self.done / elapsed if elapsed else 0.0
            print(
                f"  {self.label}: {self.done}/{self.total} "
                f"({100 * self.done // self.total}%) {rate:,.0f} users/s",
                flush=True,
            )


# -- Users ---------------------------------------------------------------------------------------

GIVEN = ["Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas"]
FAMILY = ["Schmidt", "Meyer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch", "Richter"]
SITES = [
    ("Dietmar-Hopp-Allee", "Walldorf", "69190", "DE", "Europe/Berlin", "de_DE"),
    ("Rue de la Paix", "Paris", "75002", "FR", "Europe/Paris", "fr_FR"),
    ("Market Street", "San Francisco", "94105", "US", "America/Los_Angeles", "en_US"),
    ("Orchard Road", "Singapore", "238858", "SG", "Asia/Singapore", "en_SG"),
]
DEPARTMENTS = ["Engineering", "Sales", "Finance", "Human Resources", "Support", "Marketing"]
DIVISIONS = ["Products", "Field Operations", "Corporate Functions"]


def user_doc(i: int, user_name: str, email: str, extended: bool = True) -> dict[str, Any]:
    """A realistic SCIM user with the enterprise extension: ~1.3 KB of JSON (~1.1 KB when not
    ``extended`` with a private e-mail, a fax number and a profile URL)."""
    given = GIVEN[i % len(GIVEN)]
    family = FAMILY[(i // len(GIVEN)) % len(FAMILY)]
    street, city, postal, country, tz, locale = SITES[i % len(SITES)]
    department = DEPARTMENTS[i % len(DEPARTMENTS)]
    doc: dict[str, Any] = {
        "schemas": [CORE_USER, ENTERPRISE_USER],
        "userName": user_name,
        "name": {
            "givenName": given,
            "familyName": family,
            "formatted": f"{given} {family}",
            "honorificPrefix": "Dr." if i % 7 == 0 else "Ms." if i % 2 else "Mr.",
        },
        "displayName": f"{given} {family}",
        "nickName": given.lower(),
        "title": f"{department} Specialist",
        "userType": "Employee",
        "preferredLanguage": locale.replace("_", "-"),
        "locale": locale,
        "timezone": tz,
        "active": True,
        "emails": [{"value": email, "type": "work", "primary": True}],
        "phoneNumbers": [
            {"value": f"+49 6227 7{i % 1_000_000:06d}", "type": "work", "primary": True},
            {"value": f"+49 170 {i % 10_000_000:07d}", "type": "mobile"},
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": f"{1 + i % 200} {street}",
                "locality": city,
                "region": country,
                "postalCode": postal,
                "country": country,
                "formatted": f"{1 + i % 200} {street}\n{postal} {city}\n{country}",
                "primary": True,
            }
        ],
        ENTERPRISE_USER: {
            "employeeNumber": f"E{i:08d}",
            "costCenter": f"CC-{4000 + i % 500}",
            "organization": "Example Corporation",
            "division": DIVISIONS[i % len(DIVISIONS)],
            "department": department,
        },
    }
    if extended:
        doc["profileUrl"] = f"https://people.example.com/profiles/{i:08d}"
        doc["emails"].append({"value": f"private.{email}", "type": "home"})
        doc["phoneNumbers"].append({"value": f"+49 6227 8{i % 1_000_000:06d}", "type": "fax"})
    return doc


def user_name_of(i: int) -> str:
    return f"user{i:06d}@example.com"


def loaded_user(i: int) -> dict[str, Any]:
    return user_doc(i, user_name_of(i), user_name_of(i))


def post_template() -> str:
    """The body of the POST benchmark; "@@N@@" becomes a unique text per request."""
    marker = "bench-@@N@@@example.org"
    return json.dumps(user_doc(424242, marker, marker, extended=False), separators=(",", ":"))


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


# -- Loading -------------------------------------------------------------------------------------


def chunks(total: int, size: int) -> list[range]:
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


def run_loader(
    label: str, total: int, chunk_size: int, load_chunk: Callable[[range], LoadResult]
) -> LoadResult:
    """Run ``load_chunk`` over the user indexes with LOADER_THREADS threads; merge the results."""
    progress = Progress(label, total)

    def task(part: range) -> LoadResult:
        result = load_chunk(part)
        progress.add(len(part))
        return result

    started = time.monotonic()
    with ThreadPoolExecutor(LOADER_THREADS) as pool:
        parts = list(pool.map(task, chunks(total, chunk_size)))
    seconds = time.monotonic() - started
    merged = LoadResult(0, seconds, 0, [], [], [])
    for part in parts:
        merged.users += part.users
        merged.failures += part.failures
        merged.errors.extend(part.errors[: max(0, 5 - len(merged.errors))])
        merged.ids.extend(part.ids)
        merged.names.extend(part.names)
    return merged


class ThreadClients:
    """One keep-alive httpx.Client per thread."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = base_url
        self.headers = headers
        self.local = threading.local()
        self.all: list[httpx.Client] = []
        self.lock = threading.Lock()

    def get(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self.local, "client", None)
        if client is None:
            client = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=600)
            self.local.client = client
            with self.lock:
                self.all.append(client)
        return client

    def close(self) -> None:
        for client in self.all:
            client.close()


def bulk_loader(clients: ThreadClients) -> Callable[[range], LoadResult]:
    def load(part: range) -> LoadResult:
        operations = [
            {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": loaded_user(i)}
            for i in part
        ]
        body = dumps({"schemas": [BULK_REQUEST], "Operations": operations})
        response = clients.get().post(
            "/scim/Bulk", content=body, headers={"Content-Type": SCIM_JSON}
        )
        result = LoadResult(0, 0.0, 0, [], [], [])
        if response.status_code != 200:
            result.failures = len(part)
            result.errors.append(f"Bulk HTTP {response.status_code}: {response.text[:300]}")
            return result
        for op in orjson.loads(response.content).get("Operations", []):
            if op.get("status") == "201" and op.get("location"):
                result.users += 1
                result.ids.append(op["location"].rstrip("/").rsplit("/", 1)[-1])
                result.names.append(user_name_of(int(op["bulkId"][1:])))
            else:
                result.failures += 1
                result.errors.append(f"bulk op {op.get('bulkId')}: {json.dumps(op)[:300]}")
        return result

    return load


def single_loader(clients: ThreadClients, prefix: str) -> Callable[[range], LoadResult]:
    def load(part: range) -> LoadResult:
        result = LoadResult(0, 0.0, 0, [], [], [])
        client = clients.get()
        for i in part:
            response = client.post(
                f"{prefix}/Users",
                content=dumps(loaded_user(i)),
                headers={"Content-Type": SCIM_JSON},
            )
            if response.status_code == 201:
                result.users += 1
                result.ids.append(orjson.loads(response.content)["id"])
                result.names.append(user_name_of(i))
            else:
                result.failures += 1
                result.errors.append(f"POST HTTP {response.status_code}: {response.text[:300]}")
        return result

    return load


def record_load(run: ServerRun, load: LoadResult) -> None:
    run.users_loaded = load.users
    run.load_seconds = load.seconds
    run.load_rate = load.rate
    run.load_failures = load.failures
    print(f"  loaded {load.users} users in {load.seconds:.1f} s ({load.rate:,.0f} users/s)")
    if load.failures:
        run.problems.append(f"load: {load.failures} users not created, e.g. {load.errors[:3]}")


# -- wrk -----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("error: wrk is not installed; install it with: apt-get install -y wrk")
    print("wrk not found; installing it with apt-get ...")
    for cmd in (["apt-get", "install", "-y", "wrk"], ["apt-get", "update"]):
        subprocess.run(cmd, check=False)
        if cmd[1] == "update":
            subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("error: wrk is not installed and 'apt-get install -y wrk' failed")


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(value: str, unit: str) -> float:
    return float(value) * UNIT_MS[unit]


def parse_wrk(operation: str, output: str) -> WrkResult:
    """Parse the text output of ``wrk --latency`` (and of the done() hook of common.lua)."""
    result = WrkResult(operation, output=output)
    percentiles = re.findall(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)
    for pct, value, unit in percentiles:
        setattr(result, f"p{pct}_ms", to_ms(value, unit))
    if match := re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output):
        result.requests = int(match[1])
        result.seconds = to_ms(match[2], match[3]) / 1000
    if match := re.search(r"Requests/sec:\s+([\d.]+)", output):
        result.rps = float(match[1])
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result.non_2xx = int(match[1])
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        names = ("connect", "read", "write", "timeout")
        result.socket_errors = {n: int(v) for n, v in zip(names, match.groups(), strict=True)}
    for line in re.findall(r"^BENCH_STATUS (.*)$", output, re.M):
        for pair in line.split():
            code, _, count = pair.partition("=")
            result.statuses[code] = result.statuses.get(code, 0) + int(count)
    # wrk counts only statuses >= 400; the Lua hook also counts 1xx/3xx.
    result.non_2xx = max(result.non_2xx, sum(result.statuses.values()))
    return result


@dataclass
class WrkSetup:
    wrk: str
    base_url: str
    prefix: str
    auth: str
    ids_file: Path
    names_file: Path
    body_file: Path
    connections: int
    duration: int
    warmup: int
    settle: Callable[[], float] | None = None
    patch_path: str = "displayName"


def run_wrk(setup: WrkSetup, operation: str, seconds: int, phase: str) -> WrkResult:
    """Run one wrk measurement; its output is kept next to the ids file."""
    env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_PREFIX": setup.prefix,
        "BENCH_AUTH": setup.auth,
        "BENCH_TAG": secrets.token_hex(4),
        "BENCH_IDS_FILE": str(setup.ids_file),
        "BENCH_NAMES_FILE": str(setup.names_file),
        "BENCH_BODY_FILE": str(setup.body_file),
        "BENCH_PATCH_PATH": setup.patch_path,
    }
    cmd = [
        setup.wrk,
        "-t1",
        f"-c{setup.connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(LUA_DIR / LUA_SCRIPTS[operation]),
        setup.base_url,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    setup.ids_file.with_name(f"wrk-{operation}-{phase}.txt").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(operation, done.stdout)


def measure(setup: WrkSetup, run: ServerRun) -> None:
    for operation, label in OPERATIONS.items():
        measure_one(setup, run, operation, label)


def measure_one(
    setup: WrkSetup, run: ServerRun, operation: str, label: str, name: str = ""
) -> WrkResult:
    """Warm up (``setup.warmup`` seconds), then measure one operation for ``setup.duration``."""
    if setup.warmup > 0:
        warm = run_wrk(setup, operation, setup.warmup, "warmup")
        settle(setup, run, warm, f"warmup {label}")
        if warm.non_2xx or any(warm.socket_errors.values()):
            run.problems.append(
                f"warmup {label}: {warm.non_2xx} non-2xx {warm.statuses} "
                f"socket errors {warm.socket_errors}"
            )
    result = run_wrk(setup, operation, setup.duration, "measure")
    run.measurements[operation] = result
    flag = "" if result.non_2xx == 0 else f"  <-- {result.non_2xx} NON-2xx {result.statuses}"
    print(
        f"  {f'{name:16} ' if name else ''}{label:32} {result.rps:9,.0f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms{flag}",
        flush=True,
    )
    settle(setup, run, result, label)
    if result.non_2xx:
        run.problems.append(f"{label}: {result.non_2xx} non-2xx responses {result.statuses}")
    if result.requests == 0:
        run.problems.append(f"{label}: no request completed; wrk said:\n{result.output}")
    if any(result.socket_errors.values()):
        run.problems.append(f"{label}: socket errors {result.socket_errors}")
    return result


def settle(setup: WrkSetup, run: ServerRun, result: WrkResult, label: str) -> None:
    """Let the server finish what wrk left behind, so it does not slow the next measurement.

    wrk closes its connections with requests in flight when its time is up; the server may
    keep working on them (e.g. logging errors) for a while after.
    """
    if setup.settle is None:
        return
    result.busy_after_s = round(setup.settle(), 2)
    if result.busy_after_s > 0.5:
        message = (
            f"{label}: the server kept writing its log for {result.busy_after_s:.1f} s after "
            "wrk closed its connections (see the server log problems below)"
        )
        print(f"  ! {message}", flush=True)
        run.problems.append(message)


def wait_for_quiet_log(log: Path, quiet: float, limit: float = 900.0) -> float:
    """Wait until ``log`` has not grown for ``quiet`` seconds; return how long it kept growing."""
    started = time.monotonic()
    size, last_change = log.stat().st_size, started
    while True:
        time.sleep(0.2)
        now = time.monotonic()
        current = log.stat().st_size
        if current != size:
            size, last_change = current, now
        if now - last_change >= quiet or now - started >= limit:
            return last_change - started


def wrk_setup(
    args: argparse.Namespace,
    wrk: str,
    base_url: str,
    prefix: str,
    auth: str,
    directory: Path,
    load: LoadResult,
    settle: Callable[[], float] | None,
) -> WrkSetup:
    """Write the inputs of the Lua scripts (ids, userNames, POST body) and bundle the settings."""
    ids_file = directory / "bench-ids.txt"
    names_file = directory / "bench-names.txt"
    body_file = directory / "bench-post-body.json"
    ids_file.write_text("\n".join(load.ids) + "\n")
    names_file.write_text("\n".join(load.names) + "\n")
    body_file.write_text(post_template())
    return WrkSetup(
        wrk=wrk,
        base_url=base_url,
        prefix=prefix,
        auth=auth,
        ids_file=ids_file,
        names_file=names_file,
        body_file=body_file,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        settle=settle,
        patch_path=getattr(args, "patch_path", None) or "displayName",
    )


# -- Full read -----------------------------------------------------------------------------------


def read_all(client: httpx.Client, path: str, paging: str, count: int, label: str) -> FullRead:
    """Read every user page by page: SAP cursor paging ("cursor") or startIndex ("index")."""
    seen: set[str] = set()
    read = pages = 0
    total = -1
    started = time.monotonic()
    cursor, index = "initial", 1
    while True:
        params: dict[str, str | int] = {"count": count}
        if paging == "cursor":
            params["startId"] = cursor
        else:
            params["startIndex"] = index
        response = client.get(path, params=params)
        response.raise_for_status()
        page = orjson.loads(response.content)
        pages += 1
        if total < 0:
            total = int(page["totalResults"])
        resources = page.get("Resources", [])
        read += len(resources)
        seen.update(r["id"] for r in resources)
        if paging == "cursor":
            cursor = page.get("nextId", "end")
            if cursor == "end":
                break
        else:
            index += len(resources)
            if not resources or index > total:
                break
    seconds = time.monotonic() - started
    return FullRead(label, paging, count, seconds, read, total, pages, read - len(seen))


def full_reads(
    run: ServerRun, base_url: str, headers: dict[str, str], path: str, plans: list[tuple[str, int]]
) -> None:
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        for paging, count in plans:
            label = f"{'cursor startId' if paging == 'cursor' else 'startIndex'} count={count}"
            result = read_all(client, path, paging, count, label)
            run.full_reads.append(result)
            status = "OK" if result.ok else "MISMATCH"
            print(
                f"  full read {label:26} {result.seconds:7.2f} s  {result.users_read} users "
                f"(totalResults {result.total_results}, {result.pages} pages, "
                f"{result.duplicates} duplicates) {status}",
                flush=True,
            )
            if not result.ok:
                run.problems.append(
                    f"full read {label}: read {result.users_read} users with "
                    f"{result.duplicates} duplicates, totalResults {result.total_results}"
                )


# -- PostgreSQL ----------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def create_database(admin_url: str) -> str:
    import psycopg
    from psycopg import sql

    name = f"provisor_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


# -- Servers -------------------------------------------------------------------------------------


def provisor_env(database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    if database_url:
        env["PROVISOR_DATABASE_URL"] = database_url
    return env


EXCEPTION_LINE = re.compile(r"^(([a-z_]\w*\.)+[A-Z]\w*|[A-Z]\w*(Error|Exception))(: .*)?$")


def log_problems(run: ServerRun, log: Path) -> None:
    """Report the errors the server logged: how many tracebacks, and their exception lines."""
    text = log.read_text(errors="replace") if log.exists() else ""
    lines = text.splitlines()
    tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
    errors = sum(1 for line in lines if line.startswith("ERROR:"))
    exceptions: dict[str, int] = {}
    for line in lines:
        if EXCEPTION_LINE.match(line):
            exceptions[line[:200]] = exceptions.get(line[:200], 0) + 1
    if tracebacks or errors or exceptions:
        top = sorted(exceptions.items(), key=lambda item: -item[1])[:5]
        run.problems.append(
            f"server log ({log}): {errors} ERROR lines, {tracebacks} tracebacks; "
            f"exceptions: {'; '.join(f'{n} x {line}' for line, n in top) or 'none parsed'}"
        )


@dataclass
class Contender:
    """A server started and loaded with its users, ready for wrk; ``setup`` is None when no user
    could be loaded (the run's problems say why)."""

    run: ServerRun
    setup: WrkSetup | None
    base_url: str
    headers: dict[str, str]
    users_path: str


def load_contender(
    run: ServerRun,
    args: argparse.Namespace,
    wrk: str,
    target: tuple[str, str, str],
    directory: Path,
    loader: tuple[str, int, Callable[[ThreadClients], Callable[[range], LoadResult]]],
    settle: Callable[[], float] | None,
) -> Contender:
    """Load ``run.users_requested`` users with ``loader`` (label, chunk size, factory), then
    write the inputs of wrk. ``target`` is (base URL, SCIM prefix, Authorization value)."""
    base_url, prefix, auth = target
    headers = {"Accept": SCIM_JSON, **({"Authorization": auth} if auth else {})}
    label, chunk, factory = loader
    clients = ThreadClients(base_url, headers)
    try:
        load = run_loader(label, run.users_requested, chunk, factory(clients))
    finally:
        clients.close()
    record_load(run, load)
    note_load_average(run, "loaded")
    contender = Contender(run, None, base_url, headers, f"{prefix}/Users")
    if not load.ids:
        run.problems.append("no user loaded: measurements skipped")
        return contender
    contender.setup = wrk_setup(args, wrk, base_url, prefix, auth, directory, load, settle)
    return contender


def post_chunk(users: int) -> int:
    """Chunks of the one-POST-per-user loaders: ten per loader thread."""
    return -(-users // (LOADER_THREADS * 10))


@contextlib.contextmanager
def provisor_contender(backend: str, args: argparse.Namespace, wrk: str) -> Iterator[Contender]:
    """``provisor serve`` with its default settings, loaded with ``args.users`` through Bulk."""
    print(f"\n=== provisor ({backend}) with {args.users} users ===", flush=True)
    data_dir = Path(tempfile.mkdtemp(prefix=f"provisor-bench-{backend}-"))
    run = ServerRun(f"provisor/{backend}", args.users, data_dir=str(data_dir))
    note_load_average(run, "start")
    run.settings = {
        "storage": backend,
        "synchronous": "FULL (default)" if backend == "sqlite" else "",
        "authentication": "HTTP Basic, proven once then from memory",
    }
    database = create_database(args.pg_url) if backend == "postgresql" else None
    log = data_dir / "server.log"
    try:
        env = provisor_env(with_database(args.pg_url, database) if database else None)
        port = free_port()
        cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(data_dir)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        base_url = f"http://127.0.0.1:{port}"
        with server_process(cmd, env, log) as proc:
            wait_until_up(f"{base_url}/health", proc, log, timeout=120)
            creds = json.loads((data_dir / "initial-admin.json").read_text())
            auth = basic_auth(creds["client_id"], creds["client_secret"])
            quiet = args.settle
            settle = (lambda: wait_for_quiet_log(log, quiet)) if quiet > 0 else None
            loader = ("bulk load", BULK_SIZE, bulk_loader)
            target = (base_url, "/scim", auth)
            yield load_contender(run, args, wrk, target, data_dir, loader, settle)
        log_problems(run, log)
    finally:
        if database:
            drop_database(args.pg_url, database)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


@contextlib.contextmanager
def reference_contender(args: argparse.Namespace, wrk: str) -> Iterator[Contender]:
    """scim2-server (in memory, no authentication), loaded with ``args.ref_users`` POSTs."""
    print(f"\n=== scim2-server (reference, in-memory) with {args.ref_users} users ===", flush=True)
    work_dir = Path(tempfile.mkdtemp(prefix="provisor-bench-scim2-server-"))
    run = ServerRun("scim2-server", args.ref_users, data_dir=str(work_dir))
    note_load_average(run, "start")
    run.settings = {"storage": "memory", "authentication": "none"}
    log = work_dir / "server.log"
    try:
        port = free_port()
        cmd = [executable("scim2-server"), "--port", str(port)]
        base_url = f"http://127.0.0.1:{port}"
        with server_process(cmd, dict(os.environ), log) as proc:
            wait_until_up(f"{base_url}/ServiceProviderConfig", proc, log, timeout=60)
            loader = ("POST load", post_chunk(args.ref_users), lambda c: single_loader(c, ""))
            # scim2-server logs every request: its log never goes quiet, and it needs no settling.
            target = (base_url, "", "")
            yield load_contender(run, args, wrk, target, work_dir, loader, None)
        log_problems(run, log)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


@contextlib.contextmanager
def django_contender(args: argparse.Namespace, wrk: str) -> Iterator[Contender]:
    """django-scim2 under gunicorn (benchmarks/peers/django_scim2), loaded with POSTs."""
    print(
        f"\n=== django-scim2 (gunicorn, {args.django_workers} sync workers, SQLite WAL) "
        f"with {args.django_users} users ===",
        flush=True,
    )
    work_dir = Path(tempfile.mkdtemp(prefix="provisor-bench-django-scim2-"))
    run = ServerRun("django-scim2", args.django_users, data_dir=str(work_dir))
    note_load_average(run, "start")
    try:
        with djangoscim.django_scim2_server(
            work_dir, free_port(), workers=args.django_workers, synchronous=args.django_synchronous
        ) as server:
            run.settings = {
                "storage": "sqlite",
                "journal_mode": server.journal_mode,
                "synchronous": server.synchronous,
                "workers": f"{server.workers} gunicorn sync",
                "authentication": "bearer token read from the database per request",
            }
            print(f"  journal_mode={server.journal_mode} synchronous={server.synchronous}")
            prefix = djangoscim.PREFIX
            loader = (
                "POST load",
                post_chunk(args.django_users),
                lambda c: single_loader(c, prefix),
            )
            target = (server.base_url, prefix, server.auth)
            yield load_contender(run, args, wrk, target, work_dir, loader, None)
        log_problems(run, server.log)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)


def run_provisor(backend: str, args: argparse.Namespace, wrk: str) -> ServerRun:
    with provisor_contender(backend, args, wrk) as contender:
        if contender.setup is not None:
            measure(contender.setup, contender.run)
            plans = [("cursor", 1000), ("cursor", 100)]
            full_reads(contender.run, contender.base_url, contender.headers, "/scim/Users", plans)
    return contender.run


def run_reference(args: argparse.Namespace, wrk: str) -> ServerRun:
    with reference_contender(args, wrk) as contender:
        if contender.setup is not None:
            measure(contender.setup, contender.run)
            plans = [("index", 100), ("index", 1000)]
            full_reads(contender.run, contender.base_url, contender.headers, "/Users", plans)
    return contender.run


def run_django(args: argparse.Namespace, wrk: str) -> ServerRun:
    """django-scim2 alone: every operation measured, as in the comparison."""
    with django_contender(args, wrk) as contender:
        if contender.setup is not None:
            measure(contender.setup, contender.run)
    return contender.run


def note_load_average(run: ServerRun, moment: str) -> None:
    run.load_average[moment] = [round(value, 2) for value in os.getloadavg()]


# -- Report --------------------------------------------------------------------------------------


def print_results(runs: list[ServerRun]) -> None:
    print("\n" + "=" * 100)
    print("RESULTS")
    print("=" * 100)
    print(f"{'server':24} {'operation':32} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for run in runs:
        for operation, label in OPERATIONS.items():
            m = run.measurements.get(operation)
            if m is None:
                continue
            flag = "  <-- non-2xx!" if m.non_2xx else ""
            print(
                f"{run.name:24} {label:32} {m.rps:9,.0f} {m.p50_ms:8.2f} {m.p99_ms:8.2f} "
                f"{m.non_2xx:8}{flag}"
            )
    print()
    for run in runs:
        print(
            f"{run.name:24} load: {run.users_loaded} users in {run.load_seconds:.1f} s "
            f"= {run.load_rate:,.0f} users/s"
            + (f" ({run.load_failures} failures)" if run.load_failures else "")
        )
    print()
    for run in runs:
        for read in run.full_reads:
            print(
                f"{run.name:24} full read {read.label:26} {read.seconds:7.2f} s "
                f"for {read.users_read} users ({per_100k(read):.1f} s per 100k) "
                f"{'OK' if read.ok else 'MISMATCH'}"
            )


def per_100k(read: FullRead) -> float:
    return read.seconds * FULL_READ_TARGET_USERS / read.users_read if read.users_read else 0.0


def print_ratios(runs: list[ServerRun], reference: ServerRun | None) -> None:
    if reference is None or not reference.measurements:
        return
    print(
        f"\nRATIOS provisor / scim2-server (provisor with its N users, the reference with "
        f"{reference.users_loaded} users; req/s ratio > 1 = provisor faster)"
    )
    for run in runs:
        for operation, label in OPERATIONS.items():
            mine, ref = run.measurements.get(operation), reference.measurements.get(operation)
            if mine and ref and ref.rps:
                print(f"  {run.name:24} {label:32} req/s x{mine.rps / ref.rps:6.2f}")
        for count in (1000, 100):
            mine_read = next((r for r in run.full_reads if r.count == count), None)
            ref_read = next((r for r in reference.full_reads if r.count == count), None)
            if mine_read and ref_read and ref_read.seconds:
                print(
                    f"  {run.name:24} full read count={count:<5} time x"
                    f"{mine_read.seconds / ref_read.seconds:6.2f} "
                    f"({mine_read.users_read} vs {ref_read.users_read} users; "
                    f"per user x{per_100k(mine_read) / per_100k(ref_read):6.2f})"
                )


def target_verdicts(run: ServerRun) -> list[tuple[str, str, bool]]:
    """(what, measured vs target, met) for every target of a provisor run."""
    verdicts: list[tuple[str, str, bool]] = []
    for operation, target in TARGETS.items():
        m = run.measurements.get(operation)
        if m is None:
            continue
        met = m.rps >= target.rps and m.non_2xx == 0
        text = f"{m.rps:,.0f} req/s (>= {target.rps:,.0f}, ambitious {target.ambitious:,.0f})"
        if met and m.rps >= target.ambitious:
            text += ", ambitious target met too"
        if m.non_2xx:
            text += f", {m.non_2xx} non-2xx responses"
        verdicts.append((OPERATIONS[operation], text, met))
        if target.p99_ms is not None:
            ok = m.p99_ms <= target.p99_ms
            verdicts.append((f"{OPERATIONS[operation]} p99", f"{m.p99_ms:.1f} ms (<= 50)", ok))
    for read in run.full_reads:
        seconds = per_100k(read)
        text = f"{seconds:.1f} s per 100k users (<= {FULL_READ_TARGET_SECONDS:.0f} s)"
        if read.users_read != FULL_READ_TARGET_USERS:
            text += f", scaled from {read.users_read} users in {read.seconds:.2f} s"
        ok = read.ok and seconds <= FULL_READ_TARGET_SECONDS
        verdicts.append((f"full read {read.label}", text, ok))
    return verdicts


def print_targets(runs: list[ServerRun]) -> None:
    print("\nTARGETS (default server settings)")
    for run in runs:
        for what, text, met in target_verdicts(run):
            print(f"  {run.name:24} {what:36} {'MET    ' if met else 'NOT MET'}  {text}")


def print_problems(runs: list[ServerRun]) -> None:
    problems = [(run.name, p) for run in runs for p in run.problems]
    print("\nPROBLEMS" if problems else "\nNo problems: every response was 2xx.")
    for name, problem in problems:
        print(f"  {name}: {problem}")


def compare_rows(provisor: ServerRun, peers: Sequence[ServerRun]) -> list[dict[str, Any]]:
    """Per operation (and the load), each server's rate and p99 and the ratios provisor / peer,
    each with its goal and whether it is met. With several rounds, the ratio is the median of
    the rounds' ratios (each round measures both sides seconds apart) and the rates and p99 are
    the median round's. A ratio is None when either side answered anything but 2xx (or did not
    measure the operation): it would compare errors with work."""
    rows: list[dict[str, Any]] = []
    for operation, label in OPERATIONS.items():
        mine = provisor.measurements.get(operation)
        row: dict[str, Any] = {
            "operation": operation,
            "label": label,
            "unit": "req/s",
            "provisor": _figures(mine),
            "peers": {},
        }
        for peer in peers:
            theirs = peer.measurements.get(operation)
            goal = COMPARE_GOALS[operation].get(peer.name)
            failed = provisor.round_failures.get(operation) or peer.round_failures.get(operation)
            valid = bool(mine and theirs and not mine.non_2xx and not theirs.non_2xx)
            ratios = (
                [
                    a / b
                    for a, b in zip(
                        _rates(provisor, operation), _rates(peer, operation), strict=False
                    )
                    if b
                ]
                if valid and not failed
                else []
            )
            ratio = round(statistics.median(ratios), 2) if ratios else None
            row["peers"][peer.name] = {
                **_figures(theirs),
                "ratio": ratio,
                "round_ratios": [round(r, 2) for r in ratios],
                "goal": goal,
                "met": None if ratio is None or goal is None else ratio >= goal,
            }
        rows.append(row)
    load_row: dict[str, Any] = {
        "operation": "load",
        "label": "load, users/s (peers: POST)",
        "unit": "users/s",
        "provisor": {
            "rate": round(provisor.load_rate, 1),
            "p99_ms": None,
            "non_2xx": provisor.load_failures,
            "goal": BULK_LOAD_GOAL,
            "met": provisor.load_rate >= BULK_LOAD_GOAL and not provisor.load_failures,
        },
        "peers": {},
    }
    for peer in peers:
        valid = peer.load_rate > 0 and not peer.load_failures and not provisor.load_failures
        load_row["peers"][peer.name] = {
            "rate": round(peer.load_rate, 1),
            "p99_ms": None,
            "non_2xx": peer.load_failures,
            "ratio": round(provisor.load_rate / peer.load_rate, 2) if valid else None,
            "goal": None,
            "met": None,
        }
    rows.append(load_row)
    return rows


def _rates(run: ServerRun, operation: str) -> list[float]:
    if operation in run.round_rates:
        return run.round_rates[operation]
    measured = run.measurements.get(operation)
    return [measured.rps] if measured else []


def _figures(result: WrkResult | None) -> dict[str, Any]:
    if result is None:
        return {"rate": None, "p99_ms": None, "non_2xx": None}
    return {
        "rate": round(result.rps, 1),
        "p99_ms": round(result.p99_ms, 2),
        "non_2xx": result.non_2xx,
    }


def _rate_text(figures: dict[str, Any]) -> str:
    if figures["rate"] is None:
        return "-"
    text = f"{figures['rate']:,.0f}"
    if figures["p99_ms"] is not None:
        text += f" p99 {figures['p99_ms']:.1f}"
    if figures["non_2xx"]:
        text += f" ({figures['non_2xx']} failed)"
    return text


def _verdict_text(figures: dict[str, Any]) -> str:
    if figures["ratio"] is None:
        return "- (no valid ratio)" if figures["goal"] is not None else "-"
    text = f"x{figures['ratio']:.2f}"
    if figures["goal"] is not None:
        text += f" >= {figures['goal']:g} {'MET' if figures['met'] else 'NOT MET'}"
    return text


def print_comparison(args: argparse.Namespace, provisor: ServerRun, peers: list[ServerRun]) -> None:
    rows = compare_rows(provisor, peers)
    print("\n" + "=" * 100)
    print(
        f"COMPARISON (one run; wrk -t1 -c{args.connections} -d{args.duration}s after "
        f"{args.warmup}s of warm-up; req/s and p99 in ms"
        + (f"; median of {args.rounds} rounds)" if args.rounds > 1 else ")")
    )
    for run in [provisor, *peers]:
        load = " ".join(
            f"{k} {'/'.join(f'{v:.2f}' for v in vs)}" for k, vs in run.load_average.items()
        )
        print(f"  {run.name:16} {run.users_loaded:>7,} users; load average {load}")
    print("=" * 100)
    width = 24
    header = f"{'operation':30} {provisor.name:>{width}}"
    for peer in peers:
        header += f" {peer.name:>{width}}"
    for peer in peers:
        header += f"  {'x ' + peer.name:{width}}"
    print(header)
    for row in rows:
        line = f"{row['label'][:30]:30} {_rate_text(row['provisor']):>{width}}"
        for peer in peers:
            line += f" {_rate_text(row['peers'][peer.name]):>{width}}"
        for peer in peers:
            line += f"  {_verdict_text(row['peers'][peer.name]):{width}}"
        print(line)
    mine = rows[-1]["provisor"]
    print(
        f"\nbulk load goal: provisor {mine['rate']:,.0f} users/s >= {BULK_LOAD_GOAL:,.0f} "
        f"{'MET' if mine['met'] else 'NOT MET'}"
    )
    for run in [provisor, *peers]:
        if run.settings:
            print(f"  {run.name}: {', '.join(f'{k} {v}' for k, v in run.settings.items() if v)}")


def write_json(path: Path, args: argparse.Namespace, runs: list[ServerRun]) -> None:
    report = {
        "arguments": {k: v for k, v in vars(args).items() if k != "json_out"},
        "runs": [
            {
                **asdict(run),
                "measurements": {
                    op: {k: v for k, v in asdict(m).items() if k != "output"}
                    for op, m in run.measurements.items()
                },
                "full_reads": [{**asdict(r), "ok": r.ok} for r in run.full_reads],
                "targets": [
                    {"what": w, "result": t, "met": ok} for w, t, ok in target_verdicts(run)
                ]
                if run.name.startswith("provisor")
                else [],
            }
            for run in runs
        ],
    }
    provisor = next((run for run in runs if run.name.startswith("provisor")), None)
    peers = [run for run in runs if run.name in PEERS]
    if getattr(args, "compare", False) and provisor is not None:
        report["comparison"] = compare_rows(provisor, peers)
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nJSON written to {path}")


# -- Main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="provisor (SQLite, default settings), scim2-server and django-scim2 in one run: "
        "rates, p99 and ratios against the goals (no full reads)",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help="users loaded in provisor (100,000; 3,000 with --compare)",
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        type=lambda text: [b.strip() for b in text.split(",") if b.strip()],
        help="comma-separated: sqlite,postgresql",
    )
    parser.add_argument(
        "--ref-users",
        type=int,
        default=None,
        help="users in scim2-server (10,000; --compare: 3,000)",
    )
    parser.add_argument(
        "--django-users", type=int, default=3000, help="users in django-scim2 (--compare)"
    )
    parser.add_argument(
        "--django-workers", type=int, default=2, help="gunicorn sync workers of django-scim2"
    )
    parser.add_argument(
        "--django-synchronous",
        default="FULL",
        type=str.upper,
        choices=["FULL", "NORMAL"],
        help="PRAGMA synchronous of django-scim2's SQLite (WAL mode either way)",
    )
    parser.add_argument("--skip-django", action="store_true", help="--compare without django-scim2")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="--compare: measure every operation on every server this many times; the ratio is "
        "the median of the rounds' ratios",
    )
    parser.add_argument(
        "--duration", type=int, default=None, help="seconds per measurement (10; --compare: 8)"
    )
    parser.add_argument(
        "--warmup", type=int, default=None, help="seconds of warmup, 0: none (3; --compare: 2)"
    )
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--workers", type=int, default=None, help="provisor workers (default: server default)"
    )
    parser.add_argument("--skip-reference", action="store_true", help="skip scim2-server")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL used to create and drop a fresh database",
    )
    parser.add_argument("--keep", action="store_true", help="keep the data folders")
    parser.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="after each wrk run, wait until the provisor log has been quiet this many seconds "
        "(0: do not wait)",
    )
    parser.add_argument(
        "--json",
        "--json-out",
        dest="json_out",
        type=Path,
        default=None,
        help="write the results as JSON",
    )
    args = parser.parse_args(argv)
    small = args.compare
    args.users = args.users or (3000 if small else 100_000)
    args.ref_users = args.ref_users or (3000 if small else 10_000)
    args.duration = args.duration or (8 if small else 10)
    args.warmup = (2 if small else 3) if args.warmup is None else args.warmup
    if args.compare:
        args.backends = ["sqlite"]
        args.skip_reference = False
        args.patch_path = COMPARE_PATCH_PATH
    unknown = set(args.backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    if (
        min(
            args.users,
            args.ref_users,
            args.django_users,
            args.duration,
            args.connections,
            args.rounds,
        )
        < 1
    ):
        parser.error(
            "--users, --ref-users, --django-users, --duration, --connections and --rounds "
            "must be >= 1"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    if args.compare:
        return compare(args, wrk)
    print(
        f"provisor SCIM benchmark: {args.users} users, backends {args.backends}, "
        f"wrk -t1 -c{args.connections} -d{args.duration}s (warmup {args.warmup}s), "
        f"workers {args.workers or 'server default'}, cores {os.cpu_count()}"
    )
    runs = [run_provisor(backend, args, wrk) for backend in args.backends]
    reference = None if args.skip_reference else run_reference(args, wrk)
    print_results([*runs, *([reference] if reference else [])])
    print_ratios(runs, reference)
    print_targets(runs)
    print_problems([*runs, *([reference] if reference else [])])
    if args.json_out:
        write_json(args.json_out, args, [*runs, *([reference] if reference else [])])
    return 1 if any(run.problems for run in runs) else 0


def compare(args: argparse.Namespace, wrk: str) -> int:
    """provisor, scim2-server and django-scim2 one after the other; the comparison table."""
    if not args.skip_django:
        djangoscim.ensure_environment()  # before any measurement: it may take a minute
    print(
        f"provisor SCIM comparison: provisor {args.users}, scim2-server {args.ref_users}, "
        f"django-scim2 {'skipped' if args.skip_django else args.django_users} users; "
        f"wrk -t1 -c{args.connections} -d{args.duration}s (warmup {args.warmup}s); "
        f"cores {os.cpu_count()}; load average {os.getloadavg()}",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        contenders = [
            stack.enter_context(provisor_contender("sqlite", args, wrk)),
            stack.enter_context(reference_contender(args, wrk)),
        ]
        if not args.skip_django:
            contenders.append(stack.enter_context(django_contender(args, wrk)))
        # Interleaved: each operation on every server in turn, seconds apart, so a change of
        # the machine's load touches both sides of a ratio alike.
        print("\n=== measuring, each operation on every server in turn ===", flush=True)
        results: dict[tuple[str, str], list[WrkResult]] = {}
        for round_number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f"--- round {round_number} of {args.rounds}", flush=True)
            for operation, label in OPERATIONS.items():
                for contender in contenders:
                    if contender.setup is not None:
                        run = contender.run
                        result = measure_one(contender.setup, run, operation, label, run.name)
                        results.setdefault((run.name, operation), []).append(result)
                        run.round_rates.setdefault(operation, []).append(round(result.rps, 1))
                        run.round_failures[operation] = (
                            run.round_failures.get(operation, 0) + result.non_2xx
                        )
        for contender in contenders:
            note_load_average(contender.run, "measured")
    runs = [contender.run for contender in contenders]
    for run in runs:  # each operation's figures: its median round's
        for operation in run.measurements:
            ordered = sorted(results[(run.name, operation)], key=lambda r: r.rps)
            run.measurements[operation] = ordered[(len(ordered) - 1) // 2]
    provisor, peers = runs[0], runs[1:]
    print_results(runs)
    print_comparison(args, provisor, peers)
    print_problems(runs)
    if args.json_out:
        write_json(args.json_out, args, runs)
    return 1 if any(run.problems for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
