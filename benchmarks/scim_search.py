"""Benchmark of substring search in the Local Identity Directory, against a reference server.

What it measures, with ``wrk`` (one thread, ``--connections`` connections, after a ``--warmup``
run), on a real ``provisor serve`` per storage backend loaded with ``--users`` realistic users
(``POST /scim/Bulk``, as benchmarks/scim_directory.py loads them):

* ``GET /scim/Users?filter=userName co "<needle>"`` and ``emails.value co "<needle>"``: the
  needle is the six-digit number of a random loaded user (``user012345@example.com`` holds
  ``012345``), upper-cased every other request; it matches that user and no other;
* ``GET /scim/Users?filter=userName eq "<userName>"`` (the PostgreSQL target at 100,000 users).

With ``--compare``, the same runs against ``scim2-server`` (in-memory, WSGI, reference) loaded
with the same users in the same run; the report prints the ratios provisor / scim2-server and
the goals of issue 20 (``co`` >= 100 x scim2-server at 20,000 users; PostgreSQL ``eq`` >= 1,800
req/s at 100,000 users), marked met or not, and ``--json FILE`` writes it all.

Run it from the project root (PostgreSQL must accept the ``--pg-url`` admin connection)::

    python benchmarks/scim_search.py --compare --users 20000
    python benchmarks/scim_search.py --users 100000 --backends postgresql --ops eq
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scim_directory import (
    BULK_SIZE,
    LOADER_THREADS,
    LUA_DIR,
    SCIM_JSON,
    WRK_TIMEOUT,
    LoadResult,
    ThreadClients,
    WrkResult,
    basic_auth,
    bulk_loader,
    create_database,
    drop_database,
    ensure_wrk,
    executable,
    free_port,
    parse_wrk,
    provisor_env,
    run_loader,
    server_process,
    single_loader,
    wait_until_up,
    with_database,
)

# operation -> (label, lua script, attribute, operator)
OPERATIONS: dict[str, tuple[str, str, str, str]] = {
    "username_co": ('userName co "<6 digits>"', "filter_co.lua", "userName", "co"),
    "email_co": ('emails.value co "<6 digits>"', "filter_co.lua", "emails.value", "co"),
    "eq": ('userName eq "<userName>"', "filter_username.lua", "userName", "eq"),
}
CO_GOAL = 100.0  # x scim2-server, same run
EQ_GOAL_RPS = 1800.0  # PostgreSQL, at EQ_GOAL_USERS
EQ_GOAL_USERS = 100_000


@dataclass
class Run:
    name: str
    users: int
    load_rate: float = 0.0
    measurements: dict[str, WrkResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def needle_of(user_name: str) -> str:
    """The six digits of a loaded user's name (``user012345@example.com``)."""
    return user_name[4:10]


def run_wrk(
    wrk: str,
    base_url: str,
    prefix: str,
    auth: str,
    work: Path,
    op: str,
    seconds: int,
    connections: int,
) -> WrkResult:
    _, script, attribute, operator = OPERATIONS[op]
    env = {
        **os.environ,
        "BENCH_LUA_DIR": str(LUA_DIR),
        "BENCH_PREFIX": prefix,
        "BENCH_AUTH": auth,
        "BENCH_TAG": secrets.token_hex(4),
        "BENCH_NAMES_FILE": str(work / "names.txt"),
        "BENCH_NEEDLES_FILE": str(work / "needles.txt"),
        "BENCH_ATTRIBUTE": attribute,
        "BENCH_OPERATOR": operator,
    }
    cmd = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(LUA_DIR / script),
        base_url,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(op, done.stdout)


