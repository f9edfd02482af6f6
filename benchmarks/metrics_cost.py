"""What the metrics cost on the SCIM API: GET and POST requests/s with ``PROVISOR_METRICS``
on and off, in the same run.

Two ``provisor serve`` (same build, same settings but ``PROVISOR_METRICS``; SQLite, two
workers each unless ``--workers``), each with ``--users`` users loaded through
``POST /scim/Bulk``; then ``--repeats`` rounds, each measuring ``GET /scim/Users/{id}`` and
``POST /scim/Users`` on both servers in turn (the first server alternates between rounds, so
neither always runs first), with the load of ``benchmarks/scim_quick.py`` (``--connections``
keep-alive clients for ``--warmup`` then ``--seconds`` seconds). Only one server is loaded at
a time; the other idles. Reports each round's figures and, per operation, the medians and the
difference (negative: instrumentation costs that share of the throughput).

    python benchmarks/metrics_cost.py
    python benchmarks/metrics_cost.py --users 2000 --seconds 10 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import (  # noqa: E402
    BULK_SIZE,
    SCIM_JSON,
    ThreadClients,
    basic_auth,
    bulk_loader,
    executable,
    free_port,
    provisor_env,
    run_loader,
    server_process,
    tail,
    wait_until_up,
)
from benchmarks.scim_quick import OPERATIONS, Measure, load  # noqa: E402

MODES = ("on", "off")
# The middleware's own cost per request, around an application that does nothing, in a process
# whose metrics go to a multi-process folder (as provisor serve's workers): CPU microseconds.
MICRO = """
import asyncio, os, sys, tempfile, time
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp()
from provisor.web.metrics import MetricsMiddleware

async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})

async def send(message):
    pass

async def receive():
    return {"type": "http.request"}

async def run(handler, n):
    scope = {"type": "http", "path": "/scim/Users/abc", "method": "GET"}
    began = time.process_time()
    for _ in range(n):
        await handler(scope, receive, send)
    return (time.process_time() - began) / n * 1e6

n = int(sys.argv[1])
bare = min(asyncio.run(run(app, n)) for _ in range(3))
wrapped = min(asyncio.run(run(MetricsMiddleware(app), n)) for _ in range(3))
print(f"{wrapped - bare:.1f}")
"""


def micro(calls: int = 50_000) -> float:
    """The middleware's CPU microseconds per request (see MICRO)."""
    done = subprocess.run(
        [sys.executable, "-c", MICRO, str(calls)], capture_output=True, text=True, check=True
    )
    return float(done.stdout.strip())


@dataclass
class Server:
    base: str
    auth: str
    ids: list[str]
    names: list[str]
    log: Path


def start(stack: ExitStack, mode: str, work: Path, workers: int, users: int) -> Server:
    """A server with metrics ``mode``, loaded with ``users`` users: its URL, credentials, ids."""
    folder = work / f"metrics-{mode}"
    folder.mkdir()
    port = free_port()
    cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(folder)]
    cmd += ["--workers", str(workers)]
    env = provisor_env(None)
    env["PROVISOR_METRICS"] = "true" if mode == "on" else "false"
    log = folder / "server.log"
    proc = stack.enter_context(server_process(cmd, env, log))
    base = f"http://127.0.0.1:{port}"
    wait_until_up(f"{base}/health", proc, log, timeout=180)
    credentials = json.loads((folder / "initial-admin.json").read_text())
    auth = basic_auth(credentials["client_id"], credentials["client_secret"])
    clients = ThreadClients(base, {"Authorization": auth, "Accept": SCIM_JSON})
    try:
        loaded = run_loader("users", users, BULK_SIZE, bulk_loader(clients))
    finally:
        clients.close()
    if loaded.failures:
        raise SystemExit(f"error: {loaded.failures} users not loaded: {loaded.errors[:3]}")
    print(f"  metrics {mode}: {loaded.users:,} users in {loaded.seconds:.1f} s", flush=True)
    return Server(base, auth, loaded.ids, loaded.names, log)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per operation")
    parser.add_argument("--warmup", type=float, default=2.0, help="before each measure")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of provisor")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()

    import provisor

    print(
        f"=== metrics cost: {args.users:,} users, SQLite, {args.workers} workers, "
        f"{args.connections} connections, {args.seconds:g} s per measure, {args.repeats} "
        f"rounds; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; provisor "
        f"from {Path(provisor.__file__).parent} ===",
        flush=True,
    )
    cost = micro()
    print(f"  the middleware alone: {cost:.1f} µs of CPU per request (multi-process files)")
    work = Path(tempfile.mkdtemp(prefix="provisor-metrics-cost-"))
    rates: dict[tuple[str, str], list[float]] = {}
    problems: list[str] = []
    try:
        with ExitStack() as stack:
            servers = {mode: start(stack, mode, work, args.workers, args.users) for mode in MODES}
            for round_ in range(args.repeats):
                order = MODES if round_ % 2 == 0 else tuple(reversed(MODES))
                for operation in ("get", "post"):
                    for mode in order:
                        server = servers[mode]
                        common = (
                            server.base,
                            server.auth,
                            operation,
                            server.ids,
                            server.names,
                            args.connections,
                        )
                        if args.warmup > 0:
                            asyncio.run(load(*common, args.warmup))
                        result: Measure = asyncio.run(load(*common, args.seconds))
                        rates.setdefault((operation, mode), []).append(result.rate)
                        if result.unexpected:
                            problems.append(f"{operation} {mode}: {dict(result.unexpected)}")
                        print(
                            f"  round {round_ + 1} {OPERATIONS[operation]:24} metrics {mode:3} "
                            f"{result.rate:8,.0f} req/s  p50 {result.percentile(0.5):7.2f} ms",
                            flush=True,
                        )
                        time.sleep(1)
            for mode, server in servers.items():
                if "Traceback" in server.log.read_text(errors="replace"):
                    problems.append(f"metrics {mode}: tracebacks\n{tail(server.log, 20)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{'operation':24} {'on req/s':>10} {'off req/s':>10} {'change':>8}  (medians)")
    summary = {}
    for operation in ("get", "post"):
        on = statistics.median(rates[(operation, "on")])
        off = statistics.median(rates[(operation, "off")])
        change = (on - off) / off * 100 if off else 0.0
        summary[operation] = {"on": round(on, 1), "off": round(off, 1), "change_pct": change}
        print(f"{OPERATIONS[operation]:24} {on:10,.0f} {off:10,.0f} {change:+7.1f}%")
    if args.json:
        print(
            "JSON "
            + json.dumps(
                {
                    "results": summary,
                    "rates": {f"{op}_{mode}": values for (op, mode), values in rates.items()},
                    "problems": problems,
                }
            )
        )
    if problems:
        print("\nPROBLEMS:")
        for problem in problems:
            print(f"  - {problem}")
        sys.exit(1)


if __name__ == "__main__":
    main()
