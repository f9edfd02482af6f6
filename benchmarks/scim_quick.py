"""A quick throughput measure of the Local Identity Directory's SCIM API, without wrk.

One ``provisor serve`` (default settings: SQLite, two workers; or ``--database-url``
PostgreSQL), ``--users`` users (default 10,000, the realistic documents of
``benchmarks/scim_directory.py``) loaded through ``POST /scim/Bulk``, then, for each
operation, ``--connections`` keep-alive httpx clients in one asyncio loop for ``--warmup``
then ``--seconds`` seconds, HTTP Basic on every request:

* ``get``: ``GET /scim/Users/{id}`` of a random loaded user (200 expected);
* ``filter``: ``GET /scim/Users?filter=userName eq "…"`` of a random loaded user (200 and
  exactly one result expected);
* ``post``: ``POST /scim/Users`` of a new user (~1.1 KB, 201 expected, durable);
* ``patch``: ``PATCH /scim/Users/{id}`` of a random loaded user, replacing its displayName
  (200 expected, durable; the body of ``benchmarks/lua/patch_user.lua``).

Per operation: requests/s, p50/p99/max latency, unexpected answers, and the CPU the load
generator used (in cores: the client shares the machine's cores with the server, so the
figures are lower than wrk's in docs/performance.md; they serve to compare two versions of
provisor on the same machine, e.g. ``PYTHONPATH=<worktree>/src``).

    python benchmarks/scim_quick.py
    python benchmarks/scim_quick.py --users 10000 --seconds 20 --operations get,post
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import (  # noqa: E402
    BULK_SIZE,
    SCIM_JSON,
    ThreadClients,
    basic_auth,
    bulk_loader,
    create_database,
    drop_database,
    executable,
    free_port,
    post_template,
    provisor_env,
    run_loader,
    server_process,
    tail,
    wait_until_up,
)
from benchmarks.sync import database_url, pg_admin_url  # noqa: E402

OPERATIONS = {
    "get": "GET /Users/{id}",
    "filter": 'GET /Users?filter=userName eq "…"',
    "post": "POST /Users (durable)",
    "patch": "PATCH /Users/{id} (durable)",
}
EXPECTED = {"get": 200, "filter": 200, "post": 201, "patch": 200}
PATCH_BODY = (
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],'
    '"Operations":[{"op":"replace","path":"displayName","value":"Patched @@N@@"}]}'
)
ONE_RESULT = re.compile(rb'"totalResults"\s*:\s*1[,}\s]')


@dataclass
class Measure:
    operation: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        if share == 0.5:
            return statistics.median(ordered) * 1000
        return ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000


async def load(
    base: str,
    auth: str,
    operation: str,
    ids: list[str],
    names: list[str],
    connections: int,
    seconds: float,
) -> Measure:
    """``connections`` clients repeat ``operation`` for ``seconds``."""
    measure = Measure(operation)
    template = post_template()
    tag = f"{random.getrandbits(32):08x}"
    counter = 0
    headers = {"Authorization": auth, "Accept": SCIM_JSON}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30
    ) as client:

        async def one() -> None:
            nonlocal counter
            if operation == "get":
                request = client.get(f"/scim/Users/{random.choice(ids)}")
            elif operation == "filter":
                wanted = quote(f'userName eq "{random.choice(names)}"')
                request = client.get(f"/scim/Users?filter={wanted}")
            elif operation == "patch":
                counter += 1
                request = client.patch(
                    f"/scim/Users/{random.choice(ids)}",
                    content=PATCH_BODY.replace("@@N@@", f"{tag}n{counter}"),
                    headers={"Content-Type": SCIM_JSON},
                )
            else:
                counter += 1
                body = template.replace("@@N@@", f"{tag}n{counter}")
                request = client.post(
                    "/scim/Users", content=body, headers={"Content-Type": SCIM_JSON}
                )
            began = time.perf_counter()
            try:
                answer = await request
            except httpx.HTTPError as exc:
                measure.unexpected[type(exc).__name__] += 1
                return
            measure.latencies.append(time.perf_counter() - began)
            if answer.status_code != EXPECTED[operation]:
                measure.unexpected[str(answer.status_code)] += 1
            elif operation == "filter" and not ONE_RESULT.search(answer.content):
                measure.unexpected["not one result"] += 1

        async def worker(until: float) -> None:
            while time.perf_counter() < until:
                await one()

        cpu = _cpu()
        began = time.perf_counter()
        await asyncio.gather(*(worker(began + seconds) for _ in range(connections)))
        measure.seconds = time.perf_counter() - began
        measure.client_cpu = (_cpu() - cpu) / measure.seconds
    return measure


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured, per operation")
    parser.add_argument("--warmup", type=float, default=3.0, help="before each measure")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--operations", default="get,filter,post,patch", help="of: get,filter,post,patch"
    )
    parser.add_argument("--workers", type=int, help="worker processes of provisor")
    parser.add_argument("--database-url", help="PostgreSQL server (a fresh database)")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    unknown = sorted(set(operations) - set(OPERATIONS))
    if unknown:
        parser.error(f"unknown operation(s) {', '.join(unknown)}; known: {', '.join(OPERATIONS)}")

    import provisor

    work = Path(tempfile.mkdtemp(prefix="provisor-scim-quick-"))
    admin = pg_admin_url(args.database_url) if args.database_url else ""
    url = database_url(args.database_url, create_database(admin)) if args.database_url else None
    backend = "PostgreSQL" if url else "SQLite"
    print(
        f"=== SCIM quick: {args.users:,} users, {backend}, {args.connections} connections, "
        f"{args.seconds:g} s per operation; provisor from {Path(provisor.__file__).parent} ===",
        flush=True,
    )
    results: list[Measure] = []
    problems: list[str] = []
    try:
        port = free_port()
        cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(work)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        log = work / "server.log"
        base = f"http://127.0.0.1:{port}"
        with server_process(cmd, provisor_env(url), log) as proc:
            wait_until_up(f"{base}/health", proc, log, timeout=120)
            credentials = json.loads((work / "initial-admin.json").read_text())
            auth = basic_auth(credentials["client_id"], credentials["client_secret"])
            clients = ThreadClients(base, {"Authorization": auth, "Accept": SCIM_JSON})
            try:
                loaded = run_loader("users", args.users, BULK_SIZE, bulk_loader(clients))
            finally:
                clients.close()
            if loaded.failures:
                raise SystemExit(f"error: {loaded.failures} users not loaded: {loaded.errors[:3]}")
            print(f"  {loaded.users:,} users in {loaded.seconds:.1f} s ({loaded.rate:,.0f}/s)")
            for operation in operations:
                common = (base, auth, operation, loaded.ids, loaded.names, args.connections)
                if args.warmup > 0:
                    asyncio.run(load(*common, args.warmup))
                result = asyncio.run(load(*common, args.seconds))
                results.append(result)
                print(
                    f"  {OPERATIONS[operation]:36} {result.rate:8,.0f} req/s  "
                    f"p50 {result.percentile(0.5):7.2f} ms  p99 {result.percentile(0.99):7.2f} ms"
                    f"  client {result.client_cpu:.2f} cores"
                    + (f"  UNEXPECTED {dict(result.unexpected)}" if result.unexpected else ""),
                    flush=True,
                )
                if result.unexpected:
                    problems.append(f"{operation}: unexpected answers {dict(result.unexpected)}")
                time.sleep(1)  # what the server still does for the last requests
        text = log.read_text(errors="replace")
        if "Traceback" in text:
            problems.append(f"the server logged tracebacks:\n{tail(log, 20)}")
    finally:
        if url:
            drop_database(admin, url.rsplit("/", 1)[1])
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'operation':36} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} client")
    for r in results:
        print(
            f"{OPERATIONS[r.operation]:36} {r.rate:8,.0f} {r.percentile(0.5):8.2f} "
            f"{r.percentile(0.99):8.2f} {max(r.latencies, default=0) * 1000:8.1f} "
            f"{r.client_cpu:.2f} cores"
        )
    if args.json:
        print(
            "JSON "
            + json.dumps(
                {
                    "users": args.users,
                    "backend": backend.lower(),
                    "provisor": str(Path(provisor.__file__).parent),
                    "results": {
                        r.operation: {
                            "per_second": round(r.rate, 1),
                            "p50_ms": round(r.percentile(0.5), 2),
                            "p99_ms": round(r.percentile(0.99), 2),
                        }
                        for r in results
                    },
                    "problems": problems,
                }
            )
        )
    if problems:
        print("\nPROBLEMS:")
        for problem in problems:
            print(f"  - {problem}")
        sys.exit(1)
    print("\nno problems: every answer as expected")


if __name__ == "__main__":
    main()
