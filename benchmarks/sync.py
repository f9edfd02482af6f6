"""Benchmark of provisioning jobs: Local Identity Directory → another provisor (SCIM) + slapd.

The scenario: provisor instance A holds ``--users`` users and ``--groups`` groups in its Local
Identity Directory (each user a member of ``--memberships`` groups). A has one source system
(Local Identity Directory) and two targets:

* "SCIM System" → provisor instance B, a real ``provisor serve`` process on loopback with its
  own data folder (and database), written through its ``/scim`` API with B's initial admin;
* "LDAP Server" → a real slapd started here (the configuration of the tests,
  ``tests/connectors/ldap_server.py``: back-mdb, ``dbnosync``).

Both targets provision groups too (their default transformations ignore groups). Every job
runs in its own child process (``JobService.start`` + ``claim`` + ``run``, as
``provisor jobs start --wait`` does), so its wall time and peak RSS are its own. Measured:

a) the initial full sync (READ job, first run): users/s (the groups' time included);
b) a READ job right after, nothing changed (full read, every entity unchanged): users/s
   (target >= 5,000 users/s);
c) ``ips.delta.read=enabled`` on the source, then 100 users changed in A's directory, then a
   READ job (delta read by ``meta.lastModified``): wall time (target <= 5 s); also the delta
   READ right before it with nothing changed;
d) the peak RSS of each job's process (compare the runs at 10k and 100k users: it should stay
   flat).

``--compare`` then measures each target's own ingest rate in the same run: what the job wrote
into B and slapd is written again by a plain client into a fresh B and a fresh slapd, one at
a time, with the job's request sizes and concurrency (``benchmarks/sync_alone.py``), and the
initial sync's rate is printed as a share of the slowest target's (target >= 80 %).
``--users 10000,100000`` runs the scenario for each number and compares the initial rate at
the largest with the smallest (target >= 90 %) and the peak RSS. ``--json FILE`` writes
every figure to FILE.

Each job's statistics (read/created/updated/unchanged/failed per system and entity type) are
printed and checked; failures are printed with their reasons from the entity logs.

Run it from the project root (PostgreSQL: the URL's server must let its user create
databases; fresh ones are created for A, B and B alone, and dropped at the end)::

    .venv/bin/python benchmarks/sync.py --users 2000 --scim-bulk --compare
    .venv/bin/python benchmarks/sync.py --users 10000,100000 --scim-bulk --compare --json f.json
    .venv/bin/python benchmarks/sync.py --users 10000 --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python benchmarks/sync.py --users 2000 --skip-ldap --profile /tmp/sync-prof
    .venv/bin/python benchmarks/sync.py --users 10000 --cache /tmp/sync-cache  # load A once

``--profile DIR`` runs each job under ``py-spy record`` (``pip install py-spy``) and prints the
functions where the job's threads spent most time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from provisor.context import Context

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import (  # noqa: E402
    BULK_REQUEST,
    BULK_SIZE,
    SCIM_JSON,
    LoadResult,
    ThreadClients,
    basic_auth,
    bulk_loader,
    create_database,
    drop_database,
    executable,
    free_port,
    provisor_env,
    run_loader,
    server_process,
    tail,
    user_name_of,
    wait_until_up,
)
from benchmarks.sync_alone import (  # noqa: E402
    Ingest,
    fresh_slapd,
    ldap_entries,
    ldap_ingest,
    scim_ingest,
    scim_listing,
)
from provisor.types import EntityType  # noqa: E402

CTX = Context.system("benchmark")  # the service calls the benchmark makes directly

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LDAP_PEOPLE = "ou=people,dc=example,dc=org"
LDAP_GROUPS = "ou=groups,dc=example,dc=org"
SOURCE = "LID"
SCIM_TARGET = "Provisor B"
LDAP_TARGET = "OpenLDAP"
GROUPS_PER_BULK = 20
CHANGED_USERS = 100
GENERIC_FRAMES = ("asyncio/", "threading.py", "concurrent/", "<frozen", "sync.py", "contextlib")

TARGET_SHARE = 0.80  # of the slowest target's own ingest rate
TARGET_FLAT = 0.90  # the rate at the largest N over the rate at the smallest
TARGET_UNCHANGED = 5000.0  # users/s
TARGET_DELTA = 5.0  # seconds


# -- Results -------------------------------------------------------------------------------------


@dataclass
class JobRun:
    label: str
    status: str = ""
    read_mode: str = ""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    users_read: int = 0
    statistics: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    outcome: str | None = None
    failures: list[str] = field(default_factory=list)
    hotspots: list[tuple[str, float]] = field(default_factory=list)

    @property
    def users_per_s(self) -> float:
        return self.users_read / self.seconds if self.seconds else 0.0

    def totals(self, role: str) -> Counter[str]:
        total: Counter[str] = Counter()
        for row in self.statistics:
            if row.get("role") == role:
                for key in ("read", "created", "updated", "deleted", "unchanged", "skipped"):
                    total[key] += int(row.get(key, 0))
                total["failed"] += int(row.get("failed", 0))
        return total


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    data_a: Path
    url_a: str | None
    url_b: str | None
    url_alone: str | None = None
    load_seconds: float = 0.0
    users_loaded: int = 0
    groups_loaded: int = 0
    jobs: list[JobRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    alone: list[Ingest] = field(default_factory=list)  # --compare: each target's own ingest

    @property
    def slowest(self) -> Ingest | None:
        return min(self.alone, key=lambda i: i.rate) if self.alone else None

    def job(self, prefix: str) -> JobRun | None:
        return next((r for r in self.jobs if r.label.startswith(prefix)), None)

    def share(self) -> float | None:
        """The initial sync's rate as a share of the slowest target's own ingest rate."""
        initial, slowest = self.job("(a)"), self.slowest
        if initial is None or slowest is None or not slowest.rate:
            return None
        return initial.users_per_s / slowest.rate


# -- The job, in a child process -----------------------------------------------------------------


def job_child(args: argparse.Namespace) -> None:
    """``--run-job``: run one READ job of SOURCE to its end here; print its figures as JSON."""
    from provisor.context import Context
    from provisor.jobs.model import JobType
    from provisor.runtime import Services
    from provisor.settings import Settings

    settings = Settings(data_dir=Path(args.data_dir), database_url=args.child_database_url)
    services = Services.open(settings)
    try:
        started = time.perf_counter()
        admin = Context.administrator("benchmark")
        job = services.jobs.start(admin, args.run_job, type=JobType.READ)
        claimed = services.jobs.claim(Context.system("worker"), "benchmark", job.id)
        if claimed is None:
            raise SystemExit("error: the job could not be claimed (another one runs?)")

        async def run_and_watch() -> None:
            task = asyncio.create_task(services.jobs.run(Context.system("worker"), claimed))
            while not task.done():
                await asyncio.wait({task}, timeout=15)
                if not task.done():
                    current = await asyncio.to_thread(services.jobs.get, admin, job.id)
                    figures = progress_line([s.to_dict() for s in current.statistics])
                    print(f"    ... {figures}", file=sys.stderr)
            await task

        asyncio.run(run_and_watch())
        seconds = time.perf_counter() - started
        final = services.jobs.get(Context.administrator("benchmark"), job.id)
        failures: list[str] = []
        if any(row.counts.failed for row in final.statistics):
            logs, _ = services.jobs.entity_logs(
                Context.administrator("benchmark"), job.id, ["failed"], limit=20
            )
            failures = [
                f"{e.entity_type} {e.entity_id} in {e.system_name}: {e.reason}" for e in logs
            ]
    finally:
        services.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result = {
        "job": final.to_dict(),
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_kb": usage.ru_maxrss,
        "failures": failures,
    }
    sys.stdout.write("JOB_RESULT " + json.dumps(result) + "\n")


def progress_line(statistics: list[dict[str, Any]]) -> str:
    parts = []
    for row in statistics:
        counts = {k: v for k, v in row.items() if isinstance(v, int) and v}
        parts.append(f"{row['entityType']}@{row['systemName']}: {counts}")
    return "; ".join(parts) or "(no statistics yet)"


def run_job(bench: Bench, label: str) -> JobRun:
    """Run a READ job of the source in a child process; its figures."""
    args = bench.args
    cmd = [sys.executable, str(Path(__file__).resolve()), "--run-job", SOURCE]
    cmd += ["--data-dir", str(bench.data_a)]
    if bench.url_a:
        cmd += ["--child-database-url", bench.url_a]
    raw: Path | None = None
    if args.profile:
        folder = Path(args.profile)
        folder.mkdir(parents=True, exist_ok=True)
        slug = label.split(")")[0].strip("( ")
        raw = folder / f"{args.users}-{slug}.txt"
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        cmd = [spy, "record", "--nonblocking", "-r", "50", "-f", "raw", "-o", str(raw), "--", *cmd]
    print(f"\n--- job {label} ---", flush=True)
    # The child's progress and errors go to this process's stderr as they come.
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("JOB_RESULT ")]
    run = JobRun(label)
    if not lines:
        run.error = f"the job process exited with {done.returncode} (its errors are above)"
        print(f"  ERROR {run.error}")
        bench.problems.append(f"{label}: {run.error}")
        return run
    data = json.loads(lines[-1][len("JOB_RESULT ") :])
    job = data["job"]
    run.status = job["status"]
    run.read_mode = job.get("readMode") or ""
    run.seconds = data["seconds"]
    run.cpu_seconds = data["cpu_seconds"]
    run.peak_rss_mb = data["peak_rss_kb"] / 1024
    run.statistics = job["statistics"]
    run.error = job.get("errorMessage")
    run.outcome = job.get("executionOutcome")
    run.failures = data["failures"]
    run.users_read = sum(
        int(r.get("read", 0))
        for r in run.statistics
        if r["role"] == "source" and r["entityType"] == "user"
    )
    print_job(run)
    if raw is not None and raw.exists():
        own, inclusive = hotspots(raw)
        run.hotspots = inclusive
        print("  py-spy: functions by inclusive share of the job's samples (all threads)")
        for name, share in inclusive[:15]:
            print(f"    {100 * share:5.1f}%  {name}")
        print("  py-spy: innermost frames by own share")
        for name, share in own[:10]:
            print(f"    {100 * share:5.1f}%  {name}")
        print(f"  (collapsed stacks in {raw})")
    bench.jobs.append(run)
    if run.status != "Success":
        bench.problems.append(f"{label}: status {run.status}: {run.error}")
    for line in run.failures:
        bench.problems.append(f"{label}: failed {line}")
    return run


def hotspots(raw: Path) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's raw output (active threads only): the share of samples whose innermost
    frame is each function (own time), and the share of samples in which each function is on
    the stack (inclusive time; event loop, thread pool and import frames left out)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            if not any(g in frame for g in GENERIC_FRAMES):
                inclusive[frame] += n
    if not total:
        return [], []
    return (
        [(name, n / total) for name, n in own.most_common(30)],
        [(name, n / total) for name, n in inclusive.most_common(40)],
    )


def print_job(run: JobRun) -> None:
    print(
        f"  status {run.status}, {run.read_mode}, {run.seconds:.2f} s wall, "
        f"{run.cpu_seconds:.1f} s CPU, peak RSS {run.peak_rss_mb:.0f} MB, "
        f"{run.users_read:,} users read ({run.users_per_s:,.0f} users/s)"
    )
    print(
        f"  {'entity':6} {'system':14} {'role':6} {'read':>8} {'created':>8} {'updated':>8} "
        f"{'unchanged':>9} {'deleted':>8} {'skipped':>8} {'failed':>7}"
    )
    for row in run.statistics:
        print(
            f"  {row['entityType']:6} {row['systemName']:14} {row['role']:6} {row['read']:8,} "
            f"{row['created']:8,} {row['updated']:8,} {row.get('unchanged', 0):9,} "
            f"{row['deleted']:8,} {row['skipped']:8,} {row['failed']:7,}"
        )
    if run.outcome:
        print(f"  outcome: {run.outcome}")
    if run.error:
        print(f"  ERROR: {run.error}")
    for line in run.failures:
        print(f"  FAILED {line}")


# -- Instance A: load its directory --------------------------------------------------------------


def group_members(g: int, users: int, groups: int, memberships: int) -> range:
    """The users of group ``g``: with ``classes = groups / memberships``, group g holds the
    users i with i % classes == g % classes, so each user is in ``memberships`` groups."""
    classes = max(1, groups // max(1, memberships))
    return range(g % classes, users, classes)


def load_directory(bench: Bench, base_url: str, auth: str) -> list[str]:
    """Users (bulk, 4 threads) then groups with their members into A; the users' ids."""
    args = bench.args
    headers = {"Authorization": auth, "Accept": SCIM_JSON}
    clients = ThreadClients(base_url, headers)
    try:
        users = run_loader("users", args.users, BULK_SIZE, bulk_loader(clients))
    finally:
        clients.close()
    if users.failures:
        raise SystemExit(f"error: {users.failures} users not loaded, e.g. {users.errors[:3]}")
    by_name = dict(zip(users.names, users.ids, strict=True))
    ids = [by_name[user_name_of(i)] for i in range(args.users)]
    print(f"  {users.users:,} users in {users.seconds:.1f} s ({users.rate:,.0f} users/s)")
    started = time.monotonic()
    clients = ThreadClients(base_url, headers)

    def load_groups(part: range) -> LoadResult:
        operations = [
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": f"g{g}",
                "data": {
                    "schemas": [CORE_GROUP],
                    "displayName": f"group{g:05d}",
                    "members": [
                        {"value": ids[i], "type": "User"}
                        for i in group_members(g, args.users, args.groups, args.memberships)
                    ],
                },
            }
            for g in part
        ]
        body = orjson.dumps({"schemas": [BULK_REQUEST], "Operations": operations})
        response = clients.get().post(
            "/scim/Bulk", content=body, headers={"Content-Type": SCIM_JSON}
        )
        result = LoadResult(0, 0.0, 0, [], [], [])
        if response.status_code != 200:
            result.failures = len(part)
            result.errors.append(f"Bulk HTTP {response.status_code}: {response.text[:300]}")
            return result
        for op in orjson.loads(response.content).get("Operations", []):
            if op.get("status") == "201":
                result.users += 1
            else:
                result.failures += 1
                result.errors.append(json.dumps(op)[:300])
        return result

    try:
        groups = run_loader("groups", args.groups, GROUPS_PER_BULK, load_groups)
    finally:
        clients.close()
    if groups.failures:
        raise SystemExit(f"error: {groups.failures} groups not loaded, e.g. {groups.errors[:3]}")
    print(f"  {groups.users:,} groups in {time.monotonic() - started:.1f} s")
    bench.users_loaded, bench.groups_loaded = users.users, groups.users
    return ids


