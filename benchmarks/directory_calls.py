"""Benchmark of the Local Identity Directory's service calls in one process, without HTTP.

It creates ``--users`` users (userName, an e-mail, displayName) through
``Directory.create`` and then reads each ``--reads-per-user`` times through
``Directory.get``, in one thread, on a fresh SQLite database in a temporary folder (or the
PostgreSQL database of ``--database-url``), in the default tenant. It measures what the
storage layer and the directory cost per call, apart from HTTP, authentication and the load
generator: the figure to compare two versions of provisor on one machine, e.g.

    PYTHONPATH=/path/to/other/checkout/src python benchmarks/directory_calls.py
    python benchmarks/directory_calls.py --users 5000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--reads-per-user", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    os.environ.setdefault("PROVISOR_SECRET_HASH_ITERATIONS", "1")  # no client is checked
    os.environ.setdefault("PROVISOR_SECRET_HASH_MEMORY_KIB", "32")

    import provisor
    from provisor.context import Context
    from provisor.runtime import Services, initialise
    from provisor.settings import Settings
    from provisor.types import EntityType

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder), database_url=args.database_url)
        initialise(settings)
        services = Services.open(settings)
        ctx = Context.administrator("benchmark")
        try:
            started = time.perf_counter()
            ids = []
            for i in range(args.users):
                body = {
                    "schemas": [USER],
                    "userName": f"user{i}",
                    "emails": [{"value": f"user{i}@example.org"}],
                    "displayName": f"User {i}",
                }
                made = services.directory.create(ctx, EntityType.USER, body, "http://x/scim")
                assert made.body is not None
                ids.append(orjson.loads(made.body)["id"])
            created = args.users / (time.perf_counter() - started)
            reads = args.users * args.reads_per_user
            started = time.perf_counter()
            for i in range(reads):
                services.directory.get(ctx, EntityType.USER, ids[i % len(ids)], "http://x/scim")
            read = reads / (time.perf_counter() - started)
        finally:
            services.close()
    where = "PostgreSQL" if args.database_url else "SQLite"
    print(f"provisor from {Path(provisor.__file__).parent}, {where}", file=sys.stderr)
    print(f"create: {created:,.0f} users/s ({args.users:,})")
    print(f"get:    {read:,.0f} reads/s ({reads:,})")


if __name__ == "__main__":
    main()
