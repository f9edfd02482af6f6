"""Benchmark of one job on many workers (decision 0032): the same full job with 1 and with 4
``provisor worker`` processes, in one run.

The scenario: ``--users`` users in the Local Identity Directory of a fresh PostgreSQL
database, one source (the directory, pages of ``--page-size``) and one SCIM target: a
server on loopback, started here, that answers each request after ``--latency`` seconds (20
ms: a model of a SaaS API; it keeps what it is sent and counts the creates). Each run starts
from nothing at the target (its operational data reset, its store emptied), starts the
workers (``provisor worker --concurrency C``, with ``PROVISOR_JOB_PARTITION_SIZE``), waits
until each has said it is alive, starts a READ job and times it until it has ended:

a) 1 worker, the job not split (``PROVISOR_JOB_PARTITION_SIZE=0``): a job on one worker, as
   before partitions;
b) 1 worker, the job split into partitions of ``--partition-size``;
c) ``--workers`` workers (4), the job split the same way.

Printed: each run's time and rate, every user created once at the target, and the speed-up
of (c) over (a) and over (b), marked against the goal (>= 3x). With a 20 ms target the work
is latency-bound: a worker waits on the target far more than it computes, which is the
point; the machine's load average is printed with the figures.

Run it from the project root (the URL's server must let its user create databases; a fresh
one is created and dropped at the end)::

    python3 benchmarks/partitions.py --users 4000
    python3 benchmarks/partitions.py --users 2000 --json /tmp/partitions.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from provisor.context import Context
from provisor.jobs.model import JobStatus
from provisor.runtime import Services, prepare
from provisor.settings import Settings
from provisor.systems.model import NewSystem
from provisor.timestamps import parse_datetime
from provisor.types import EntityType

ADMIN = Context.administrator("benchmark")
GOAL = 3.0
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class SlowTarget:
    """A SCIM target answering every request after ``latency`` seconds (asyncio, HTTP/1.1
    keep-alive), in a thread of its own; it keeps users and counts creates by userName."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.users: dict[str, dict[str, Any]] = {}
        self.creates: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512)
        )
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def clear(self) -> None:
        self.users.clear()
        self.creates.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                for line in lines[1:]:
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                await asyncio.sleep(self.latency)
                status, answer = self._answer(method, path, body)
                data = json.dumps(answer).encode() if answer is not None else b""
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/scim+json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        route = path.split("?", 1)[0].rstrip("/")
        last = route.rsplit("/", 1)[-1]
        if method == "POST" and last in ("Users", "Groups"):
            doc = json.loads(body)
            doc["id"] = str(uuid.uuid4())
            self.users[doc["id"]] = doc
            self.creates[doc.get("userName") or doc.get("displayName") or doc["id"]] += 1
            return 201, doc
        if method in ("PUT", "PATCH") and last in self.users:
            doc = json.loads(body) if method == "PUT" else self.users[last]
            doc["id"] = last
            self.users[last] = doc
            return 200, doc
        if method == "DELETE" and last in self.users:
            del self.users[last]
            return 204, None
        if method == "GET" and last in ("Users", "Groups"):
            schema = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
            return 200, {"schemas": [schema], "totalResults": 0, "Resources": []}
        if method == "GET" and last in self.users:
            return 200, self.users[last]
        return 404, {"status": "404", "detail": "not found"}