# -- Systems -------------------------------------------------------------------------------------


def open_services(bench: Bench) -> Any:
    from provisor.runtime import Services
    from provisor.settings import Settings

    return Services.open(Settings(data_dir=bench.data_a, database_url=bench.url_a))


def with_groups(services: Any, name: str, description: str) -> None:
    """Switch a target's write transformation to provision groups too."""
    write = json.loads(services.systems.transformation(Context.system("test"), name, "write").text)
    write["group"]["ignore"] = False
    services.systems.save_transformation(
        Context.administrator("benchmark"),
        name,
        "write",
        write,
        description=description,
    )


def create_systems(
    bench: Bench, scim: tuple[str, str, str] | None, ldap_server: Any | None
) -> None:
    from provisor.systems.model import NewSystem

    args = bench.args
    services = open_services(bench)
    try:
        source = services.systems.create(
            Context.administrator("benchmark"),
            NewSystem.model_validate(
                {"name": SOURCE, "type": "local-identity-directory", "role": "source"}
            ),
        )
        if scim is not None:
            url, client_id, secret = scim
            properties = {
                "ips.write.concurrency": str(args.concurrency),
                "URL": f"{url}/scim",
                "Authentication": "BasicAuthentication",
                "User": client_id,
                "Password": secret,
                "ips.failed.request.retry.attempts.interval": "1",
            }
            if args.scim_bulk:
                properties["scim.support.bulk.operation"] = "true"
                properties["scim.bulk.operations.max.count"] = str(args.bulk_size)
            services.systems.create(
                Context.administrator("benchmark"),
                NewSystem.model_validate(
                    {
                        "name": SCIM_TARGET,
                        "type": "SCIM System",
                        "role": "target",
                        "sourceSystemIds": [source.id],
                        "properties": properties,
                    }
                ),
            )
            with_groups(services, SCIM_TARGET, "users and groups")
        if ldap_server is not None:
            services.systems.create(
                Context.administrator("benchmark"),
                NewSystem.model_validate(
                    {
                        "name": LDAP_TARGET,
                        "type": "LDAP Server",
                        "role": "target",
                        "sourceSystemIds": [source.id],
                        "properties": {
                            "ldap.url": ldap_server.url,
                            "ldap.user": ldap_server.bind_dn,
                            "ldap.password": ldap_server.password,
                            "ldap.user.path": LDAP_PEOPLE,
                            "ldap.group.path": LDAP_GROUPS,
                            "ips.failed.request.retry.attempts.interval": "1",
                            "ips.write.concurrency": str(args.concurrency),
                        },
                    }
                ),
            )
            with_groups(services, LDAP_TARGET, "users and groups")
    finally:
        services.close()


