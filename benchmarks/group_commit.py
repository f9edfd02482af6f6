"""Group commit in one process, without HTTP: concurrent creates, then PATCHes, through the
Local Identity Directory on SQLite (``synchronous=FULL``).

``--threads`` threads (default 8, as many requests at once as a worker of ``provisor serve``
under 16 connections) each create ``--users`` users, then each PATCHes its users' displayName
once. Per operation: requests/s (wall), requests per CPU second of the process (steadier than
wall time on a shared machine) and requests per durable commit (1.0 without group commit).
Run it with ``PYTHONPATH`` naming two versions of provisor to compare them.

    python benchmarks/group_commit.py
    python benchmarks/group_commit.py --threads 16 --users 300 --json group-commit.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.scim_directory import user_doc  # noqa: E402

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--users", type=int, default=150, help="created (then patched) a thread")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    import provisor
    from provisor.context import Context
    from provisor.runtime import Services, initialise
    from provisor.settings import Settings
    from provisor.types import EntityType

    work = Path(tempfile.mkdtemp(prefix="provisor-group-commit-"))
    settings = Settings(data_dir=work)
    initialise(settings)
    services = Services.open(settings)
    ctx = Context.administrator("bench")
    base = "http://127.0.0.1/scim"
    ids: list[list[str]] = [[] for _ in range(args.threads)]
    print(
        f"=== group commit: {args.threads} threads x {args.users} users, SQLite; "
        f"provisor from {Path(provisor.__file__).parent} ===",
        flush=True,
    )

    def create(k: int) -> None:
        for i in range(args.users):
            name = f"u{k}-{i}"
            doc = user_doc(k * args.users + i, name, f"{name}@example.com")
            ids[k].append(services.directory.create(ctx, EntityType.USER, doc, base).id)

    def patch(k: int) -> None:
        for i, user_id in enumerate(ids[k]):
            body = {
                "schemas": [PATCH_OP],
                "Operations": [{"op": "replace", "path": "displayName", "value": f"P {i}"}],
            }
            services.directory.patch(ctx, EntityType.USER, user_id, body, base)

    results: dict[str, dict[str, Any]] = {}
    try:
        for operation, work_of in (("post", create), ("patch", patch)):
            writers = getattr(services.db, "writers", None)  # absent before group commit
            commits = writers.commits if writers is not None else 0
            wall, cpu = time.perf_counter(), time.process_time()
            threads = [threading.Thread(target=work_of, args=(k,)) for k in range(args.threads)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            done = args.threads * args.users
            made = writers.commits - commits if writers is not None else done
            results[operation] = {
                "per_second": round(done / wall, 1),
                "per_cpu_second": round(done / cpu, 1),
                "per_commit": round(done / max(made, 1), 2),
            }
            r = results[operation]
            print(
                f"  {operation.upper():5} {r['per_second']:8,.0f} req/s  "
                f"{r['per_cpu_second']:8,.0f} req per CPU second  "
                f"{r['per_commit']:5.1f} req per commit",
                flush=True,
            )
    finally:
        services.close()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"\nload average {load:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load_average": round(load, 2)}))


if __name__ == "__main__":
    main()
