"""Benchmark of the CSV File connector: rows per second written and read, on one core.

For N generated users (12 columns: nested, array and URN ones, ~200 bytes a row), in a
temporary folder (``--folder`` to choose the disk), it times:

* ``write``: ``create`` of every user into a missing file, then ``aclose()``; the connector
  flushes (temporary file, fsync, rename) every ``--page-size`` writes;
* ``update``: ``update`` of every tenth user, then ``aclose()`` (each flush merges the page of
  changes into a full rewrite of the file);
* ``read``: a full ``read`` of the file, page by page, into entities.

Run from the project root::

    python benchmarks/csv_connector.py --users 100000
    python benchmarks/csv_connector.py --users 20000 --page-size 5000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from provisor.connectors.base import ConnectorConfig, Role
from provisor.connectors.csv.connector import CSVConnector

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def user(i: int) -> dict[str, Any]:
    return {
        "userName": f"user{i:06d}",
        "name": {"givenName": f"Given{i % 97}", "familyName": f"Family{i % 89}"},
        "displayName": f"Given{i % 97} Family{i % 89}",
        "emails": [
            {"value": f"user{i}@example.com", "type": "work", "primary": True},
            {"value": f"u{i}@home.example.org", "type": "home"},
        ],
        "active": i % 7 != 0,
        ENTERPRISE: {"department": f"Dept {i % 31}", "employeeNumber": str(100000 + i)},
    }


def system(folder: Path, page_size: int, role: Role) -> CSVConnector:
    properties = {"csv.user.file": "users.csv", "csv.page.size": str(page_size)}
    return CSVConnector(ConnectorConfig("bench", "CSV", role, properties, {"data_dir": folder}))


async def run(users: int, page_size: int, folder: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"users": users, "page_size": page_size}
    target = system(folder, page_size, Role.TARGET)
    entities = [user(i) for i in range(users)]
    start = time.perf_counter()
    for i, entity in enumerate(entities):
        await target.create("user", entity, entity_id=f"u{i:06d}")
    await target.aclose()
    elapsed = time.perf_counter() - start
    results["write_rows_per_s"] = round(users / elapsed)
    results["file_mb"] = round((folder / "users.csv").stat().st_size / 1e6, 1)

    changed = range(0, users, 10)
    start = time.perf_counter()
    for i in changed:
        await target.update("user", f"u{i:06d}", {**entities[i], "displayName": "Changed"})
    await target.aclose()
    elapsed = time.perf_counter() - start
    results["update_rows_per_s"] = round(len(changed) / elapsed)

    source = system(folder, page_size, Role.SOURCE)
    start = time.perf_counter()
    count = 0
    async for page in source.read("user"):
        count += len(page.entities)
    elapsed = time.perf_counter() - start
    assert count == users, count
    results["read_rows_per_s"] = round(users / elapsed)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--folder", type=Path, help="where to write (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        results = asyncio.run(run(args.users, args.page_size, Path(folder)))
    if args.json:
        print(json.dumps(results))
        return
    print(f"CSV File connector, {args.users:,} users, page size {args.page_size}")
    print(f"  file          {results['file_mb']} MB")
    for key in ("write", "update", "read"):
        print(f"  {key:<12}  {results[f'{key}_rows_per_s']:>9,} rows/s")


if __name__ == "__main__":
    main()