def enable_delta(bench: Bench) -> None:
    from provisor.systems.model import SystemChanges

    services = open_services(bench)
    try:
        changes = SystemChanges.model_validate({"properties": {"ips.delta.read": "enabled"}})
        services.systems.update(
            Context.administrator("benchmark"),
            SOURCE,
            changes,
        )
    finally:
        services.close()


def change_users(bench: Bench, ids: list[str], count: int) -> float:
    """Replace the displayName and title of ``count`` users spread over A's directory."""
    services = open_services(bench)
    step = max(1, len(ids) // count)
    chosen = ids[::step][:count]
    started = time.perf_counter()
    try:
        for n, user_id in enumerate(chosen):
            body = {
                "schemas": [PATCH_OP],
                "Operations": [
                    {"op": "replace", "path": "displayName", "value": f"Changed {n}"},
                    {"op": "replace", "path": "title", "value": "Changed by the benchmark"},
                ],
            }
            services.directory.patch(CTX, EntityType.USER, user_id, body, "/scim")
    finally:
        services.close()
    return time.perf_counter() - started


# -- Checks on the targets -----------------------------------------------------------------------


def count_scim(base_url: str, auth: str) -> dict[str, int]:
    counts = {}
    with httpx.Client(base_url=base_url, headers={"Authorization": auth}, timeout=60) as client:
        for kind in ("Users", "Groups"):
            response = client.get(f"/scim/{kind}", params={"count": 0})
            response.raise_for_status()
            counts[kind] = int(response.json()["totalResults"])
    return counts


def count_ldap(server: Any) -> dict[str, int]:
    import ldap  # type: ignore[import-untyped]

    conn = server.connect()
    try:
        counts = {}
        for label, base in (("users", LDAP_PEOPLE), ("groups", LDAP_GROUPS)):
            found = conn.search_s(base, ldap.SCOPE_ONELEVEL, "(objectClass=*)", ["1.1"])
            counts[label] = len(found)
        return counts
    finally:
        conn.unbind_s()


# -- Orchestration -------------------------------------------------------------------------------


def pg_admin_url(url: str) -> str:
    """The URL for psycopg (no ``+driver``), on the ``postgres`` database."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    return urlunsplit((scheme, parts.netloc, "/postgres", parts.query, ""))


def database_url(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@contextlib.contextmanager
def provisor_server(
    data_dir: Path, url: str | None, workers: int | None
) -> Iterator[tuple[str, str]]:
    """A ``provisor serve`` on a free port: its base URL and Basic auth of the initial admin."""
    port = free_port()
    cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(data_dir)]
    if workers:
        cmd += ["--workers", str(workers)]
    log = data_dir / "server.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    with server_process(cmd, provisor_env(url), log) as proc:
        wait_until_up(f"{base_url}/health", proc, log, timeout=120)
        creds = json.loads((data_dir / "initial-admin.json").read_text())
        yield base_url, f"{creds['client_id']}:{creds['client_secret']}"
    if "Traceback" in log.read_text(errors="replace"):
        print(f"  ! {log} has tracebacks:\n{tail(log, 20)}")


def loaded_directory(bench: Bench) -> list[str]:
    """Instance A's directory loaded with the users and groups (the users' ids): copied from
    ``--cache`` when a run with the same figures left it there (SQLite), else loaded over
    HTTP (and left in the cache)."""
    args = bench.args
    cached = None
    if args.cache and not bench.url_a:
        cached = Path(args.cache) / f"a-{args.users}-{args.groups}-{args.memberships}"
        if (cached / "ids.json").exists():
            shutil.copytree(cached / "data", bench.data_a)
            print(f"\ninstance A's directory copied from {cached}", flush=True)
            ids: list[str] = json.loads((cached / "ids.json").read_text())
            return ids
    print("\nloading instance A's Local Identity Directory ...", flush=True)
    started = time.monotonic()
    with provisor_server(bench.data_a, bench.url_a, args.workers) as (url_a, creds_a):
        ids = load_directory(bench, url_a, auth_of(creds_a))
    bench.load_seconds = time.monotonic() - started
    if cached is not None:
        shutil.rmtree(cached, ignore_errors=True)
        shutil.copytree(bench.data_a, cached / "data", ignore=shutil.ignore_patterns("*.log"))
        (cached / "ids.json").write_text(json.dumps(ids))
    return ids


def auth_of(credentials: str) -> str:
    client_id, _, secret = credentials.partition(":")
    return basic_auth(client_id, secret)


def run_benchmark(bench: Bench) -> None:
    args = bench.args
    print(
        f"=== provisor sync benchmark: {args.users:,} users, {args.groups:,} groups x "
        f"{args.memberships} memberships/user, backend "
        f"{'PostgreSQL' if bench.url_a else 'SQLite'}, work dir {bench.work} ===",
        flush=True,
    )
    ids = loaded_directory(bench)

    with contextlib.ExitStack() as stack:
        scim: tuple[str, str, str] | None = None
        auth_b = ""
        if not args.skip_scim:
            url_b, creds_b = stack.enter_context(
                provisor_server(bench.work / "b", bench.url_b, args.workers)
            )
            client_id, _, secret = creds_b.partition(":")
            scim, auth_b = (url_b, client_id, secret), auth_of(creds_b)
            print(f"instance B serves {url_b} (data {bench.work / 'b'})")
        server = None
        if not args.skip_ldap:
            from tests.connectors.ldap_server import running_slapd

            server = stack.enter_context(running_slapd(bench.work / "slapd"))
            server.add(
                (dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]})
                for dn in (LDAP_PEOPLE, LDAP_GROUPS)
            )
            print(f"slapd serves {server.url} (data {bench.work / 'slapd'})")
        create_systems(bench, scim, server)

        def check(label: str) -> None:
            if scim is not None:
                found = count_scim(scim[0], auth_b)
                print(f"  B holds {found}")
                if found != {"Users": args.users, "Groups": args.groups}:
                    bench.problems.append(f"{label}: B holds {found}")
            if server is not None:
                found = count_ldap(server)
                print(f"  slapd holds {found}")
                if found != {"users": args.users, "groups": args.groups}:
                    bench.problems.append(f"{label}: slapd holds {found}")

        initial = run_job(bench, "(a) initial full sync")
        check("(a)")
        expect(bench, initial, created=True)
        again = run_job(bench, "(b) READ again, nothing changed")
        expect(bench, again, unchanged=True)
        enable_delta(bench)
        quiet = run_job(bench, "(b2) delta READ, nothing changed")
        expect(bench, quiet, users=0)
        seconds = change_users(bench, ids, CHANGED_USERS)
        print(f"\n{CHANGED_USERS} users changed in A's directory in {seconds:.2f} s")
        delta = run_job(bench, f"(c) delta READ after {CHANGED_USERS} changes")
        expect(bench, delta, users=CHANGED_USERS, updated=CHANGED_USERS)
        check("(c)")
        written = None
        if args.compare:
            written = (
                None if scim is None else dump_scim(scim[0], auth_b),
                None if server is None else dump_ldap(server),
            )
    if written is not None:  # the job's targets are stopped: each target alone now
        measure_alone(bench, *written)


def dump_scim(base_url: str, auth: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return scim_listing(base_url, auth, "Users"), scim_listing(base_url, auth, "Groups")


def dump_ldap(server: Any) -> tuple[list[Any], list[Any]]:
    return ldap_entries(server, LDAP_PEOPLE), ldap_entries(server, LDAP_GROUPS)


def measure_alone(
    bench: Bench,
    scim: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None,
    ldap: tuple[list[Any], list[Any]] | None,
) -> None:
    """What the job wrote, written again into a fresh instance of each target by a plain
    client, one target at a time, with the job's request sizes and concurrency."""
    from provisor.connectors.directory import GROUP_PAGE
    from provisor.connectors.ldap.connector import POOL_SIZE
    from provisor.jobs.writing import bulk_chunk

    args = bench.args
    if scim is not None:
        print("\n--- SCIM target alone: the same users and groups into a fresh provisor B ---")
        with provisor_server(bench.work / "b-alone", bench.url_alone, args.workers) as (url, c):
            users, groups = scim
            ingest = scim_ingest(
                url,
                auth_of(c),
                users,
                groups,
                # the job's requests: its pages (1,000 users, 20 groups) in Bulk requests
                bulk_size=bulk_chunk(1000, args.bulk_size, args.concurrency),
                group_page=bulk_chunk(GROUP_PAGE, args.bulk_size, args.concurrency),
                threads=args.concurrency,
            )
        print_ingest(ingest)
        bench.alone.append(ingest)
    if ldap is not None:
        print("\n--- LDAP target alone: the same entries into a fresh slapd ---")
        with fresh_slapd(bench.work / "slapd-alone", (LDAP_PEOPLE, LDAP_GROUPS)) as server:
            ingest = ldap_ingest(server, *ldap, threads=min(args.concurrency, POOL_SIZE))
        print_ingest(ingest)
        bench.alone.append(ingest)


