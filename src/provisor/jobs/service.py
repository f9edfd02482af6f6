"""Starting, stopping, running and reporting jobs; resetting what provisor knows.

A job is a row first (``Queued``); an executor claims it (``Running``) and runs it. One job
per source system runs at a time: a start while one runs queues a second one (at most one
waits), as *Run Now* does during a scheduled run (spec §3.7).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

from provisor.connectors.base import ConnectorConfig, Role, Unusable
from provisor.context import Context as _Context
from provisor.errors import (
    ConfigError,
    ConflictError,
    InvalidTransformationError,
    NotFoundError,
    ProvisorError,
)
from provisor.jobs import loops
from provisor.jobs import validate as validation
from provisor.jobs.failures import unexpected
from provisor.jobs.locking import LOCK_SECONDS
from provisor.jobs.model import Job, JobStatus, JobType, Trigger
from provisor.jobs.plan import Participant, digest
from provisor.jobs.ports import Hold
from provisor.jobs.runner import ENTITY_TYPES, Runner
from provisor.storage import jobs as store
from provisor.storage import tables as t
from provisor.storage.database import Database
from provisor.storage.jobs import Journal, OperationalStore
from provisor.storage.locks import EntityLockStore
from provisor.systems.model import System
from provisor.systems.service import SystemService
from provisor.timestamps import format_datetime, now, parse_datetime
from provisor.transform import Transformation

_SYSTEMS_CTX = _Context.system("jobs")  # until this module takes a ctx (issue 15)

RETENTION_DAYS = (7, 14, 30)
STALE_SECONDS = 60  # a running job whose worker has not beaten for this long is restarted


class JobQueue(Protocol):
    """Where a queued job is handed to the workers (PostgreSQL: procrastinate), in the
    transaction that created it."""

    def enqueue(self, conn: Connection, job: Job) -> None: ...


class JobService:
    def __init__(
        self,
        db: Database,
        systems: SystemService,
        *,
        queue: JobQueue | None = None,
        stale_seconds: int = STALE_SECONDS,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        self.db = db
        self.systems = systems
        self.opdata = OperationalStore(db)
        self.locks = EntityLockStore(db)
        self.lock_seconds = lock_seconds
        self.journal = Journal(db)
        self.queue = queue
        self.stale_seconds = stale_seconds

    # -- starting and stopping ------------------------------------------------------------------

    def start(
        self,
        source: str,
        *,
        type: JobType = JobType.READ,
        trigger: Trigger = Trigger.IMMEDIATE,
        triggered_by: str,
        options: dict[str, Any] | None = None,
        queue_if_running: bool = True,
    ) -> Job:
        """Create a job for a source system; ConflictError when it cannot wait its turn."""
        system = self.systems.get(_SYSTEMS_CTX, source)
        if system.role is not Role.SOURCE:
            raise ConfigError(f"{system.name} is a {system.role} system: jobs run on sources.")
        if not system.enabled:
            raise ConfigError(f"{system.name} is disabled: enable it to run jobs.")
        job_id = str(uuid.uuid4())
        job = Job(
            id=job_id,
            source_id=system.id,
            source_name=system.name,
            type=type,
            trigger=trigger,
            triggered_by=triggered_by,
            status=JobStatus.QUEUED,
            read_mode=None,
            created=now(),
            chain_id=job_id,
        )
        with self.db.write() as conn:
            active = store.active_jobs(conn, system.id)
            if any(j.status is JobStatus.QUEUED for j in active):
                raise ConflictError(
                    f"A job of {system.name} is already waiting to run: "
                    f"{next(j.id for j in active if j.status is JobStatus.QUEUED)}."
                )
            if active and not queue_if_running:
                raise ConflictError(f"A job of {system.name} is running: {active[0].id}.")
            store.insert_job(conn, job, options or {})
            if self.queue is not None:
                self.queue.enqueue(conn, job)
        return job

    def stop(self, job_id: str) -> Job:
        """Ask a job to stop at its next safe point (a queued one never starts)."""
        with self.db.write() as conn:
            job = store.get_job(conn, job_id, with_statistics=False)
            if job is None:
                raise NotFoundError(f"No job {job_id!r}.")
            if job.status is JobStatus.QUEUED:
                store.update_job(
                    conn,
                    job_id,
                    status=JobStatus.MANUALLY_TERMINATED,
                    ended=now(),
                    stop_requested=1,
                    outcome="Stopped before it started.",
                )
            elif job.status.active:
                store.update_job(conn, job_id, stop_requested=1)
            else:
                raise ConflictError(f"Job {job_id} has ended ({job.status}).")
        return self.get(job_id)

    # -- reading --------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        with self.db.read() as conn:
            job = store.get_job(conn, job_id)
        if job is None:
            raise NotFoundError(f"No job {job_id!r}.")
        return job

    def all(
        self,
        *,
        source: str | None = None,
        status: str | None = None,
        type: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[Job], int]:
        source_id = self.systems.get(_SYSTEMS_CTX, source).id if source else None
        with self.db.read() as conn:
            return store.list_jobs(
                conn, source_id=source_id, status=status, type=type, offset=offset, limit=limit
            )

    def entity_logs(
        self,
        job_id: str,
        actions: Sequence[str] | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        self.get(job_id)
        with self.db.read() as conn:
            return store.entity_logs(conn, job_id, actions, offset=offset, limit=limit)

    # -- running --------------------------------------------------------------------------------

    def claim(self, worker: str, job_id: str | None = None) -> Job | None:
        """The oldest queued job (or ``job_id``) that may run now, marked running for
        ``worker``; None when there is none."""
        with self.db.write() as conn:
            return store.claim_next(conn, worker, now(), job_id)

    async def run_queued(self, job_id: str, worker: str) -> JobStatus | None:
        """Run a job the task queue hands over: claimed when queued; continued in a new
        job of its chain when its worker died while running it. None: nothing to run."""
        job = await asyncio.to_thread(self.claim, worker, job_id)
        if job is None:
            job = await asyncio.to_thread(self._take_over, job_id, worker)
        return None if job is None else await self.run(job)

    def is_orphan(self, job_id: str) -> bool:
        """Whether no worker runs the job any more: ended, gone, or its heartbeat stale."""
        with self.db.read() as conn:
            job = store.get_job(conn, job_id, with_statistics=False)
            if job is None or not job.status.active or job.status is JobStatus.QUEUED:
                return True
            return bool(store.stale_jobs(conn, self._stale_before(), job_id))

    def _take_over(self, job_id: str, worker: str) -> Job | None:
        with self.db.write() as conn:
            stale = store.stale_jobs(conn, self._stale_before(), job_id)
            if not stale:
                return None
            successor = self._restart(conn, stale[0])
            return store.claim_next(conn, worker, now(), successor.id)

    def _stale_before(self) -> str:
        return format_datetime(parse_datetime(now()) - timedelta(seconds=self.stale_seconds))

    async def run(self, job: Job) -> JobStatus:
        """Run a claimed job to its end; never raises for what goes wrong inside it."""
        try:
            runner = await asyncio.to_thread(self._runner, job)
        except (ProvisorError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            await asyncio.to_thread(
                self.journal.set_status,
                job.id,
                JobStatus.FINISHED_WITH_ERROR,
                ended=now(),
                error=f"The job could not start: {message}",
            )
            return JobStatus.FINISHED_WITH_ERROR
        try:
            return await runner.run()
        except Exception as exc:
            await asyncio.to_thread(
                self.journal.set_status,
                job.id,
                JobStatus.FINISHED_WITH_ERROR,
                ended=now(),
                error=f"The job failed on {unexpected(exc, job.id)}.",
            )
            return JobStatus.FINISHED_WITH_ERROR

    def chain_in_progress(self, source_id: str) -> str | None:
        """The chain of the source's oldest job running or waiting to run, if any."""
        with self.db.read() as conn:
            active = store.active_jobs(conn, source_id)
        return active[0].chain_id if active else None

    def _runner(self, job: Job) -> Runner:
        source = self.systems.get(_SYSTEMS_CTX, job.source_id)
        everyone = self.systems.all(_SYSTEMS_CTX)[0]
        with self.db.read() as conn:
            options, checkpoint = store.job_options(conn, job.id)
        return Runner(
            job,
            self.participant(source, "read"),
            self.writers(targets_of(source, everyone), everyone),
            self.opdata,
            self.journal,
            options=options,
            checkpoint=checkpoint,
            systems_by_name={s.name: s.id for s in everyone},
            heartbeat_seconds=min(10.0, self.stale_seconds / 4),
            locks=self.locks,
            lock_seconds=self.lock_seconds,
        )

    def writers(self, targets: Sequence[System], everyone: Sequence[System]) -> list[Participant]:
        """Targets ready to write; those whose back-end a source reads too keep echoes."""
        read = {self.endpoint(s) for s in everyone if s.role is Role.SOURCE} - {None}
        writers = [self.participant(target, "write") for target in targets]
        for writer, target in zip(writers, targets, strict=True):
            endpoint = self.endpoint(target)
            writer.echo = endpoint if endpoint in read else None
        return writers

    def endpoint(self, system: System) -> str | None:
        return loops.endpoint_of(system.type.prefix, system.properties)

    def participant(self, system: System, kind: str) -> Participant:
        """A system ready for a job; a target whose connector cannot be built takes part as
        ``Unusable`` (its entities fail with the reason, the other targets go on)."""
        # no credentials
        properties = self.systems.transformation_properties(_SYSTEMS_CTX, system.id)
        text = self.systems.transformation(_SYSTEMS_CTX, system.id, kind).text
        try:
            transformation = Transformation(text, properties)
        except InvalidTransformationError as exc:  # e.g. a property it names was removed
            where = f"the {kind} transformation of {system.name}"
            raise InvalidTransformationError([f"{where}: {p}" for p in exc.problems]) from None
        try:
            connector = self.systems.connector(_SYSTEMS_CTX, system.id)
        except ConfigError as exc:
            if kind == "read":
                raise
            config = ConnectorConfig(system.id, system.name, system.role, {})
            connector = Unusable(config, f"{system.name}: {exc.message}")
        return Participant(
            fingerprint=digest({"transformation": text, "properties": properties}),
            id=system.id,
            name=system.name,
            role=system.role,
            prefix=system.type.prefix,
            connector=connector,
            transformation=transformation,
            properties=properties,
        )

    def validate(self, source: str, samples: Mapping[str, Iterable[Any]]) -> dict[str, Any]:
        """Sample entities through the source's read and its enabled targets' write
        transformations (spec §3.3 "Validate"); nothing is read or written."""
        system = self.systems.get(_SYSTEMS_CTX, source)
        if system.role is not Role.SOURCE:
            raise ConfigError(f"{system.name} is a {system.role} system: only sources validate.")
        targets = targets_of(
            system, self.systems.all(_SYSTEMS_CTX, role=Role.TARGET, enabled=True)[0]
        )
        return validation.validate(
            self._stage(system, "read"), [self._stage(t, "write") for t in targets], samples
        )

    def _stage(self, system: System, kind: str) -> validation.Stage:
        properties = self.systems.transformation_properties(_SYSTEMS_CTX, system.id)
        text = self.systems.transformation(_SYSTEMS_CTX, system.id, kind).text
        return validation.Stage(system.name, Transformation(text, properties))

    def recover(self) -> list[Job]:
        """Jobs whose worker died: marked ``Pending Restart`` and continued by a new job
        (same chain, from the last committed page), spec §3.8."""
        with self.db.write() as conn:
            restarted = [
                self._restart(conn, j) for j in store.stale_jobs(conn, self._stale_before())
            ]
            if self.queue is not None:
                for job in restarted:
                    self.queue.enqueue(conn, job)
        return restarted

    def _restart(self, conn: Connection, job: Job) -> Job:
        options, checkpoint = store.job_options(conn, job.id)
        store.update_job(
            conn,
            job.id,
            status=JobStatus.PENDING_RESTART,
            ended=now(),
            outcome="Its worker stopped; a new job continues it.",
        )
        successor = replace(
            job,
            id=str(uuid.uuid4()),
            status=JobStatus.QUEUED,
            created=now(),
            started=None,
            ended=None,
            resumed_from=job.id,
            statistics=[],
        )
        store.insert_job(conn, successor, options)
        store.update_job(conn, successor.id, checkpoint=checkpoint)
        return successor

    # -- deletions held back --------------------------------------------------------------------

    def deletion_holds(self, source: str) -> list[Hold]:
        """The deletions held back for a source system, per target and entity type."""
        return self.opdata.holds(self.systems.get(_SYSTEMS_CTX, source).id)

    def confirm_deletions(
        self,
        source: str,
        *,
        by: str,
        entity_type: str | None = None,
        target: str | None = None,
    ) -> list[Hold]:
        """Confirm the deletions held back for a source (of one entity type, in one target)
        as they stand: the next run that reaches them deletes at most as many, once.
        ConflictError when nothing is held back."""
        system = self.systems.get(_SYSTEMS_CTX, source)
        found = self.systems.get(_SYSTEMS_CTX, target) if target else None
        if entity_type not in (None, *ENTITY_TYPES):
            raise ConfigError(f"The entity type is user or group, not {entity_type!r}.")
        with self.db.write() as conn:
            confirmed = store.confirm_holds(
                conn,
                system.id,
                by[:255],
                entity_type=entity_type,
                target_id=found.id if found else None,
            )
        if not confirmed:
            scope = "".join(
                (f" ({entity_type}s)" if entity_type else "", f" in {found.name}" if found else "")
            )
            raise ConflictError(f"No deletions of {system.name} are held back{scope}.")
        return confirmed

    # -- logs and resets ------------------------------------------------------------------------

    def retention_days(self) -> int:
        with self.db.read() as conn:
            value = conn.execute(
                t.tenant_settings.select().where(t.tenant_settings.c.key == "log_retention_days")
            ).first()
        return int(value.value) if value is not None else RETENTION_DAYS[0]

    def set_retention_days(self, days: int) -> None:
        if days not in RETENTION_DAYS:
            raise ConfigError(f"Job logs are kept 7, 14 or 30 days, not {days}.")
        with self.db.write() as conn:
            conn.execute(
                t.tenant_settings.delete().where(t.tenant_settings.c.key == "log_retention_days")
            )
            conn.execute(
                t.tenant_settings.insert().values(key="log_retention_days", value=str(days))
            )

    def purge(self, *, everything: bool = False) -> int:
        """Delete the logs of finished jobs: older than the retention, or all of them. Real-time
        logs older than the retention go too (they are never deleted by hand, spec §6.6)."""
        days = self.retention_days()
        older = format_datetime(parse_datetime(now()) - timedelta(days=days))
        with self.db.write() as conn:
            conn.execute(t.realtime_logs.delete().where(t.realtime_logs.c.started < older))
            return store.delete_finished_jobs(conn, before=None if everything else older)

    def reset_system(self, system: str) -> int:
        """Forget the operational data of a source or target (spec §4.8)."""
        found = self.systems.get(_SYSTEMS_CTX, system)
        if found.role is Role.PROXY:
            raise ConfigError("Proxy systems have no operational data to reset.")
        with self.db.read() as conn:
            running = store.active_jobs(conn, found.id) if found.role is Role.SOURCE else []
        if any(j.status is not JobStatus.QUEUED for j in running):
            raise ConflictError(f"A job of {found.name} is running: stop it first.")
        return self.opdata.reset_system(found.id)

    def reset_tenant(self) -> int:
        """Delete every system with its transformations, schedules, jobs and logs (spec §4.9);
        technical users stay. The number of systems deleted."""
        with self.db.write() as conn:
            running = conn.execute(
                t.jobs.select().where(
                    t.jobs.c.status.in_(
                        (JobStatus.RUNNING.value, JobStatus.RUNNING_WITH_ERROR.value)
                    )
                )
            ).first()
            if running is not None:
                raise ConflictError("A job is running: stop it before resetting the tenant.")
            deleted = conn.execute(t.systems.delete()).rowcount
            conn.execute(t.tenant_settings.delete())
        return int(deleted)


def targets_of(source: System, systems: Sequence[System]) -> list[System]:
    """The enabled targets among ``systems`` that ``source`` provisions."""
    return [
        s
        for s in systems
        if s.role is Role.TARGET and s.enabled and source.id in s.source_system_ids
    ]
