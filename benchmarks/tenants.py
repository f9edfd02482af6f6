"""Benchmark of tenants: one tenant's big full job beside another tenant's real-time calls.

One provisor A (``provisor serve``, SQLite or ``--database-url`` PostgreSQL, its inbound rate
limit lifted) holds two tenants, created by the installation's operator before A starts:

* ``big``: a Local Identity Directory source with ``--users`` users (default 100,000, loaded
  through ``/t/big/scim/Bulk``) and a "SCIM System" target, provisor B (another
  ``provisor serve``); its full READ job is started through ``/t/big/api/v1``;
* ``small``: a Local Identity Directory source with two targets, provisor C over SCIM and a
  slapd, as in ``benchmarks/realtime.py``; ``--concurrency`` clients push changes to
  ``/t/small/ipsproxy/service/api/v1/systems/{source}/entities/user``.

Measured, for ``small`` (changes/s, p50/p99/max of a push, each answered once both targets
were written):

1. baseline, no job running: ``--realtime-users`` users created (POST) then changed (PUT);
2. while big's job runs: as many other users created then changed, then (unless
   ``--phases-only``) more rounds of changes until the job has ended;

and for ``big``: the job's users/s under that load. Checked: every push answered
``Finished Successfully``; the job ends ``Success`` with every user read and created in B and
no failure; B holds the big users, C and slapd the small ones; each tenant's ``/scim/Users``
counts its own users only. Latency targets (docs/performance.md): p50 <= 100 ms,
p99 <= 500 ms.

    .venv/bin/python benchmarks/tenants.py                        # 100,000 users, SQLite
    .venv/bin/python benchmarks/tenants.py --users 20000 --concurrency 8
    .venv/bin/python benchmarks/tenants.py --users 20000 --database-url \\
        postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.realtime import LDAP_GROUPS, LDAP_PEOPLE, setup, user  # noqa: E402
from benchmarks.realtime import provisor as provisor_server  # noqa: E402
from benchmarks.scim_directory import (  # noqa: E402
    BULK_SIZE,
    SCIM_JSON,
    ThreadClients,
    basic_auth,
    bulk_loader,
    create_database,
    drop_database,
    run_loader,
    tail,
)
from benchmarks.sync import count_ldap, database_url, pg_admin_url  # noqa: E402
from provisor.context import INSTALLATION, Context  # noqa: E402

BIG = "big"
SMALL = "small"
TARGETS = {"p50_ms": 100.0, "p99_ms": 500.0}
ACTIVE = ("Queued", "Running", "Running with Error", "Pending Restart")


@dataclass
class Phase:
    """The pushes of one phase: their latencies (s), wall time and failures."""

    label: str
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    job_running: tuple[bool, bool] = (False, False)  # at its start, at its end

    def add(self, other: Phase) -> None:
        self.latencies += other.latencies
        self.seconds += other.seconds
        self.failures += other.failures

    def figures(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        if not ordered:
            return {"changes": 0, "per_second": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
        return {
            "changes": len(ordered),
            "per_second": len(ordered) / self.seconds if self.seconds else 0.0,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
            "max_ms": ordered[-1] * 1000,
        }


# -- The installation: tenants made by the operator before A starts ------------------------------


def make_tenants(data_dir: Path, url: str | None) -> dict[str, str]:
    """Initialise A's installation; the operator creates the tenants big and small; a
    real-time technical user in small. Basic auth of big's and small's first admins and of
    small's real-time user."""
    from provisor.runtime import Services, initialise
    from provisor.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=url)
    initialise(settings)
    operator = Context.administrator("benchmark", tenant=INSTALLATION)
    services = Services.open(settings)
    try:
        auth = {}
        for name in (BIG, SMALL):
            _, admin = services.tenants.create(operator, name, title=f"benchmark {name}")
            auth[name] = basic_auth(admin.client_id, admin.client_secret)
        _, pusher = services.clients.create(
            Context.system("benchmark", tenant=SMALL), "realtime-benchmark", ["realtime_api"]
        )
        auth["pusher"] = basic_auth(pusher.client_id, pusher.client_secret)
    finally:
        services.close()
    return auth