def print_ingest(ingest: Ingest) -> None:
    print(
        f"  {ingest.users:,} users in {ingest.user_seconds:.2f} s "
        f"({ingest.users_rate:,.0f} users/s), {ingest.groups:,} groups in "
        f"{ingest.group_seconds:.2f} s: {ingest.rate:,.0f} users/s with the groups"
    )


def expect(
    bench: Bench,
    run: JobRun,
    *,
    created: bool = False,
    unchanged: bool = False,
    users: int | None = None,
    updated: int | None = None,
) -> None:
    """Check a job's statistics; what does not match goes to the problems."""
    args = bench.args
    targets = [
        t for t, skip in ((SCIM_TARGET, args.skip_scim), (LDAP_TARGET, args.skip_ldap)) if not skip
    ]
    wanted = {"user": args.users, "group": args.groups}
    for row in run.statistics:
        entity, name = row["entityType"], row["systemName"]
        if row["failed"]:
            bench.problems.append(f"{run.label}: {row['failed']} {entity}s failed in {name}")
        if row["role"] == "source":
            expected = wanted[entity] if users is None else (users if entity == "user" else 0)
            if row["read"] != expected:
                bench.problems.append(f"{run.label}: {row['read']} {entity}s read, not {expected}")
            continue
        if name not in targets:
            continue
        if created and row["created"] != wanted[entity]:
            bench.problems.append(
                f"{run.label}: {row['created']} {entity}s created in {name}, not {wanted[entity]}"
            )
        if unchanged and (row["created"] or row["updated"] or row["deleted"]):
            bench.problems.append(f"{run.label}: {entity}s written in {name}: {row}")
        if updated is not None and entity == "user" and row["updated"] != updated:
            bench.problems.append(
                f"{run.label}: {row['updated']} users updated in {name}, not {updated}"
            )


