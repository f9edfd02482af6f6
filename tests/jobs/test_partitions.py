"""One job on many workers (decision 0032), on PostgreSQL: a full read split into partitions
of the Local Identity Directory, each run as its own task, joined into one job. Here the
tasks are run in this process, in the order a test wants; ``provisor worker`` processes
(one of them killed mid-partition): tests/integration/test_partitions_workers.py."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from provisor.context import Context
from provisor.jobs.model import Action, Job, JobStatus
from provisor.jobs.partstore import PartitionStore, PartStatus
from provisor.runtime import Services, prepare
from provisor.settings import Settings
from provisor.storage import tables as t
from provisor.timestamps import now
from provisor.types import EntityType
from tests.jobs.conftest import CTX, add_users, lid_source, stats, system
from tests.jobs.test_workers import wait_for, workers
from tests.security.test_exactly_once import _PlainSCIM

ADMIN = Context.administrator("test")
WORKER = Context.system("worker")
USERS = 60
PAGE = 10
SIZE = 20  # entities per partition: 60 users, three partitions


class _CountingSCIM(_PlainSCIM):
    """exactly-once's SCIM target that checks nothing (a second create is a second user),
    counting creates; each server its own subclass."""

    creates: Counter[str]

    def stored(self, body: dict[str, Any]) -> None:
        self.creates[body["userName"]] += 1


def _target() -> tuple[ThreadingHTTPServer, type[_CountingSCIM]]:
    handler = type("Target", (_CountingSCIM,), {"users": {}, "creates": Counter()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, handler


@dataclass
class _Queue:
    """The task queue, kept here: the tasks deferred, run by the test."""

    jobs: list[str] = field(default_factory=list)
    parts: list[tuple[str, str, int]] = field(default_factory=list)

    def enqueue(self, conn: Connection, job: Job) -> None:
        self.jobs.append(job.id)

    def enqueue_part(self, conn: Connection, job: Job, entity_type: str, number: int) -> None:
        self.parts.append((job.id, entity_type, number))


@pytest.fixture
def services(pg_database: str, tmp_path: Path) -> Iterator[Services]:
    settings = Settings(data_dir=tmp_path, database_url=pg_database)
    prepare(settings)
    opened = Services.open(settings)
    opened.jobs.queue = _Queue()
    opened.jobs.partition_size = SIZE
    add_users(opened, *(f"p{i:03d}" for i in range(USERS)))
    yield opened
    opened.close()


@pytest.fixture
def targets() -> Iterator[list[tuple[str, type[_CountingSCIM]]]]:
    servers = [_target(), _target()]
    yield [(f"http://127.0.0.1:{s.server_port}/scim", h) for s, h in servers]
    for server, _ in servers:
        server.shutdown()
        server.server_close()


def _sync(services: Services, name: str, url: str) -> None:
    source = lid_source(services, name, **{"idds.page.size": str(PAGE)})
    system(
        services,
        name=f"{name} target",
        type="scim",
        role="target",
        sourceSystemIds=[source.id],
        properties={"URL": url, "Authentication": "NoAuthentication"},
    )


async def _run(
    services: Services, source: str, *, fail: int | None = None, tasks: bool = True
) -> Job:
    """A job of ``source``, its partitions run here as they are deferred, by a worker of
    their own (``fail``: the partition of users ended failed, as a read failure leaves it,
    instead of run); ``tasks=False``: none run here, the job's runner takes them all."""
    queue = services.jobs.queue
    assert isinstance(queue, _Queue)
    services.jobs.runner_takes_partitions = not tasks
    job = services.jobs.start(ADMIN, source)
    claimed = services.jobs.claim(WORKER, "runner", job.id)
    assert claimed is not None
    runner = asyncio.create_task(services.jobs.run(WORKER, claimed))
    if not tasks:
        return await _ended(services, runner, job.id)
    done: set[tuple[str, str, int]] = set()
    while not runner.done():
        waiting = [p for p in queue.parts if p[0] == job.id and p not in done]
        for part in waiting:
            done.add(part)
        runs = []
        for job_id, entity_type, number in waiting:
            if number == fail and entity_type == "user":
                parts = services.jobs.partitions(WORKER)
                claimed_part = parts.claim(job_id, entity_type, number, "x", live_since=now())
                assert claimed_part is not None
                ended = replace(claimed_part, status=PartStatus.FAILED, errors=["Reading failed."])
                parts.end(ended)
                continue
            runs.append(services.jobs.run_part(WORKER, job_id, entity_type, number, "w"))
        await asyncio.gather(*runs)
        await asyncio.sleep(0.05)
    return await _ended(services, runner, job.id)