@contextlib.contextmanager
def database(url: str) -> Iterator[str]:
    """A fresh database on the server of ``url``; its URL (dropped at the end)."""
    name = f"partitions_bench_{uuid.uuid4().hex[:10]}"
    server = make_url(url)
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def workers(
    settings: Settings, count: int, concurrency: int, partition_size: int
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = dict(os.environ)
    env["PROVISOR_DATA_DIR"] = str(settings.data_dir)
    env["PROVISOR_DATABASE_URL"] = str(settings.database_url)
    env["PROVISOR_JOB_PARTITION_SIZE"] = str(partition_size)
    env["PROVISOR_LOG_LEVEL"] = "warning"
    env["PROVISOR_JOB_NICE"] = "0"  # no server on this host to yield to
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "provisor", "worker", "--concurrency", str(concurrency)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for(condition: Any, what: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run(
    services: Services,
    target: SlowTarget,
    args: argparse.Namespace,
    *,
    count: int,
    partition_size: int,
) -> dict[str, Any]:
    services.jobs.reset_system(ADMIN, "Slow SaaS")
    target.clear()
    with workers(services.settings, count, args.concurrency, partition_size):
        wait_for(lambda: len(services.jobs.runners(ADMIN)) == count, "the workers to beat", 300)
        started = time.monotonic()
        job = services.jobs.start(ADMIN, "LID")
        ended = wait_for(
            lambda: (j := services.jobs.get(ADMIN, job.id)).status.finished and j,
            "the job",
            args.timeout,
        )
        seconds = time.monotonic() - started
    queued = _seconds(ended.created, ended.started)
    running = _seconds(ended.started, ended.ended)
    statistics = {f"{s.system_name}/{s.entity_type}": s.counts.to_dict() for s in ended.statistics}
    once = sorted(Counter(target.creates.values()).items())
    result = {
        "workers": count,
        "partition_size": partition_size,
        "seconds": round(seconds, 2),
        "queued_seconds": round(queued, 2),
        "running_seconds": round(running, 2),
        "users_per_second": round(args.users / seconds, 1),
        "status": ended.status.value,
        "statistics": statistics,
        "creates_per_user": {str(k): v for k, v in once},
        "load": os.getloadavg()[0],
    }
    ok = ended.status is JobStatus.SUCCESS and once == [(1, args.users)]
    split = f"partitions of {partition_size}" if partition_size else "not split"
    print(
        f"  {count} worker{'s' if count > 1 else ' '}, {split:<20} {seconds:7.2f} s "
        f"{args.users / seconds:8.1f} users/s  {ended.status.value} (queued {queued:.2f} s)"
        f"{'' if ok else '  (NOT every user created once: ' + str(once) + ')'}",
        flush=True,
    )
    result["ok"] = ok
    return result


def _seconds(start: str | None, end: str | None) -> float:
    if not start or not end:
        return 0.0
    return (parse_datetime(end) - parse_datetime(start)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4, help="each worker's --concurrency")
    parser.add_argument("--partition-size", type=int, default=250)
    parser.add_argument("--page-size", type=int, default=50, help="idds.page.size")
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    parser.add_argument(
        "--write-concurrency", type=int, default=1, help="ips.write.concurrency of the target"
    )
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = parser.parse_args()

    target = SlowTarget(args.latency)
    with tempfile.TemporaryDirectory() as folder, database(args.database_url) as url:
        settings = Settings(data_dir=Path(folder), database_url=url)
        prepare(settings)
        services = Services.open(settings)
        try:
            print(f"{args.users} users into the Local Identity Directory...", flush=True)
            for i in range(args.users):
                body = {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": f"user{i:06d}",
                    "name": {"givenName": "Given", "familyName": f"Family{i}"},
                    "emails": [{"value": f"user{i:06d}@example.com", "primary": True}],
                }
                services.directory.create(ADMIN, EntityType.USER, body, "/scim")
            source = services.systems.create(
                ADMIN,
                NewSystem.model_validate(
                    {
                        "name": "LID",
                        "type": "local-identity-directory",
                        "role": "source",
                        "properties": {"idds.page.size": str(args.page_size)},
                    }
                ),
            )
            services.systems.create(
                ADMIN,
                NewSystem.model_validate(
                    {
                        "name": "Slow SaaS",
                        "type": "scim",
                        "role": "target",
                        "sourceSystemIds": [source.id],
                        "properties": {
                            "URL": f"http://127.0.0.1:{target.port}/scim",
                            "Authentication": "NoAuthentication",
                            "ips.write.concurrency": str(args.write_concurrency),
                        },
                    }
                ),
            )
            print(
                f"one READ job, {args.users} users, a SCIM target answering after "
                f"{args.latency * 1000:.0f} ms (ips.write.concurrency {args.write_concurrency}),"
                f" workers at --concurrency {args.concurrency}; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            unsplit = run(services, target, args, count=1, partition_size=0)
            one = run(services, target, args, count=1, partition_size=args.partition_size)
            many = run(
                services, target, args, count=args.workers, partition_size=args.partition_size
            )
        finally:
            services.close()
    over_unsplit = unsplit["seconds"] / many["seconds"]
    over_one = one["seconds"] / many["seconds"]
    met = over_one >= GOAL
    print(
        f"speed-up of {args.workers} workers: x{over_one:.2f} over 1 worker (same partitions) "
        f"[goal >= x{GOAL:.0f}: {'met' if met else 'NOT met'}], x{over_unsplit:.2f} over the "
        f"unsplit job on 1 worker; load {os.getloadavg()[0]:.2f}"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "users": args.users,
                    "latency": args.latency,
                    "runs": [unsplit, one, many],
                    "speedup_over_one_worker": round(over_one, 2),
                    "speedup_over_unsplit": round(over_unsplit, 2),
                    "goal": GOAL,
                    "met": met,
                },
                indent=2,
            )
        )
    if not (unsplit["ok"] and one["ok"] and many["ok"]):
        raise SystemExit("a run did not create every user exactly once")


if __name__ == "__main__":
    main()
