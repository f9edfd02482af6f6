"""SQL of a job's partitions (decision 0032): created with their tasks, claimed by a worker,
committed page by page with the job's entity logs and statistics, ended with what their read
found."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, insert, select, update

from provisor.context import Context
from provisor.jobs.model import ACTIVE, Counts, Job, JobStatus
from provisor.jobs.ports import EntityLog
from provisor.jobs.store import Journal, add_entity_logs, add_statistics, live_runners
from provisor.storage import tables as t
from provisor.storage.database import Database, Transaction


class PartStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"  # read to its end (some entities may have failed)
    FAILED = "failed"  # its read (or the worker's code) failed: the job deletes nothing
    STOPPED = "stopped"  # the job was stopped, or ended without it

    @property
    def ended(self) -> bool:
        return self not in (PartStatus.QUEUED, PartStatus.RUNNING)


class PartQueue(Protocol):
    """Where a partition is handed to the workers, in the transaction that created it."""

    def enqueue_part(self, conn: Connection, job: Job, entity_type: str, number: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Part:
    """One partition of a job's read of an entity type, as last committed."""

    job_id: str
    entity_type: str
    number: int
    bounds: dict[str, Any]
    status: PartStatus = PartStatus.QUEUED
    done: int = 0  # entities committed: a retried task goes on after them
    read: int = 0
    newest: str | None = None
    source_failed: bool = False
    failed: bool = False
    fatal: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    worker: str | None = None


def _part(row: Any) -> Part:
    r = row._mapping
    return Part(
        job_id=r["job_id"],
        entity_type=r["entity_type"],
        number=r["number"],
        bounds=orjson.loads(r["bounds"]),
        status=PartStatus(r["status"]),
        done=r["done"],
        read=r["read"],
        newest=r["newest"],
        source_failed=bool(r["source_failed"]),
        failed=bool(r["failed"]),
        fatal=orjson.loads(r["fatal"]),
        errors=orjson.loads(r["error"]) if r["error"] else [],
        worker=r["worker"],
    )


def _key(part: Part) -> Any:
    c = t.job_partitions.c
    return (
        (c.job_id == part.job_id) & (c.entity_type == part.entity_type) & (c.number == part.number)
    )


class PartitionStore:
    """A tenant's job partitions (``ctx``: the job's tenant)."""

    def __init__(self, db: Database, ctx: Context, journal: Journal) -> None:
        self.db = db
        self.ctx = ctx
        self.journal = journal

    def create(
        self, job: Job, entity_type: str, bounds: Sequence[Mapping[str, Any]], queue: PartQueue
    ) -> None:
        """The partitions of a read and their tasks, in one transaction."""
        table = t.job_partitions
        with self.db.write(self.ctx) as tx:
            tx.execute(
                insert(table),
                [
                    tx.tenant_values(
                        table,
                        {
                            "job_id": job.id,
                            "entity_type": entity_type,
                            "number": number,
                            "bounds": orjson.dumps(dict(b)).decode(),
                            "status": PartStatus.QUEUED.value,
                        },
                    )
                    for number, b in enumerate(bounds)
                ],
            )
            for number in range(len(bounds)):
                queue.enqueue_part(tx.conn, job, entity_type, number)

    def of(self, job_id: str, entity_type: str) -> list[Part]:
        """The partitions of a job's read of an entity type, in order."""
        c = t.job_partitions.c
        query = (
            select(t.job_partitions)
            .where(c.job_id == job_id, c.entity_type == entity_type)
            .order_by(c.number)
        )
        with self.db.read(self.ctx) as tx:
            return [_part(r) for r in tx.execute(tx.scoped(query, t.job_partitions))]

    def claim(
        self, job_id: str, entity_type: str, number: int, worker: str, *, live_since: str
    ) -> Part | None:
        """The partition, marked running for ``worker``: one queued, or running on a worker
        that has not beaten since ``live_since`` (it died); None when it has ended or runs
        on a living worker. One whose job has ended or was asked to stop ends stopped."""
        table = t.job_partitions
        key = Part(job_id, entity_type, number, {})
        with self.db.write(self.ctx) as tx:
            query = select(table).where(_key(key))
            if tx.conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = tx.execute(tx.scoped(query, table)).first()
            if row is None or _part(row).status.ended:
                return None
            if row.status == PartStatus.RUNNING.value and row.worker in {
                r.name for r in live_runners(tx, live_since)
            }:
                return None
            going = _job_going(tx, job_id)
            status = PartStatus.RUNNING if going else PartStatus.STOPPED
            tx.execute(
                tx.scoped(update(table).where(_key(key)), table).values(
                    status=status.value, worker=worker
                )
            )
            part = _part(row)
        return part if going else None

    def live_workers(self, since: str) -> set[str]:
        """The job runners (workers) that have beaten since ``since``."""
        with self.db.read(self.ctx) as tx:
            return {r.name for r in live_runners(tx, since)}

    def going(self, job_id: str) -> bool:
        """Whether the job still runs and was not asked to stop."""
        with self.db.read(self.ctx) as tx:
            return _job_going(tx, job_id)

    def commit(
        self,
        part: Part,
        entries: Sequence[EntityLog],
        counts: Mapping[tuple[str, str, str, str], Counts],
        *,
        done: int,
        failed: bool,
    ) -> None:
        """A page of a partition: its entity logs, its statistics added to the job's and the
        entities done, in one transaction; the job shows ``Running with Error`` once an
        entity failed."""
        table = t.job_partitions
        with self.db.write(self.ctx) as tx:
            add_entity_logs(tx, part.job_id, entries)
            add_statistics(tx, part.job_id, counts)
            values: dict[str, Any] = {"done": done}
            if failed:
                values["failed"] = 1
            tx.execute(tx.scoped(update(table).where(_key(part)), table).values(**values))
            if failed and _status(tx, part.job_id) is JobStatus.RUNNING:
                self.journal.update_in(tx, part.job_id, status=JobStatus.RUNNING_WITH_ERROR)

    def end(self, part: Part) -> None:
        """What the partition's read found, as it ended (``part.status``)."""
        table = t.job_partitions
        with self.db.write(self.ctx) as tx:
            tx.execute(
                tx.scoped(update(table).where(_key(part)), table).values(
                    status=part.status.value,
                    read=part.read,
                    newest=part.newest,
                    source_failed=int(part.source_failed),
                    failed=int(part.failed),
                    fatal=orjson.dumps(part.fatal).decode(),
                    error=orjson.dumps(part.errors).decode() if part.errors else None,
                )
            )


def _status(tx: Transaction, job_id: str) -> JobStatus | None:
    query = select(t.jobs.c.status).where(t.jobs.c.id == job_id)
    value = tx.execute(tx.scoped(query, t.jobs)).scalar()
    return None if value is None else JobStatus(value)


def _job_going(tx: Transaction, job_id: str) -> bool:
    query = select(t.jobs.c.status, t.jobs.c.stop_requested).where(t.jobs.c.id == job_id)
    row = tx.execute(tx.scoped(query, t.jobs)).first()
    return row is not None and row.status in ACTIVE and not row.stop_requested