async def _ended(services: Services, runner: asyncio.Task[Any], job_id: str) -> Job:
    await runner
    return services.jobs.get(ADMIN, job_id)


def _parts(services: Services, job_id: str) -> list[Any]:
    with services.db.unscoped_read() as conn:
        query = select(t.job_partitions).where(t.job_partitions.c.job_id == job_id)
        return list(conn.execute(query.order_by(t.job_partitions.c.number)))


def _logged(services: Services, job_id: str, action: Action) -> int:
    return services.jobs.entity_logs(ADMIN, job_id, [action.value])[1]


def test_a_split_job_writes_and_counts_what_an_unsplit_job_does(
    services: Services, targets: list[tuple[str, type[_CountingSCIM]]]
) -> None:
    (whole_url, whole), (split_url, split) = targets
    _sync(services, "Whole", whole_url)
    _sync(services, "Split", split_url)
    services.jobs.partition_size = 0
    unsplit = asyncio.run(_run(services, "Whole"))
    services.jobs.partition_size = SIZE
    job = asyncio.run(_run(services, "Split"))

    assert unsplit.status is JobStatus.SUCCESS and job.status is JobStatus.SUCCESS
    assert _parts(services, unsplit.id) == []
    parts = _parts(services, job.id)
    assert [(p.entity_type, p.number, p.status, p.read) for p in parts] == [
        ("user", n, "done", SIZE) for n in range(USERS // SIZE)
    ]
    assert (
        stats(job, "Split")
        == stats(unsplit, "Whole")
        == {"read": USERS}
        | {k: 0 for k in ("skipped", "failed", "created", "updated", "deleted", "unchanged")}
    )
    assert stats(job, "Split target") == stats(unsplit, "Whole target")
    assert stats(job, "Split target")["created"] == USERS
    assert _logged(services, job.id, Action.CREATED) == USERS  # one job's entity logs
    assert sorted(split.creates.values()) == sorted(whole.creates.values()) == [1] * USERS
    assert {u["userName"] for u in split.users.values()} == set(whole.creates)

    again = asyncio.run(_run(services, "Split"))  # nothing changed: nothing written
    assert stats(again, "Split target")["unchanged"] == USERS
    assert sum(split.creates.values()) == USERS


def test_a_job_runner_runs_the_partitions_no_worker_takes(
    services: Services, targets: list[tuple[str, type[_CountingSCIM]]]
) -> None:
    url, target = targets[0]
    _sync(services, "Split", url)
    job = asyncio.run(_run(services, "Split", tasks=False))
    assert job.status is JobStatus.SUCCESS
    parts = _parts(services, job.id)
    assert [(p.status, p.worker) for p in parts] == [("done", "runner")] * (USERS // SIZE)
    assert stats(job, "Split target")["created"] == USERS
    assert sorted(target.creates.values()) == [1] * USERS


def test_a_stopped_split_job_stops_its_partitions_and_deletes_nothing(
    services: Services, targets: list[tuple[str, type[_CountingSCIM]]]
) -> None:
    url, target = targets[0]
    _sync(services, "Split", url)
    services.jobs.runner_takes_partitions = True
    job = services.jobs.start(ADMIN, "Split")
    claimed = services.jobs.claim(WORKER, "runner", job.id)
    assert claimed is not None
    services.jobs.stop(ADMIN, job.id)  # before its runner reads a page
    asyncio.run(services.jobs.run(WORKER, claimed))
    ended = services.jobs.get(ADMIN, job.id)
    assert ended.status is JobStatus.MANUALLY_TERMINATED
    assert [p.status for p in _parts(services, job.id)] == ["stopped"] * (USERS // SIZE)
    assert "nothing was deleted" in (ended.outcome or "")
    assert target.creates == Counter()


def test_a_full_read_deletes_after_every_partition_read_to_its_end(
    services: Services, targets: list[tuple[str, type[_CountingSCIM]]]
) -> None:
    url, target = targets[0]
    _sync(services, "Split", url)
    asyncio.run(_run(services, "Split"))
    users = _directory_users(services)
    for user_id in users[:2]:
        services.directory.delete(CTX, EntityType.USER, user_id)

    failing = asyncio.run(_run(services, "Split", fail=1))  # one partition's read failed
    assert failing.status is JobStatus.FINISHED_WITH_ERROR
    assert stats(failing, "Split target")["deleted"] == 0
    assert len(target.users) == USERS, "nothing deleted"
    assert "Reading failed." in (failing.error or "")
    assert "had failures" in (failing.outcome or "")

    job = asyncio.run(_run(services, "Split"))
    assert job.status is JobStatus.SUCCESS
    assert stats(job, "Split target")["deleted"] == 2
    assert len(target.users) == USERS - 2


def test_a_partition_whose_last_results_cannot_be_stored_fails_and_holds_the_deletions(
    services: Services,
    targets: list[tuple[str, type[_CountingSCIM]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, target = targets[0]
    _sync(services, "Split", url)
    asyncio.run(_run(services, "Split"))
    for user_id in _directory_users(services)[:2]:
        services.directory.delete(CTX, EntityType.USER, user_id)
    store = PartitionStore.commit

    def commit(self: PartitionStore, part: Any, entries: Any, counts: Any, **kw: Any) -> None:
        if part.entity_type == "user" and part.number == 1 and not entries and not counts:
            raise OSError("the database went away")  # the commit after the last page
        store(self, part, entries, counts, **kw)

    monkeypatch.setattr(PartitionStore, "commit", commit)
    job = asyncio.run(_run(services, "Split"))

    assert job.status is JobStatus.FINISHED_WITH_ERROR
    assert "could not store a partition's last results" in (job.error or "")
    assert "the database went away" not in (job.error or "")  # the server log has it
    assert stats(job, "Split target")["deleted"] == 0
    assert len(target.users) == USERS, "nothing deleted"


def _directory_users(services: Services) -> list[str]:
    with services.db.unscoped_read() as conn:
        return list(conn.execute(select(t.users.c.id).order_by(t.users.c.id)).scalars())


# -- provisor worker processes, one killed mid-partition ----------------------------------------

DELAY = 0.02  # seconds per create: a partition of 40 users lasts about a second


class _SlowCountingSCIM(_CountingSCIM):
    def do_POST(self) -> None:
        time.sleep(DELAY)
        super().do_POST()


@pytest.mark.slow
def test_a_worker_killed_mid_partition_loses_and_duplicates_nothing(
    pg_database: str, tmp_path: Path
) -> None:
    users = 200
    settings = Settings(data_dir=tmp_path, database_url=pg_database)
    prepare(settings)
    services = Services.open(settings)
    handler: type[_SlowCountingSCIM] = type(
        "Target", (_SlowCountingSCIM,), {"users": {}, "creates": Counter()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        add_users(services, *(f"k{i:03d}" for i in range(users)))
        source = lid_source(services, **{"idds.page.size": "20"})
        system(
            services,
            name="Slow",
            type="scim",
            role="target",
            sourceSystemIds=[source.id],
            properties={
                "URL": f"http://127.0.0.1:{server.server_port}/scim",
                "Authentication": "NoAuthentication",
                "ips.write.concurrency": "1",
            },
        )
        # one job's runner or one partition at a time each (the job's runner takes the
        # partitions no other worker has taken)
        with workers(
            settings, 3, "--concurrency", "1", PROVISOR_JOB_PARTITION_SIZE="40"
        ) as processes:
            job = services.jobs.start(ADMIN, "LID")
            runner = wait_for(lambda: _job_worker(services, job.id), "a worker to run the job", 120)

            def mid_partition() -> Any:
                parts = _parts(services, job.id)
                going = [p for p in parts if p.status == "running" and p.worker != runner]
                return next((p for p in going if p.done), None)

            part = wait_for(
                mid_partition, "a partition with a page committed, not the runner's", 120
            )
            pid = int(part.worker.rsplit(":", 1)[1])
            victim = next(p for p in processes if p.pid == pid)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            ended = wait_for(
                lambda: (j := services.jobs.get(ADMIN, job.id)).status.finished and j,
                "the job to end",
                180,
            )
        parts = _parts(services, job.id)
        resumed = next(p for p in parts if p.number == part.number)
        assert resumed.status == "done" and resumed.worker != part.worker, "retried elsewhere"
        assert [p.status for p in parts] == ["done"] * (users // 40)
        assert ended.status is JobStatus.SUCCESS
        assert sorted(handler.creates.values()) == [1] * users, "each user created once"
        assert stats(ended, "LID")["read"] == users
        assert stats(ended, "Slow")["created"] == users
        assert _logged(services, job.id, Action.CREATED) == users
    finally:
        services.close()
        server.shutdown()
        server.server_close()


def _job_worker(services: Services, job_id: str) -> str | None:
    with services.db.unscoped_read() as conn:
        return conn.execute(select(t.jobs.c.worker).where(t.jobs.c.id == job_id)).scalar()
