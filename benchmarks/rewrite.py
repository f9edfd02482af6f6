"""Benchmark of needless rewrites: how many writes a READ sends when nothing was changed but
a property of the source system (issue 14, "no rewrite of unchanged entities").

The scenario: a provisor instance holds ``--users`` users in its Local Identity Directory
(loaded over HTTP Bulk by a real ``provisor serve``, as ``benchmarks/sync.py`` does). Its
source system "LID" has two targets:

* "SCIM" → a small SCIM service provider started here on loopback (Bulk supported): it keeps
  nothing, answers every write, and counts the entities each request writes;
* "CSV" → a CSV file in the work folder.

Measured: a full READ (every user created), then one trace property of the source changed
(``ips.trace.created.entity``, which bypasses the source-hash shortcut: every entity is
transformed and compared again), then a second READ: the entities it wrote to the SCIM
target (POST, PUT, PATCH, DELETE and Bulk operations), its statistics and whether the CSV
file was rewritten. Nothing changed in the users, so the answer should be 0 writes.

Each job runs in its own child process (``benchmarks/sync.py``'s ``run_job``, which starts
``benchmarks/sync.py --run-job``). The script runs
against whatever ``provisor`` the interpreter imports: point PYTHONPATH at another checkout's
``src`` to measure that one (the measured figures do not depend on anything newer)::

    .venv/bin/python benchmarks/rewrite.py --users 2000
    .venv/bin/python benchmarks/rewrite.py                       # 100,000 users
    PYTHONPATH=/path/to/other/src .venv/bin/python benchmarks/rewrite.py --users 10000
    .venv/bin/python benchmarks/rewrite.py --cache /tmp/rewrite-cache   # load once, reuse
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from provisor.context import Context

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.sync import (  # noqa: E402
    SOURCE,
    Bench,
    JobRun,
    auth_of,
    load_directory,
    open_services,
    provisor_server,
    run_job,
)

SCIM_TARGET = "SCIM"
CSV_TARGET = "CSV"
TRACE_PROPERTY = "ips.trace.created.entity"


# -- The SCIM target: answers writes, counts them -----------------------------------------------


class Writes:
    """Entities written to the SCIM target, by method (a Bulk operation counts as one)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add(self, method: str, n: int = 1) -> None:
        with self.lock:
            self.counts[method] += n

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())

    def snapshot(self) -> Counter[str]:
        with self.lock:
            return Counter(self.counts)


