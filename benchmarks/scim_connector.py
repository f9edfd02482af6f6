"""Benchmark of the SCIM connector against a live ``provisor serve`` (SQLite, loopback).

It starts ``provisor serve`` in a temporary data folder, loads N users through /scim/Bulk,
then measures, through :class:`~provisor.connectors.scim.connector.SCIMConnector`:

* full read of every user (cursor paging, ``startId``/``nextId``) with pages of 100 (the
  default) and of 1,000 (``scim.page.size``): entities per second;
* creates (one POST per user): with one request at a time over one connection, and with
  ``--concurrency`` requests in flight at once on the connector's pool;
* creates with SCIM Bulk (``scim.support.bulk.operation=true``, 100 operations a request).

Run from the project root::

    python benchmarks/scim_connector.py                 # 10,000 users, 2,000 creates a mode
    python benchmarks/scim_connector.py --users 50000 --creates 5000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from provisor.connectors.base import ConnectorConfig, Role, Written
from provisor.connectors.scim.connector import SCIMConnector

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@dataclass
class Result:
    name: str
    entities: int
    seconds: float
    requests: int

    @property
    def rate(self) -> float:
        return self.entities / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def user_doc(i: int, prefix: str) -> dict[str, Any]:
    """A realistic user (~700 bytes): names, e-mails, phone, address, enterprise data."""
    name = f"{prefix}{i:06d}"
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": name,
        "name": {"givenName": f"Given{i}", "familyName": f"Family{i % 997}"},
        "displayName": f"Given{i} Family{i % 997}",
        "emails": [{"value": f"{name}@example.org", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": f"+49 30 {i:07d}", "type": "work"}],
        "addresses": [{"type": "work", "locality": "Berlin", "country": "DE"}],
        "active": True,
        ENTERPRISE: {"employeeNumber": str(i), "department": f"D{i % 50}"},
    }


@contextlib.contextmanager
def provisor_server(workers: int | None) -> Iterator[tuple[str, tuple[str, str]]]:
    """``provisor serve`` on a free port in a temporary data folder: (URL, admin)."""
    data_dir = Path(tempfile.mkdtemp(prefix="provisor-bench-connector-"))
    port = free_port()
    cmd = [sys.executable, "-m", "provisor", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir)]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    log = data_dir / "server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"provisor exited: {log.read_text(errors='replace')[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("provisor did not start within 120 s")
            time.sleep(0.2)
        admin = json.loads((data_dir / "initial-admin.json").read_text())
        yield url, (admin["client_id"], admin["client_secret"])
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(data_dir, ignore_errors=True)


def load(url: str, admin: tuple[str, str], count: int) -> float:
    """Load ``count`` users with /scim/Bulk (1,000 a request); the seconds it took."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, auth=admin, timeout=300) as client:
        for start in range(0, count, 1000):
            ops = [
                {"method": "POST", "path": "/Users", "bulkId": str(i), "data": user_doc(i, "u")}
                for i in range(start, min(count, start + 1000))
            ]
            answer = client.post("/scim/Bulk", json={"schemas": [BULK], "Operations": ops})
            answer.raise_for_status()
            failed = [op for op in answer.json()["Operations"] if str(op["status"]) != "201"]
            if failed:
                raise RuntimeError(f"bulk load failed: {failed[:3]}")
    return time.perf_counter() - started


def connector(url: str, admin: tuple[str, str], **props: str) -> SCIMConnector:
    properties = {"URL": f"{url}/scim", "User": admin[0], "Password": admin[1], **props}
    config = ConnectorConfig("bench", "benchmark", Role.TARGET, properties)
    return SCIMConnector(config)


def counting(c: SCIMConnector) -> list[int]:
    counter = [0]

    async def hook(request: httpx.Request) -> None:
        counter[0] += 1

    c.http.client.event_hooks["request"].append(hook)
    return counter


async def full_read(url: str, admin: tuple[str, str], page: int, expected: int) -> Result:
    async with connector(url, admin, **{"scim.page.size": str(page)}) as c:
        requests = counting(c)
        started = time.perf_counter()
        total = 0
        async for batch in c.read("user"):
            total += len(batch.entities)
        seconds = time.perf_counter() - started
    if total != expected:
        raise RuntimeError(f"read {total} users, expected {expected}")
    return Result(f"full read, pages of {page}", total, seconds, requests[0])


async def creates(
    url: str, admin: tuple[str, str], count: int, concurrency: int, prefix: str
) -> Result:
    async with connector(url, admin) as c:
        requests = counting(c)
        queue = iter(range(count))

        async def worker() -> None:
            for i in queue:
                await c.create("user", user_doc(i, prefix))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    label = "one at a time" if concurrency == 1 else f"{concurrency} concurrent"
    return Result(f"creates (POST), {label}", count, seconds, requests[0])


async def bulk_creates(url: str, admin: tuple[str, str], count: int, prefix: str) -> Result:
    props = {"scim.support.bulk.operation": "true", "scim.bulk.operations.max.count": "100"}
    async with connector(url, admin, **props) as c:
        requests = counting(c)
        started = time.perf_counter()
        results = await c.create_many("user", [user_doc(i, prefix) for i in range(count)])
        seconds = time.perf_counter() - started
    if not all(isinstance(r, Written) for r in results):
        raise RuntimeError("some bulk creates failed")
    return Result("creates (Bulk, 100 a request)", count, seconds, requests[0])


async def measure(args: argparse.Namespace, url: str, admin: tuple[str, str]) -> list[Result]:
    results = []
    for page in (100, 1000):
        await full_read(url, admin, page, args.users)  # warm-up (caches, connections)
        results.append(await full_read(url, admin, page, args.users))
    results.append(await creates(url, admin, args.creates, 1, "a"))
    results.append(await creates(url, admin, args.creates, args.concurrency, "b"))
    results.append(await bulk_creates(url, admin, args.creates, "c"))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000, help="users to load and read")
    parser.add_argument("--creates", type=int, default=2_000, help="users created per mode")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--workers", type=int, default=None, help="provisor server processes")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    print(f"provisor serve (SQLite); loading {args.users} users ...", flush=True)
    with provisor_server(args.workers) as (url, admin):
        seconds = load(url, admin, args.users)
        print(f"loaded in {seconds:.1f} s ({args.users / seconds:,.0f} users/s)", flush=True)
        results = asyncio.run(measure(args, url, admin))
    if args.json:
        print(json.dumps([{**r.__dict__, "rate": round(r.rate, 1)} for r in results], indent=2))
        return
    print(f"\n{'measurement':<36}{'entities':>9}{'seconds':>9}{'requests':>10}{'entities/s':>12}")
    for r in results:
        print(f"{r.name:<36}{r.entities:>9}{r.seconds:>9.2f}{r.requests:>10}{r.rate:>12,.0f}")


if __name__ == "__main__":
    main()