# -- big: its directory, its target and its job ----------------------------------------------


def setup_big(base: str, auth: str, b: tuple[str, str], users: int, bulk: bool) -> str:
    """big's source and SCIM target (provisor B); its users loaded. The source's id."""
    with httpx.Client(base_url=base, headers={"Authorization": auth}, timeout=60) as api:
        source = api.post(
            "/api/v1/systems",
            json={"name": "LID", "type": "Local Identity Directory", "role": "source"},
        )
        source.raise_for_status()
        source_id: str = source.json()["id"]
        client_id, secret = credentials_of(b[1])
        properties = {
            "URL": f"{b[0]}/scim",
            "Authentication": "BasicAuthentication",
            "User": client_id,
            "Password": secret,
            "ips.failed.request.retry.attempts.interval": "1",
        }
        if bulk:
            properties["scim.support.bulk.operation"] = "true"
            properties["scim.bulk.operations.max.count"] = "100"
        target = api.post(
            "/api/v1/systems",
            json={
                "name": "Provisor B",
                "type": "SCIM System",
                "role": "target",
                "sourceSystemIds": [source_id],
                "properties": properties,
            },
        )
        target.raise_for_status()
    clients = ThreadClients(base, {"Authorization": auth, "Accept": SCIM_JSON})
    try:
        loaded = run_loader(f"{BIG} users", users, BULK_SIZE, bulk_loader(clients))
    finally:
        clients.close()
    if loaded.failures:
        raise SystemExit(f"error: {loaded.failures} users not loaded, e.g. {loaded.errors[:3]}")
    print(f"  {loaded.users:,} users in {loaded.seconds:.1f} s ({loaded.rate:,.0f} users/s)")
    return source_id


def credentials_of(auth: str) -> tuple[str, str]:
    import base64

    client_id, _, secret = base64.b64decode(auth.split(" ", 1)[1]).decode().partition(":")
    return client_id, secret