def one_at_a_time(
    base_url: str, prefix: str, auth: str, op: str, names: list[str], seconds: int
) -> WrkResult:
    """req/s of requests sent one after the other (at least three, for ``seconds``): for a
    server slower than wrk's timeout."""
    _, _, attribute, operator = OPERATIONS[op]
    headers = {"Accept": SCIM_JSON, **({"Authorization": auth} if auth else {})}
    latencies: list[float] = []
    started = time.monotonic()
    with httpx.Client(base_url=base_url, headers=headers, timeout=600) as client:
        client.get(f"{prefix}/ServiceProviderConfig")  # waits for what wrk left queued
        started = time.monotonic()
        while len(latencies) < 3 or time.monotonic() - started < seconds:
            name = random.choice(names)
            value = name if operator == "eq" else needle_of(name)
            sent = time.monotonic()
            response = client.get(
                f"{prefix}/Users", params={"filter": f'{attribute} {operator} "{value}"'}
            )
            latencies.append(time.monotonic() - sent)
            response.raise_for_status()
    elapsed = time.monotonic() - started
    latencies.sort()
    print(f"  (slower than wrk's {WRK_TIMEOUT} timeout: {len(latencies)} requests one at a time)")
    return WrkResult(
        op,
        requests=len(latencies),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=latencies[len(latencies) // 2] * 1000,
        p99_ms=latencies[-1] * 1000,
    )


def measure(
    run: Run,
    args: argparse.Namespace,
    wrk: str,
    base_url: str,
    prefix: str,
    auth: str,
    work: Path,
    load: LoadResult,
) -> None:
    (work / "names.txt").write_text("\n".join(load.names) + "\n")
    (work / "needles.txt").write_text("\n".join(needle_of(n) for n in load.names) + "\n")
    for op in args.ops:
        label = OPERATIONS[op][0]
        if args.warmup > 0:
            run_wrk(wrk, base_url, prefix, auth, work, op, args.warmup, args.connections)
        result = run_wrk(wrk, base_url, prefix, auth, work, op, args.duration, args.connections)
        if result.requests == 0:  # every request took longer than wrk's timeout: one at a time
            result = one_at_a_time(base_url, prefix, auth, op, load.names, args.duration)
        run.measurements[op] = result
        print(
            f"  {label:32} {result.rps:10,.1f} req/s  p50 {result.p50_ms:8.2f} ms  "
            f"p99 {result.p99_ms:8.2f} ms  non-2xx {result.non_2xx}",
            flush=True,
        )
        if result.non_2xx or result.requests == 0:
            run.problems.append(
                f"{label}: {result.non_2xx} non-2xx {result.statuses}, {result.requests} requests"
            )


def run_provisor(backend: str, args: argparse.Namespace, wrk: str) -> Run:
    print(f"\n=== provisor ({backend}) with {args.users} users ===", flush=True)
    work = Path(tempfile.mkdtemp(prefix=f"provisor-search-{backend}-"))
    run = Run(f"provisor/{backend}", args.users)
    database = create_database(args.pg_url) if backend == "postgresql" else None
    try:
        env = provisor_env(with_database(args.pg_url, database) if database else None)
        port = free_port()
        cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(work)]
        log = work / "server.log"
        base_url = f"http://127.0.0.1:{port}"
        with server_process(cmd, env, log) as proc:
            wait_until_up(f"{base_url}/health", proc, log, timeout=120)
            creds = json.loads((work / "initial-admin.json").read_text())
            auth = basic_auth(creds["client_id"], creds["client_secret"])
            clients = ThreadClients(base_url, {"Authorization": auth, "Accept": SCIM_JSON})
            try:
                load = run_loader("bulk load", args.users, BULK_SIZE, bulk_loader(clients))
            finally:
                clients.close()
            run.load_rate = load.rate
            print(f"  loaded {load.users} users ({load.rate:,.0f} users/s)", flush=True)
            if load.failures:
                run.problems.append(f"load: {load.failures} users not created: {load.errors[:2]}")
            measure(run, args, wrk, base_url, "/scim", auth, work, load)
    finally:
        if database:
            drop_database(args.pg_url, database)
        shutil.rmtree(work, ignore_errors=True)
    return run