def status(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def print_results(bench: Bench) -> None:
    args = bench.args
    print("\n" + "=" * 100)
    print(
        f"RESULTS: {args.users:,} users, {args.groups:,} groups ({args.memberships} per user), "
        f"{'PostgreSQL' if bench.url_a else 'SQLite'}, targets: "
        + ", ".join(
            t for t, skip in (("SCIM→B", args.skip_scim), ("LDAP", args.skip_ldap)) if not skip
        )
        + f", {args.concurrency} writes in flight a target"
    )
    print("=" * 100)
    if bench.load_seconds:
        print(f"load of A's directory: {bench.load_seconds:.1f} s (users and groups over HTTP)")
    print(
        f"{'job':40} {'status':9} {'mode':10} {'wall s':>8} {'users/s':>9} {'CPU s':>7} "
        f"{'peak RSS':>9}  target"
    )
    targets = {
        "(b)": lambda r: f">= {TARGET_UNCHANGED:,.0f} users/s: {status(r.users_per_s >= 5000)}",
        "(c)": lambda r: f"<= {TARGET_DELTA:.0f} s: {status(r.seconds <= TARGET_DELTA)}",
    }
    for run in bench.jobs:
        target = targets.get(run.label[:3], lambda r: "")(run)
        print(
            f"{run.label:40} {run.status[:9]:9} {run.read_mode[:10]:10} {run.seconds:8.2f} "
            f"{run.users_per_s:9,.0f} {run.cpu_seconds:7.1f} {run.peak_rss_mb:6.0f} MB  {target}"
        )
    for ingest in bench.alone:
        print(
            f"{ingest.target + ' alone':40} {'':9} {'':10} {ingest.seconds:8.2f} "
            f"{ingest.rate:9,.0f}   (users only: {ingest.users_rate:,.0f} users/s)"
        )
    share = bench.share()
    if share is not None and bench.slowest is not None:
        print(
            f"initial sync / slowest target alone ({bench.slowest.target}): "
            f"{100 * share:.0f} % (target >= {100 * TARGET_SHARE:.0f} %: "
            f"{status(share >= TARGET_SHARE)})"
        )
    if bench.problems:
        print("\nPROBLEMS:")
        for problem in bench.problems[:50]:
            print(f"  - {problem}")
    else:
        print("\nno problems: every job succeeded with the expected statistics, 0 failures")


def summary(bench: Bench) -> dict[str, Any]:
    """A run's figures, as --json writes them."""
    share = bench.share()
    return {
        "users": bench.args.users,
        "groups": bench.args.groups,
        "backend": "postgresql" if bench.url_a else "sqlite",
        "concurrency": bench.args.concurrency,
        "load_seconds": round(bench.load_seconds, 1),
        "jobs": [
            {
                "label": r.label,
                "status": r.status,
                "mode": r.read_mode,
                "seconds": round(r.seconds, 2),
                "users_per_s": round(r.users_per_s),
                "cpu_seconds": round(r.cpu_seconds, 1),
                "peak_rss_mb": round(r.peak_rss_mb),
            }
            for r in bench.jobs
        ],
        "alone": [i.to_dict() for i in bench.alone],
        "initial_share_of_slowest_target": None if share is None else round(share, 3),
        "problems": bench.problems,
    }


def print_comparison(benches: list[Bench]) -> dict[str, Any]:
    """Across the ``--users`` runs: the initial and unchanged rates and the peak RSS of the
    largest run against the smallest."""
    print("\n" + "=" * 100)
    print("SUMMARY (load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + ")")
    print("=" * 100)
    print(
        f"{'users':>9} {'(a) users/s':>12} {'% slowest':>10} {'(b) users/s':>12} "
        f"{'(c) s':>7} {'RSS (a) MB':>11} {'RSS (b) MB':>11}"
    )
    for bench in benches:
        a, b, c = bench.job("(a)"), bench.job("(b)"), bench.job("(c)")
        share = bench.share()
        print(
            f"{bench.args.users:9,} {a.users_per_s if a else 0:12,.0f} "
            f"{'-' if share is None else f'{100 * share:.0f} %':>10} "
            f"{b.users_per_s if b else 0:12,.0f} {c.seconds if c else 0:7.2f} "
            f"{a.peak_rss_mb if a else 0:11.0f} {b.peak_rss_mb if b else 0:11.0f}"
        )
    verdicts: dict[str, Any] = {}
    for bench in benches:
        share = bench.share()
        if share is not None:
            verdicts[f"share_{bench.args.users}"] = round(share, 3)
            print(
                f"- {bench.args.users:,} users: initial sync at {100 * share:.0f} % of the "
                f"slowest target alone (>= {100 * TARGET_SHARE:.0f} %: "
                f"{status(share >= TARGET_SHARE)})"
            )
        b = bench.job("(b)")
        if b is not None:
            print(
                f"- {bench.args.users:,} users: READ with nothing changed {b.users_per_s:,.0f} "
                f"users/s (>= {TARGET_UNCHANGED:,.0f}: {status(b.users_per_s >= 5000)})"
            )
    if len(benches) > 1:
        small, large = benches[0], benches[-1]
        a_small, a_large = small.job("(a)"), large.job("(a)")
        if a_small and a_large and a_small.users_per_s:
            flat = a_large.users_per_s / a_small.users_per_s
            verdicts["flat"] = round(flat, 3)
            print(
                f"- initial rate at {large.args.users:,} / at {small.args.users:,} users: "
                f"{100 * flat:.0f} % (>= {100 * TARGET_FLAT:.0f} %: {status(flat >= TARGET_FLAT)})"
            )
        for label in ("(a)", "(b)"):
            r_small, r_large = small.job(label), large.job(label)
            if r_small and r_large:
                print(
                    f"- peak RSS of {label} at {small.args.users:,} / {large.args.users:,} "
                    f"users: {r_small.peak_rss_mb:.0f} / {r_large.peak_rss_mb:.0f} MB"
                )
    return verdicts


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--users",
        type=lambda v: [int(x) for x in v.split(",")],
        default=[100_000],
        help="users in the directory; a comma-separated list runs the scenario for each "
        "(e.g. 10000,100000: compare the rates and the peak memory)",
    )
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--memberships", type=int, default=10, help="groups per user")
    parser.add_argument("--skip-ldap", action="store_true")
    parser.add_argument("--skip-scim", action="store_true")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL server (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/postgres): "
        "fresh databases are created there for A and B; default SQLite in the data folders",
    )
    parser.add_argument("--workers", type=int, help="workers of the provisor servers")
    parser.add_argument(
        "--scim-bulk", action="store_true", help="scim.support.bulk.operation=true on B's target"
    )
    parser.add_argument(
        "--bulk-size", type=int, default=100, help="scim.bulk.operations.max.count (with Bulk)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="ips.write.concurrency of both targets (and the plain client's threads)",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also measure each target's own ingest of what the job wrote (fresh instances, "
        "a plain client, one at a time) and print the job's rate as a share of the slowest",
    )
    parser.add_argument("--profile", metavar="DIR", help="run each job under py-spy record")
    parser.add_argument(
        "--cache",
        metavar="DIR",
        help="keep instance A's loaded directory in DIR and reuse it in later runs (SQLite)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and databases")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    parser.add_argument("--run-job", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--child-database-url", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if args.run_job:
        job_child(args)
        return
    benches: list[Bench] = []
    for users in args.users:
        run_args = argparse.Namespace(**{**vars(args), "users": users})
        benches.append(run_one(run_args))
    verdicts = print_comparison(benches)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "load_average": os.getloadavg(),
                    "runs": [summary(b) for b in benches],
                    **verdicts,
                },
                indent=2,
            )
        )
        print(f"results in {args.json}")
    if any(b.problems for b in benches):
        sys.exit(1)


def run_one(args: argparse.Namespace) -> Bench:
    """The scenario for one number of users, on fresh instances and databases."""
    work = Path(tempfile.mkdtemp(prefix="provisor-sync-bench-"))
    databases: list[str] = []
    admin = pg_admin_url(args.database_url) if args.database_url else ""
    try:
        urls: list[str | None] = [None, None, None]
        if args.database_url:
            databases = [create_database(admin) for _ in range(3)]
            urls = [database_url(args.database_url, n) for n in databases]
        bench = Bench(args, work, work / "a", urls[0], urls[1], urls[2])
        try:
            run_benchmark(bench)
        finally:
            print_results(bench)
    finally:
        for name in databases if not args.keep else []:
            drop_database(admin, name)
        if args.keep:
            print(f"kept {work} {' '.join(databases)}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return bench


if __name__ == "__main__":
    main()