class BigJob:
    """big's full READ job, started and watched through big's admin API."""

    def __init__(self, base: str, auth: str, source_id: str) -> None:
        self.api = httpx.Client(base_url=base, headers={"Authorization": auth}, timeout=60)
        self.source_id = source_id
        self.id = ""
        self.last: dict[str, Any] = {}

    def start(self) -> None:
        answer = self.api.post(f"/api/v1/systems/{self.source_id}/jobs", json={"type": "READ"})
        answer.raise_for_status()
        self.id = answer.json()["id"]
        deadline = time.monotonic() + 120
        while self.state()["status"] == "Queued":  # the job runner picks it up
            if time.monotonic() > deadline:
                raise SystemExit("error: big's job was still queued after 120 s")
            time.sleep(0.2)

    def state(self) -> dict[str, Any]:
        answer = self.api.get(f"/api/v1/jobs/{self.id}")
        answer.raise_for_status()
        self.last = answer.json()
        return self.last

    def running(self) -> bool:
        return self.state()["status"] in ACTIVE

    def wait(self, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        while self.running():
            progress(self.last)
            time.sleep(5)
        return self.last

    def close(self) -> None:
        self.api.close()


def job_line(job: dict[str, Any]) -> str:
    parts = []
    for row in job.get("statistics", []):
        counts = {k: v for k, v in row.items() if isinstance(v, int) and v}
        parts.append(f"{row['entityType']}@{row['systemName']}: {counts}")
    return f"{job.get('status')}; " + ("; ".join(parts) or "no statistics yet")


def job_seconds(job: dict[str, Any]) -> float:
    from provisor.timestamps import parse_datetime

    if not job.get("startTime") or not job.get("endTime"):
        return 0.0
    return (parse_datetime(job["endTime"]) - parse_datetime(job["startTime"])).total_seconds()


def check_job(job: dict[str, Any], users: int) -> list[str]:
    problems = []
    if job.get("status") != "Success":
        problems.append(f"big's job ended {job.get('status')}: {job.get('errorMessage')}")
    for row in job.get("statistics", []):
        if row["entityType"] != "user":
            continue
        if row["failed"]:
            problems.append(f"big's job: {row['failed']} users failed in {row['systemName']}")
        if row["role"] == "source" and row["read"] != users:
            problems.append(f"big's job read {row['read']} users, not {users}")
        if row["role"] == "target" and row["created"] != users:
            problems.append(f"big's job created {row['created']} users in B, not {users}")
    return problems


# -- small: real-time pushes -----------------------------------------------------------------


async def push(
    base: str,
    auth: str,
    source: str,
    changes: list[tuple[str, str, dict[str, Any]]],
    concurrency: int,
    label: str,
) -> Phase:
    """Push ``(method, id, body)`` changes with ``concurrency`` clients."""
    url = f"{base}/ipsproxy/service/api/v1/systems/{source}/entities/user"
    queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue()
    for change in changes:
        queue.put_nowait(change)
    phase = Phase(label)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        headers={"Authorization": auth}, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            while not queue.empty():
                method, entity_id, body = queue.get_nowait()
                target = url if method == "POST" else f"{url}/{entity_id}"
                began = time.perf_counter()
                answer = await client.request(method, target, json=body)
                phase.latencies.append(time.perf_counter() - began)
                data = answer.json() if answer.content else {}
                if answer.status_code >= 300 or data.get("status") != "Finished Successfully":
                    phase.failures.append(f"{answer.status_code} {answer.text[:300]}")

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        phase.seconds = time.perf_counter() - began
    return phase


def changes(ids: list[str], offset: int, method: str, display: str) -> list[tuple[str, str, Any]]:
    """POST or PUT of small's users ``offset...`` (their ids in ``ids``)."""
    return [
        (method, entity_id, {**user(offset + n, display.format(n=n)), "id": entity_id})
        for n, entity_id in enumerate(ids)
    ]


# -- Orchestration -----------------------------------------------------------------------------


def scim_total(base: str, auth: str) -> int:
    with httpx.Client(headers={"Authorization": auth}, timeout=60) as client:
        answer = client.get(f"{base}/scim/Users", params={"count": 0})
        answer.raise_for_status()
        return int(answer.json()["totalResults"])


def scim_display_name(base: str, auth: str, user_name: str) -> str | None:
    with httpx.Client(headers={"Authorization": auth}, timeout=60) as client:
        answer = client.get(f"{base}/scim/Users", params={"filter": f'userName eq "{user_name}"'})
        answer.raise_for_status()
        found = answer.json().get("Resources", [])
        return found[0].get("displayName") if len(found) == 1 else None


def run(args: argparse.Namespace, work: Path, urls: list[str | None]) -> int:
    import provisor

    print(
        f"=== tenants benchmark: big {args.users:,} users (full job), small "
        f"{args.realtime_users:,} + {args.realtime_users:,} users pushed by {args.concurrency} "
        f"clients; {'PostgreSQL' if urls[0] else 'SQLite'}; provisor from "
        f"{Path(provisor.__file__).parent}; work dir {work} ===",
        flush=True,
    )
    from tests.connectors.ldap_server import running_slapd

    auth = make_tenants(work / "a", urls[0])
    problems: list[str] = []
    results: dict[str, Phase] = {}
    half = args.realtime_users
    warm = 2 * args.concurrency  # small's users pushed once before the baseline
    with (
        provisor_server(work / "a", urls[0], args.workers) as (a, _),
        provisor_server(work / "b", urls[1], args.workers) as b,
        provisor_server(work / "c", urls[2], args.workers) as c,
        running_slapd(work / "slapd") as slapd,
    ):
        big, small = f"{a}/t/{BIG}", f"{a}/t/{SMALL}"
        slapd.add(
            (dn, {"objectClass": ["organizationalUnit"], "ou": [dn.split(",")[0][3:]]})
            for dn in (LDAP_PEOPLE, LDAP_GROUPS)
        )
        print(f"\nA {a} (tenants {BIG}, {SMALL}), B {b[0]}, C {c[0]}, slapd {slapd.url}")
        print(f"\nloading {BIG}'s directory ...", flush=True)
        source_big = setup_big(big, auth[BIG], b, args.users, args.scim_bulk)
        print(f"loading {SMALL}'s directory and systems (targets C and slapd) ...", flush=True)
        ready = setup(small, auth[SMALL], c, slapd, 2 * half + warm)
        source_small, ids = ready["source"], ready["ids"]
        first, second = ids[:half], ids[half : 2 * half]
        warm_up = asyncio.run(  # connections and caches warm, not measured
            push(
                small,
                auth["pusher"],
                source_small,
                changes(ids[2 * half :], 2 * half, "POST", "Warm-up"),
                args.concurrency,
                "warm-up",
            )
        )
        problems += [f"warm-up: {failure}" for failure in warm_up.failures[:3]]

        def phase(label: str, batch: list[tuple[str, str, Any]], job: BigJob | None) -> Phase:
            before = job.running() if job else False
            result = asyncio.run(
                push(small, auth["pusher"], source_small, batch, args.concurrency, label)
            )
            result.job_running = (before, job.running() if job else False)
            f = result.figures()
            print(
                f"  {label:<28} {f['per_second']:7.0f}/s p50 {f['p50_ms']:6.1f} ms "
                f"p99 {f['p99_ms']:6.1f} ms max {f['max_ms']:7.1f} ms, "
                f"{len(result.failures)} failures"
                + (f"; big's job {'running' if result.job_running[1] else 'ended'}" if job else ""),
                flush=True,
            )
            return result

        print(f"\n{SMALL}: baseline, no job running", flush=True)
        results["baseline create"] = phase(
            "baseline create", changes(first, 0, "POST", "First"), None
        )
        results["baseline update"] = phase(
            "baseline update", changes(first, 0, "PUT", "Changed {n}"), None
        )

        print(f"\n{BIG}: starting the full job; {SMALL} pushes meanwhile", flush=True)
        job = BigJob(big, auth[BIG], source_big)
        try:
            job.start()
            results["job create"] = phase("job create", changes(second, half, "POST", "First"), job)
            results["job update"] = phase(
                "job update", changes(second, half, "PUT", "Changed {n}"), job
            )
            more = Phase("job more updates")
            rounds = 0
            while not args.phases_only and job.running():
                rounds += 1
                batch = changes(second, half, "PUT", f"Round {rounds} {{n}}")
                more.add(phase(f"job update round {rounds}", batch, job))
            last = "Changed {n}"
            if rounds:
                more.job_running = (True, job.running())
                results[f"job more updates ({rounds} rounds)"] = more
                last = f"Round {rounds} {{n}}"
            print(f"\nwaiting for {BIG}'s job ...", flush=True)
            final = job.wait(lambda state: print(f"  ... {job_line(state)}", flush=True))
        finally:
            job.close()
        print(f"  {job_line(final)}")
        problems += check_job(final, args.users)

        counts = {
            "B (big's target)": scim_total(b[0], b[1]),
            "C (small's target)": scim_total(c[0], c[1]),
            "slapd (small's target)": count_ldap(slapd)["users"],
            "A /t/big/scim/Users": scim_total(big, auth[BIG]),
            "A /t/small/scim/Users": scim_total(small, auth[SMALL]),
        }
        expected = {
            "B (big's target)": args.users,
            "C (small's target)": 2 * half + warm,
            "slapd (small's target)": 2 * half + warm,
            "A /t/big/scim/Users": args.users,
            "A /t/small/scim/Users": 2 * half + warm,
        }
        for n in (0, half - 1):  # the last change pushed reached C
            shown = scim_display_name(c[0], c[1], user(half + n, "")["userName"])
            if shown != last.format(n=n):
                problems.append(f"C shows {shown!r} for small's user {half + n}, not the last push")
        for name, found in counts.items():
            if found != expected[name]:
                problems.append(f"{name} holds {found:,} users, not {expected[name]:,}")

    for name in ("a", "b", "c"):
        log = work / name / "server.log"
        if "Traceback" in log.read_text(errors="replace"):
            problems.append(f"{log} has tracebacks:\n{tail(log, 20)}")
    during = Phase("during the job, all")
    for label, result in results.items():
        if label.startswith("job"):
            during.add(result)
        problems += [f"{label}: {failure}" for failure in result.failures[:3]]
        if label.startswith("job") and not result.job_running[0]:
            problems.append(f"{label}: big's job had ended before the phase began")
    results[during.label] = during

    seconds = job_seconds(final)
    read = sum(
        int(r["read"])
        for r in final.get("statistics", [])
        if r["role"] == "source" and r["entityType"] == "user"
    )
    print("\n" + "=" * 96)
    print(
        f"RESULTS: big {args.users:,} users, small {2 * half:,} users, {args.concurrency} "
        f"clients, {'PostgreSQL' if urls[0] else 'SQLite'}"
    )
    print("=" * 96)
    print(
        f"{SMALL:<34} {'changes':>8} {'changes/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8}  latency target"
    )
    for label, result in results.items():
        f = result.figures()
        met = f["p50_ms"] <= TARGETS["p50_ms"] and f["p99_ms"] <= TARGETS["p99_ms"]
        print(
            f"{label:<34} {f['changes']:>8,.0f} {f['per_second']:>10.0f} {f['p50_ms']:>8.1f} "
            f"{f['p99_ms']:>8.1f} {f['max_ms']:>8.1f}  {'met' if met else 'NOT met'}"
        )
    print(
        f"{BIG}'s job: {final.get('status')}, {read:,} users in {seconds:.1f} s "
        f"({read / seconds if seconds else 0:,.0f} users/s)"
    )
    print(f"counts: {counts}")
    if problems:
        print("\nPROBLEMS:")
        for problem in problems[:50]:
            print(f"  - {problem}")
    else:
        print("\nno problems: every push Finished Successfully, the job succeeded, counts match")
    if args.json:
        print(
            "JSON "
            + json.dumps(
                {
                    "users": args.users,
                    "realtime_users": 2 * half,
                    "concurrency": args.concurrency,
                    "backend": "postgresql" if urls[0] else "sqlite",
                    "phases": {k: v.figures() for k, v in results.items()},
                    "job": {"status": final.get("status"), "users": read, "seconds": seconds},
                    "counts": counts,
                    "problems": problems,
                }
            )
        )
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="big's users (its job)")
    parser.add_argument(
        "--realtime-users",
        type=int,
        default=2000,
        help="small's users pushed per condition (baseline, during the job)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="small's pushing clients")
    parser.add_argument("--workers", type=int, help="worker processes of provisor A, B and C")
    parser.add_argument("--database-url", help="PostgreSQL server for A, B and C (fresh databases)")
    parser.add_argument(
        "--scim-bulk", action="store_true", help="big's target writes B through SCIM Bulk"
    )
    parser.add_argument(
        "--phases-only",
        action="store_true",
        help="during the job, push one create and one update phase only (not until it ends)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder and databases")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="provisor-tenants-bench-"))
    admin = pg_admin_url(args.database_url) if args.database_url else ""
    urls: list[str | None] = [None, None, None]
    try:
        if args.database_url:
            urls = [database_url(args.database_url, create_database(admin)) for _ in "abc"]
        code = run(args, work, urls)
    finally:
        if args.keep:
            print(f"kept {work} {' '.join(u.rsplit('/', 1)[1] for u in urls if u)}")
        else:
            for url in urls:
                if url:
                    drop_database(admin, url.rsplit("/", 1)[1])
            with contextlib.suppress(OSError):
                shutil.rmtree(work)
    sys.exit(code)


if __name__ == "__main__":
    main()