def run_reference(args: argparse.Namespace, wrk: str) -> Run:
    print(f"\n=== scim2-server (reference, in-memory) with {args.users} users ===", flush=True)
    work = Path(tempfile.mkdtemp(prefix="provisor-search-scim2-server-"))
    run = Run("scim2-server", args.users)
    try:
        port = free_port()
        log = work / "server.log"
        base_url = f"http://127.0.0.1:{port}"
        cmd = [executable("scim2-server"), "--port", str(port)]
        with server_process(cmd, dict(os.environ), log) as proc:
            wait_until_up(f"{base_url}/ServiceProviderConfig", proc, log, timeout=60)
            clients = ThreadClients(base_url, {"Accept": SCIM_JSON})
            try:
                chunk = -(-args.users // (LOADER_THREADS * 10))
                load = run_loader("POST load", args.users, chunk, single_loader(clients, ""))
            finally:
                clients.close()
            run.load_rate = load.rate
            print(f"  loaded {load.users} users ({load.rate:,.0f} users/s)", flush=True)
            measure(run, args, wrk, base_url, "", "", work, load)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return run


def verdicts(runs: list[Run], reference: Run | None) -> list[tuple[str, str, bool]]:
    """(what, measured against the goal, met) for every goal the runs can tell."""
    out: list[tuple[str, str, bool]] = []
    for run in runs:
        for op in ("username_co", "email_co"):
            mine = run.measurements.get(op)
            ref = reference.measurements.get(op) if reference else None
            if mine and ref and ref.rps:
                ratio = mine.rps / ref.rps
                text = (
                    f"x{ratio:,.1f} ({mine.rps:,.0f} vs {ref.rps:,.1f} req/s; goal x{CO_GOAL:.0f})"
                )
                out.append((f"{run.name} {OPERATIONS[op][0]}", text, ratio >= CO_GOAL))
        eq = run.measurements.get("eq")
        if eq and run.name.endswith("postgresql"):
            text = (
                f"{eq.rps:,.0f} req/s at {run.users:,} users (goal {EQ_GOAL_RPS:,.0f} at "
                f"{EQ_GOAL_USERS:,})"
            )
            out.append(
                (
                    f"{run.name} {OPERATIONS['eq'][0]}",
                    text,
                    eq.rps >= EQ_GOAL_RPS and run.users >= EQ_GOAL_USERS,
                )
            )
    return out


def report(runs: list[Run], reference: Run | None) -> list[tuple[str, str, bool]]:
    print("\n" + "=" * 100 + "\nRESULTS (load average: " + os.popen("uptime").read().strip() + ")")
    for run in [*runs, *([reference] if reference else [])]:
        for op, m in run.measurements.items():
            print(
                f"  {run.name:22} {OPERATIONS[op][0]:32} {m.rps:10,.1f} req/s  "
                f"p99 {m.p99_ms:8.2f} ms"
            )
    found = verdicts(runs, reference)
    print("\nGOALS (issue 20)")
    for what, text, met in found:
        print(f"  {'MET    ' if met else 'NOT MET'}  {what:56} {text}")
    problems = [
        f"{r.name}: {p}" for r in [*runs, *([reference] if reference else [])] for p in r.problems
    ]
    print("\nPROBLEMS\n  " + "\n  ".join(problems) if problems else "\nNo problems.")
    return found


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=20_000, help="users loaded in each server")
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        type=lambda text: [b for b in text.split(",") if b],
    )
    parser.add_argument(
        "--ops",
        default=",".join(OPERATIONS),
        type=lambda text: [o for o in text.split(",") if o],
        help=f"comma-separated: {','.join(OPERATIONS)}",
    )
    parser.add_argument("--compare", action="store_true", help="run scim2-server too")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warmup (0: none)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin URL used to create and drop a fresh database",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args(argv)
    if set(args.backends) - {"sqlite", "postgresql"} or set(args.ops) - set(OPERATIONS):
        parser.error("unknown backend or operation")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    print(
        f"provisor substring search benchmark: {args.users} users, backends {args.backends}, "
        f"wrk -t1 -c{args.connections} -d{args.duration}s, cores {os.cpu_count()}"
    )
    runs = [run_provisor(backend, args, wrk) for backend in args.backends]
    reference = run_reference(args, wrk) if args.compare else None
    found = report(runs, reference)
    if args.json:
        data = {
            "arguments": {k: str(v) for k, v in vars(args).items()},
            "load_average": os.getloadavg(),
            "runs": [
                {
                    "name": r.name,
                    "users": r.users,
                    "load_rate": r.load_rate,
                    "problems": r.problems,
                    "measurements": {
                        op: {k: v for k, v in asdict(m).items() if k != "output"}
                        for op, m in r.measurements.items()
                    },
                }
                for r in [*runs, *([reference] if reference else [])]
            ],
            "goals": [{"what": w, "result": t, "met": ok} for w, t, ok in found],
        }
        args.json.write_text(json.dumps(data, indent=2))
        print(f"\nJSON written to {args.json}")
    return 1 if any(r.problems for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