def handler(writes: Writes) -> type[BaseHTTPRequestHandler]:
    class SCIMTarget(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the connector reuses its connections

        def log_message(self, *args: Any) -> None:
            pass

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length)) if length else None

        def _answer(self, status: int, body: Any = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # lookups find nothing: no conflicts
            self._answer(200, {"totalResults": 0, "Resources": [], "itemsPerPage": 0})

        def do_POST(self) -> None:
            body = self._body()
            if self.path.rstrip("/").endswith("/Bulk"):
                operations = body.get("Operations", [])
                writes.add("Bulk", len(operations))
                done = [
                    {
                        "method": "POST",
                        "bulkId": op.get("bulkId"),
                        "status": "201",
                        "location": f"{op.get('path', '/Users')}/{uuid.uuid4()}",
                    }
                    for op in operations
                ]
                self._answer(200, {"Operations": done})
                return
            writes.add("POST")
            self._answer(201, {**body, "id": str(uuid.uuid4())})

        def do_PUT(self) -> None:
            writes.add("PUT")
            self._answer(200, {**self._body(), "id": self.path.rsplit("/", 1)[-1]})

        def do_PATCH(self) -> None:
            writes.add("PATCH")
            self._body()
            self._answer(204)

        def do_DELETE(self) -> None:
            writes.add("DELETE")
            self._answer(204)

    return SCIMTarget


@contextmanager
def scim_target() -> Iterator[tuple[str, Writes]]:
    """The counting SCIM target in a thread: its base URL and its counts."""
    writes = Writes()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(writes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/scim", writes
    finally:
        server.shutdown()
        server.server_close()


# -- Systems -------------------------------------------------------------------------------------


def create_systems(bench: Bench, scim_url: str, csv_file: Path) -> None:
    from provisor.systems.model import NewSystem

    services = open_services(bench)
    try:
        source = services.systems.create(
            Context.administrator("benchmark"),
            NewSystem.model_validate(
                {"name": SOURCE, "type": "local-identity-directory", "role": "source"}
            ),
        )
        for name, kind, properties in (
            (
                SCIM_TARGET,
                "scim",
                {
                    "URL": scim_url,
                    "Authentication": "NoAuthentication",
                    "scim.support.bulk.operation": "true",
                    "scim.bulk.operations.max.count": "100",
                },
            ),
            (CSV_TARGET, "csv", {"csv.user.file": str(csv_file)}),
        ):
            services.systems.create(
                Context.administrator("benchmark"),
                NewSystem.model_validate(
                    {
                        "name": name,
                        "type": kind,
                        "role": "target",
                        "sourceSystemIds": [source.id],
                        "properties": properties,
                    }
                ),
            )
    finally:
        services.close()


def change_trace_property(bench: Bench) -> None:
    """Turn one trace property of the source on: every entity is re-evaluated."""
    from provisor.systems.model import SystemChanges

    services = open_services(bench)
    try:
        changes = SystemChanges.model_validate({"properties": {TRACE_PROPERTY: "true"}})
        services.systems.update(
            Context.administrator("benchmark"),
            SOURCE,
            changes,
        )
    finally:
        services.close()


def target_row(run: JobRun, name: str) -> dict[str, Any]:
    for row in run.statistics:
        if row["systemName"] == name and row["entityType"] == "user":
            return row
    return {}


# -- Orchestration -------------------------------------------------------------------------------


def load(bench: Bench) -> None:
    """The users into the directory; with ``--cache DIR``, a folder loaded before is copied
    (loading 100,000 users over HTTP takes minutes: measure several checkouts on one load)."""
    cache = bench.args.cache and Path(bench.args.cache) / str(bench.args.users)
    if cache and cache.is_dir():
        shutil.copytree(cache, bench.data_a)
        print(f"  the directory of {cache}", flush=True)
        return
    started = time.monotonic()
    with provisor_server(bench.data_a, None, None) as (url, credentials):
        load_directory(bench, url, auth_of(credentials))
    print(f"  loaded in {time.monotonic() - started:.1f} s", flush=True)
    if cache:
        shutil.copytree(bench.data_a, cache)


def run_benchmark(bench: Bench) -> dict[str, Any]:
    args = bench.args
    print(f"=== rewrite benchmark: {args.users:,} users, work dir {bench.work} ===", flush=True)
    load(bench)
    csv_file = bench.data_a / "users.csv"
    with scim_target() as (scim_url, writes):
        create_systems(bench, scim_url, csv_file)
        first = run_job(bench, "(a) initial full READ")
        after_first = writes.snapshot()
        csv_before = csv_file.stat().st_mtime_ns
        change_trace_property(bench)
        print(f"\n{TRACE_PROPERTY}=true on {SOURCE}", flush=True)
        second = run_job(bench, "(b) READ after a trace property changed")
        sent = writes.snapshot() - after_first
    csv_rewritten = csv_file.stat().st_mtime_ns != csv_before
    scim_row, csv_row = target_row(second, SCIM_TARGET), target_row(second, CSV_TARGET)
    result = {
        "users": args.users,
        "first_scim_writes": sum(after_first.values()),
        "first_seconds": round(first.seconds, 1),
        "second_seconds": round(second.seconds, 1),
        "second_scim_writes": sum(sent.values()),
        "second_scim_writes_by_method": dict(sent),
        "second_scim_updated": scim_row.get("updated"),
        "second_csv_updated": csv_row.get("updated"),
        "second_csv_file_rewritten": csv_rewritten,
    }
    print("\n" + "=" * 80)
    print(f"RESULTS: {args.users:,} users")
    print(f"  (a) initial READ: {result['first_scim_writes']:,} entities written to SCIM")
    print(
        f"  (b) READ after {TRACE_PROPERTY} changed: {result['second_scim_writes']:,} writes "
        f"sent to SCIM {dict(sent)}, statistics: SCIM updated {scim_row.get('updated')}, "
        f"CSV updated {csv_row.get('updated')}, CSV file rewritten: {csv_rewritten}"
    )
    print("JSON " + json.dumps(result))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--cache", metavar="DIR", help="reuse (or keep) the loaded directory in DIR/<users>"
    )
    args = parser.parse_args(argv)
    # What benchmarks/sync.py's loader and job runner read.
    args.groups, args.memberships, args.profile = 0, 0, None
    return args


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="provisor-rewrite-"))
    bench = Bench(args=args, work=work, data_a=work / "a", url_a=None, url_b=None)
    try:
        run_benchmark(bench)
    finally:
        if args.keep:
            print(f"(work folder kept: {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
