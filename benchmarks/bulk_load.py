"""Bulk load of the Local Identity Directory: users per second through ``POST /scim/Bulk``.

One ``provisor serve`` (default settings: SQLite with ``synchronous=FULL``, two workers; or
``--database-url`` PostgreSQL, a fresh database), ``--users`` users (default 20,000, the
realistic documents of ``benchmarks/scim_directory.py``) sent as BulkRequests of
``--bulk-size`` POST operations (default 1,000) by four client threads, each user durable
when its BulkResponse arrives. Goal (issue 20): ≥ 3,000 users/s. Run it twice with
``PYTHONPATH`` naming two versions of provisor to compare them on the same machine.

    python benchmarks/bulk_load.py
    python benchmarks/bulk_load.py --users 5000 --json bulk.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import (  # noqa: E402
    BULK_SIZE,
    LOADER_THREADS,
    SCIM_JSON,
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
    wait_until_up,
)
from benchmarks.sync import database_url, pg_admin_url  # noqa: E402

GOAL = 3000.0  # users/s


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--bulk-size", type=int, default=BULK_SIZE, help="operations a request")
    parser.add_argument("--workers", type=int, help="worker processes of provisor")
    parser.add_argument("--database-url", help="PostgreSQL server (a fresh database)")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()

    import provisor

    work = Path(tempfile.mkdtemp(prefix="provisor-bulk-load-"))
    admin = pg_admin_url(args.database_url) if args.database_url else ""
    url = database_url(args.database_url, create_database(admin)) if args.database_url else None
    backend = "PostgreSQL" if url else "SQLite"
    print(
        f"=== Bulk load: {args.users:,} users, {backend}, BulkRequests of {args.bulk_size:,}, "
        f"{LOADER_THREADS} clients; provisor from {Path(provisor.__file__).parent} ===",
        flush=True,
    )
    try:
        port = free_port()
        cmd = [executable("provisor"), "serve", "--port", str(port), "--data-dir", str(work)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        env = provisor_env(url) | {"PROVISOR_BULK_MAX_OPERATIONS": str(args.bulk_size)}
        log = work / "server.log"
        base = f"http://127.0.0.1:{port}"
        with server_process(cmd, env, log) as proc:
            wait_until_up(f"{base}/health", proc, log, timeout=120)
            credentials = json.loads((work / "initial-admin.json").read_text())
            auth = basic_auth(credentials["client_id"], credentials["client_secret"])
            clients = ThreadClients(base, {"Authorization": auth, "Accept": SCIM_JSON})
            try:
                loaded = run_loader("users", args.users, args.bulk_size, bulk_loader(clients))
            finally:
                clients.close()
            time.sleep(0.5)
    finally:
        if url:
            drop_database(admin, url.rsplit("/", 1)[1])
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    verdict = "met" if loaded.rate >= GOAL else "NOT met"
    print(
        f"\nbulk load: {loaded.users:,} users in {loaded.seconds:.1f} s = {loaded.rate:,.0f} "
        f"users/s ({backend}; goal ≥ {GOAL:,.0f}: {verdict}); failures {loaded.failures}; "
        f"load average {load:.2f}"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "users": loaded.users,
                    "seconds": round(loaded.seconds, 2),
                    "per_second": round(loaded.rate, 1),
                    "backend": backend.lower(),
                    "bulk_size": args.bulk_size,
                    "failures": loaded.failures,
                    "load_average": round(load, 2),
                }
            )
        )
    if loaded.failures:
        print(f"PROBLEMS: {loaded.failures} users not loaded: {loaded.errors[:3]}")
        sys.exit(1)


if __name__ == "__main__":
    main()
