"""Starting, stopping, running and reporting jobs; resetting what provisor knows.

A job is a row first (``Queued``); an executor claims it (``Running``) and runs it. One job
per source system runs at a time: a start while one runs queues a second one (at most one
waits), as *Run Now* does during a scheduled run (spec §3.7).

The operations adapters call take the call's context first and declare their permission
(``@requires``): the admin API's reads need ``view`` and its changes ``admin`` (who holds
``view`` too), SAP's tenant admin API's (``public_*``) ``tenant_admin_api``. The methods
without ``@requires`` are the internals the workers, the scheduler and real-time call, under a
system context.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

from provisor.connectors.base import ConnectorConfig, Role, Unusable
from provisor.context import Context, Permission, confined, requires
from provisor.errors import (
    ConfigError,
    ConflictError,
    InputError,
    InvalidTransformationError,
    NotFoundError,
    PermissionDeniedError,
    ProvisorError,
)
from provisor.jobs import loops
from provisor.jobs import store as store
from provisor.jobs import validate as validation
from provisor.jobs.export import actions_of, entity_log_rows, export_zip
from provisor.jobs.failures import unexpected
from provisor.jobs.locking import LOCK_SECONDS
from provisor.jobs.lockstore import EntityLockStore
from provisor.jobs.model import (
    Action,
    EntityLogEntry,
    Job,
    JobRunner,
    JobStatus,
    JobType,
    Trigger,
)
from provisor.jobs.partitions import PartitionedRunner, PartRunner
from provisor.jobs.partstore import Part, PartitionStore, PartQueue, PartStatus
from provisor.jobs.plan import Participant, digest
from provisor.jobs.ports import Hold, JobEvents
from provisor.jobs.runner import Runner
from provisor.jobs.store import Journal, OperationalStore
from provisor.metrics import instruments as metrics
from provisor.storage.database import Database, Transaction
from provisor.systems.model import System
from provisor.systems.service import SystemService
from provisor.timestamps import format_datetime, now, parse_datetime
from provisor.transform import Transformation
from provisor.types import EntityType

RETENTION_DAYS = (7, 14, 30)
PARTITION_SIZE = 2000  # entities per partition of a full read on PostgreSQL, about
STALE_SECONDS = 60  # a running job whose worker has not beaten for this long is restarted
TENANT_JOB_CONCURRENCY = 2  # jobs of one tenant running at once, unless its quota says otherwise
WORKER = "worker"  # the system actor that runs jobs
PUBLIC_API = "Identity Provisioning API"  # jobs started through SAP's tenant admin API
PUBLIC_TYPES = (JobType.READ, JobType.RESYNC)


RunParts = tuple[Job, Participant, list[Participant], OperationalStore, Journal]
"""What a job's runner is built of: the job, its source, targets and where it reports."""


class JobQueue(PartQueue, Protocol):
    """Where a queued job, and each partition of its reads, is handed to the workers
    (PostgreSQL: procrastinate), in the transaction that created it."""

    def enqueue(self, conn: Connection, job: Job) -> None: ...


class AtQuota(Exception):  # a signal to the task queue, never a caller's error
    """The queued job's tenant runs as many jobs as its quota allows: the job was not
    claimed, and is to be handed over again later (:meth:`JobService.run_queued`)."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"tenant {job.tenant} runs as many jobs as its quota allows")
        self.job = job


class JobService:
    def __init__(
        self,
        db: Database,
        systems: SystemService,
        *,
        queue: JobQueue | None = None,
        stale_seconds: int = STALE_SECONDS,
        lock_seconds: float = LOCK_SECONDS,
        tenant_job_concurrency: int = TENANT_JOB_CONCURRENCY,
        events: JobEvents | None = None,
        partition_size: int = PARTITION_SIZE,
    ) -> None:
        """``tenant_job_concurrency``: how many jobs of one tenant run at once, unless the
        tenant's quota ``jobConcurrency`` says otherwise; ``events``: told of every change of
        a job's status (notifications); ``partition_size``: entities per partition of a
        full read, about, handed to the workers of the ``queue`` (0: a job is never split;
        without a queue, jobs are never split)."""
        self.db = db
        self.systems = systems
        self.locks = EntityLockStore(db)
        self.lock_seconds = lock_seconds
        self.queue = queue
        self.stale_seconds = stale_seconds
        self.tenant_job_concurrency = tenant_job_concurrency
        self.events = events
        self.partition_size = partition_size
        # a job's runner runs the partitions no worker has taken yet (tests turn it off)
        self.runner_takes_partitions = True

    def operational(self, ctx: Context) -> OperationalStore:
        """Operational data, source state and deletion holds for ``ctx``'s calls."""
        return OperationalStore(self.db, ctx)

    def journal_of(self, ctx: Context) -> Journal:
        """The rows, statistics and entity logs of running jobs, for ``ctx``'s calls."""
        return Journal(self.db, ctx, self.events)

    # -- the systems (one place, so that their service's signatures meet jobs here) ------------

    def _system(self, ctx: Context, id_or_name: str) -> System:
        return self.systems.get(ctx, id_or_name)

    def _systems(self, ctx: Context, **criteria: Any) -> list[System]:
        return self.systems.all(ctx, **criteria)[0]

    def _source(self, ctx: Context, id_or_name: str, doing: str) -> System:
        system = self._system(ctx, id_or_name)
        if system.role is not Role.SOURCE:
            raise InputError(f"{system.name} is a {system.role} system: {doing}.")
        return system

    # -- starting and stopping ------------------------------------------------------------------

    @requires()
    def start(
        self,
        ctx: Context,
        source: str,
        *,
        type: JobType = JobType.READ,
        trigger: Trigger = Trigger.IMMEDIATE,
        options: dict[str, Any] | None = None,
        queue_if_running: bool = True,
    ) -> Job:
        """Create a job for a source system, started by ``ctx``'s actor; ConflictError when
        it cannot wait its turn."""
        system = self._source(ctx, source, "jobs run on sources")
        return self._start(
            ctx,
            system,
            type=type,
            trigger=trigger,
            triggered_by=ctx.author,
            options=options,
            queue_if_running=queue_if_running,
        )

    @requires(Permission.TENANT_ADMIN_API)
    def public_start(self, ctx: Context, source: str, job_type: str) -> Job:
        """SAP's *startJob*: a READ or RESYNC job, refused (409) while one runs or waits."""
        try:
            wanted: JobType | None = JobType(job_type.upper())
        except ValueError:
            wanted = None
        if wanted not in PUBLIC_TYPES:
            raise InputError(f"JobType is READ or RESYNC, not {job_type!r}.")
        assert wanted is not None
        system = self._source(ctx, source, "jobs run on sources")
        ctx.require_system(system.id)
        return self._start(
            ctx,
            system,
            type=wanted,
            trigger=Trigger.IMMEDIATE,
            triggered_by=f"{PUBLIC_API} - {ctx.author}",
            options=None,
            queue_if_running=False,
        )

    def _start(
        self,
        ctx: Context,
        system: System,
        *,
        type: JobType,
        trigger: Trigger,
        triggered_by: str,
        options: dict[str, Any] | None,
        queue_if_running: bool,
    ) -> Job:
        if not system.enabled:
            raise InputError(f"{system.name} is disabled: enable it to run jobs.")
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
            tenant=ctx.tenant,
        )
        with self.db.write(ctx) as tx:
            active = store.active_jobs(tx, system.id)
            if any(j.status is JobStatus.QUEUED for j in active):
                raise ConflictError(
                    f"A job of {system.name} is already waiting to run: "
                    f"{next(j.id for j in active if j.status is JobStatus.QUEUED)}."
                )
            if active and not queue_if_running:
                raise ConflictError(f"A job of {system.name} is running: {active[0].id}.")
            store.insert_job(tx, job, options or {})
            tx.audit(
                "job.start",
                job.id,
                {"sourceSystemId": system.id, "type": type.value, "triggerType": trigger.value},
            )
            if self.queue is not None:
                self.queue.enqueue(tx.conn, job)
        return job

    @requires()
    def stop(self, ctx: Context, job_id: str) -> Job:
        """Ask a job to stop at its next safe point (a queued one never starts)."""
        with self.db.write(ctx) as tx:
            job = store.get_job(tx, job_id, with_statistics=False)
            if job is None:
                raise NotFoundError(f"No job {job_id!r}.")
            if job.status is JobStatus.QUEUED:
                store.update_job(
                    tx,
                    job_id,
                    status=JobStatus.MANUALLY_TERMINATED,
                    ended=now(),
                    stop_requested=1,
                    outcome="Stopped before it started.",
                )
            elif job.status.active:
                store.update_job(tx, job_id, stop_requested=1)
            else:
                raise ConflictError(f"Job {job_id} has ended ({job.status}).")
            tx.audit("job.stop", job_id, {"status": job.status.value})
        return self._job(ctx, job_id)

    # -- reading --------------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def get(self, ctx: Context, job_id: str) -> Job:
        """A job with its statistics; NotFoundError when there is none."""
        return self._job(ctx, job_id)

    @requires(Permission.TENANT_ADMIN_API)
    def public_get(self, ctx: Context, job_id: str) -> Job:
        """SAP's job status."""
        _unbound(ctx)
        return self._job(ctx, job_id)

    def _job(self, ctx: Context, job_id: str) -> Job:
        with self.db.read(ctx) as tx:
            job = store.get_job(tx, job_id)
        if job is None:
            raise NotFoundError(f"No job {job_id!r}.")
        return job

    @requires(Permission.VIEW)
    def all(
        self,
        ctx: Context,
        *,
        source: str | None = None,
        status: JobStatus | None = None,
        type: JobType | None = None,
        trigger: Trigger | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[Job], int]:
        """Jobs, newest first, and how many there are."""
        source_id = self._system(ctx, source).id if source else None
        with self.db.read(ctx) as tx:
            return store.list_jobs(
                tx,
                source_id=source_id,
                status=status,
                type=type,
                trigger=trigger,
                offset=offset,
                limit=limit,
            )

    @requires(Permission.VIEW)
    def latest(self, ctx: Context, *, limit: int = 50) -> list[Job]:
        """The newest job of each source (of at most ``limit`` sources, newest first), with
        its statistics."""
        with self.db.read(ctx) as tx:
            return store.latest_jobs(tx, limit)

    @requires(Permission.VIEW)
    def entity_logs(
        self,
        ctx: Context,
        job_id: str,
        actions: Sequence[str] | None = None,
        *,
        system_id: str | None = None,
        offset: int = 0,
        limit: int | None = None,
        most: int | None = None,
    ) -> tuple[list[EntityLogEntry], int]:
        """The entities a job failed, skipped, created... (of ``actions``, in the system
        ``system_id``), and how many (counted up to ``most``, when given)."""
        self._job(ctx, job_id)
        with self.db.read(ctx) as tx:
            return store.entity_logs(
                tx, job_id, actions, system_id=system_id, offset=offset, limit=limit, most=most
            )

    @requires(Permission.VIEW)
    def failures(
        self, ctx: Context, job_ids: Sequence[str], *, limit: int = 5
    ) -> dict[str, list[EntityLogEntry]]:
        """The first ``limit`` failed entities of each of ``job_ids`` (one read; a job
        that is not the tenant's has none)."""
        with self.db.read(ctx) as tx:
            return store.first_entity_logs(tx, job_ids, Action.FAILED.value, limit)

    @requires(Permission.VIEW)
    def export(self, ctx: Context, job_id: str, log_type: str) -> tuple[str, bytes]:
        """The zip of a job's logs of ``log_type`` (file name, bytes); InputError for an
        unknown log type, NotFoundError for an unknown job."""
        return self._export(ctx, job_id, log_type)

    @requires(Permission.TENANT_ADMIN_API)
    def public_export(self, ctx: Context, job_id: str, log_type: str) -> tuple[str, bytes]:
        """SAP's export of a job's logs."""
        _unbound(ctx)
        return self._export(ctx, job_id, log_type)

    def _export(self, ctx: Context, job_id: str, log_type: str) -> tuple[str, bytes]:
        actions = actions_of(log_type)
        job = self._job(ctx, job_id)

        def page(offset: int, limit: int) -> list[EntityLogEntry]:
            with self.db.read(ctx) as tx:
                return store.entity_logs(tx, job_id, actions, offset=offset, limit=limit)[0]

        return export_zip(job, entity_log_rows(page), log_type)

    # -- running (the workers' internals) -------------------------------------------------------

    def claim(self, ctx: Context, worker: str, job_id: str | None = None) -> Job | None:
        """The oldest queued job (or ``job_id``) that may run now, marked running for
        ``worker``; None when there is none. A context of every tenant (``ANY_TENANT``)
        claims any tenant's job; a job may run when no other job of its source runs and its
        tenant runs fewer jobs than its quota (so a tenant at its quota lets another
        tenant's job go first). The job is to be run in its own tenant's context."""
        with self.db.write(ctx) as tx:
            return store.claim_next(
                tx, worker, now(), job_id, concurrency=self.tenant_job_concurrency
            )

    async def run_queued(self, ctx: Context, job_id: str, worker: str) -> JobStatus | None:
        """Run a job the task queue hands over (``ctx``: the job's tenant): claimed when
        queued; continued in a new job of its chain when its worker died while running it.
        None: nothing to run. AtQuota when the job waits because its tenant runs as many
        jobs as its quota allows."""
        job = await asyncio.to_thread(self.claim, ctx, worker, job_id)
        if job is None:
            waiting = await asyncio.to_thread(self._at_quota, ctx, job_id)
            if waiting is not None:
                raise AtQuota(waiting)
            job = await asyncio.to_thread(self._take_over, ctx, job_id, worker)
        return None if job is None else await self.run(ctx, job)

    def _at_quota(self, ctx: Context, job_id: str) -> Job | None:
        """The job when it is queued and its tenant runs as many jobs as it may."""
        with self.db.read(ctx) as tx:
            job = store.get_job(tx, job_id, with_statistics=False)
            if job is None or job.status is not JobStatus.QUEUED:
                return None
            full = store.tenants_at_quota(tx, self.tenant_job_concurrency)
        return job if job.tenant in full else None

    def is_orphan(self, ctx: Context, job_id: str) -> bool:
        """Whether no worker runs the job any more: ended, gone, or its heartbeat stale."""
        with self.db.read(ctx) as tx:
            job = store.get_job(tx, job_id, with_statistics=False)
            if job is None or not job.status.active or job.status is JobStatus.QUEUED:
                return True
            return bool(store.stale_jobs(tx, self._stale_before(), job_id))

    def _take_over(self, ctx: Context, job_id: str, worker: str) -> Job | None:
        with self.db.write(ctx) as tx:
            stale = store.stale_jobs(tx, self._stale_before(), job_id)
            if not stale:
                return None
            successor = self._restart(tx, stale[0])
            # no quota: the successor takes the place of the job it continues
            return store.claim_next(tx, worker, now(), successor.id, concurrency=None)

    def _stale_before(self) -> str:
        return format_datetime(parse_datetime(now()) - timedelta(seconds=self.stale_seconds))

    async def run(self, ctx: Context, job: Job) -> JobStatus:
        """Run a claimed job to its end; never raises for what goes wrong inside it. The
        job's end, duration and statistics are recorded in the metrics (a job interrupted by
        the worker's shutdown only stops counting as running)."""
        started = time.monotonic()
        runners: list[Runner] = []
        status: JobStatus | None = None
        metrics.job_started()
        try:
            status = await self._run(ctx, job, runners)
        finally:
            if status is None:
                metrics.job_interrupted()
            else:
                counts = runners[0].ledger.counts if runners else {}
                metrics.job_ended(
                    status.name.lower(),
                    time.monotonic() - started,
                    job.tenant,
                    [(k[0], k[1], k[3], c.to_dict()) for k, c in counts.items()],
                )
        return status

    async def _run(self, ctx: Context, job: Job, runners: list[Runner]) -> JobStatus:
        journal = self.journal_of(ctx)
        try:
            runner = await asyncio.to_thread(self._runner, ctx, job)
            runners.append(runner)
        except (ProvisorError, ValueError) as exc:
            message = getattr(exc, "message", str(exc))
            await asyncio.to_thread(
                journal.set_status,
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
                journal.set_status,
                job.id,
                JobStatus.FINISHED_WITH_ERROR,
                ended=now(),
                error=f"The job failed on {unexpected(exc, job.id)}.",
            )
            return JobStatus.FINISHED_WITH_ERROR

    def chain_in_progress(self, ctx: Context, source_id: str) -> str | None:
        """The chain of the source's oldest job running or waiting to run, if any."""
        with self.db.read(ctx) as tx:
            active = store.active_jobs(tx, source_id)
        return active[0].chain_id if active else None

    def _runner(self, ctx: Context, job: Job) -> Runner:
        with self.db.read(ctx) as tx:
            options, checkpoint = store.job_options(tx, job.id)
            worker = store.job_worker(tx, job.id) or WORKER
        parts, settings = self._run_of(ctx, job, options)
        if self.queue is None or self.partition_size <= 0 or job.type is JobType.SIMULATE:
            return Runner(*parts, checkpoint=checkpoint, **settings)

        async def take(entity_type: str, number: int) -> None:
            await self.run_part(ctx, job.id, entity_type, number, worker)

        return PartitionedRunner(
            *parts,
            checkpoint=checkpoint,
            **settings,
            parts=self.partitions(ctx),
            queue=self.queue,
            size=self.partition_size,
            take=take if self.runner_takes_partitions else None,
            live_since=self._stale_before,
        )

    def _run_of(
        self, ctx: Context, job: Job, options: Mapping[str, Any]
    ) -> tuple[RunParts, dict[str, Any]]:
        """What a job's runner (or a partition's) is built of: the job, its source and
        targets, where it reports; and its settings."""
        source = self._system(ctx, job.source_id)
        everyone = self._systems(ctx)
        parts = (
            job,
            self.participant(ctx, source, "read"),
            self.writers(ctx, targets_of(source, everyone), everyone),
            self.operational(ctx),
            self.journal_of(ctx),
        )
        settings = {
            "options": options,
            "systems_by_name": {s.name: s.id for s in everyone},
            "heartbeat_seconds": min(10.0, self.stale_seconds / 4),
            "locks": self.locks,
            "lock_seconds": self.lock_seconds,
        }
        return parts, settings

    def partitions(self, ctx: Context) -> PartitionStore:
        """The partitions of ``ctx``'s jobs."""
        return PartitionStore(self.db, ctx, self.journal_of(ctx))

    async def run_part(
        self, ctx: Context, job_id: str, entity_type: str, number: int, worker: str
    ) -> PartStatus | None:
        """Run a partition of a job's read the task queue hands over, or its job's runner
        takes (``ctx``: the job's tenant), from the entities it committed; None: it has
        ended, its job has, or a living worker runs it."""
        parts = self.partitions(ctx)
        part = await asyncio.to_thread(
            parts.claim, job_id, entity_type, number, worker, live_since=self._stale_before()
        )
        if part is None:
            return None
        try:
            runner = await asyncio.to_thread(self._part_runner, ctx, part)
            return await runner.run_part()
        except (ProvisorError, ValueError) as exc:  # the systems changed since the job started
            why = f"The partition could not start: {getattr(exc, 'message', str(exc))}"
        except Exception as exc:
            why = f"The partition failed on {unexpected(exc, job_id)}."
        ended = replace(part, status=PartStatus.FAILED, source_failed=True, errors=[why])
        await asyncio.to_thread(parts.end, ended)
        return PartStatus.FAILED

    def _part_runner(self, ctx: Context, part: Part) -> PartRunner:
        with self.db.read(ctx) as tx:
            job = store.get_job(tx, part.job_id, with_statistics=False)
            options, _ = store.job_options(tx, part.job_id)
        if job is None:
            raise NotFoundError(f"No job {part.job_id!r}.")
        parts, settings = self._run_of(ctx, job, options)
        return PartRunner(*parts, **settings, part=part, parts=self.partitions(ctx))

    def writers(
        self, ctx: Context, targets: Sequence[System], everyone: Sequence[System]
    ) -> list[Participant]:
        """Targets ready to write; those whose back-end a source reads too keep echoes."""
        read = {self.endpoint(s) for s in everyone if s.role is Role.SOURCE} - {None}
        writers = [self.participant(ctx, target, "write") for target in targets]
        for writer, target in zip(writers, targets, strict=True):
            endpoint = self.endpoint(target)
            writer.echo = endpoint if endpoint in read else None
        return writers

    def endpoint(self, system: System) -> str | None:
        return loops.endpoint_of(system.type.prefix, system.properties)

    def participant(self, ctx: Context, system: System, kind: str) -> Participant:
        """A system ready for a job; a target whose connector cannot be built takes part as
        ``Unusable`` (its entities fail with the reason, the other targets go on)."""
        # no credentials
        properties = self.systems.transformation_properties(ctx, system.id)
        text = self.systems.transformation(ctx, system.id, kind).text
        try:
            transformation = Transformation(text, properties)
        except InvalidTransformationError as exc:  # e.g. a property it names was removed
            where = f"the {kind} transformation of {system.name}"
            raise InvalidTransformationError([f"{where}: {p}" for p in exc.problems]) from None
        try:
            connector = self.systems.connector(ctx, system.id)
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

    @requires(Permission.VIEW)
    def validate(
        self, ctx: Context, source: str, samples: Mapping[str, Iterable[Any]]
    ) -> dict[str, Any]:
        """Sample entities through the source's read and its enabled targets' write
        transformations (spec §3.3 "Validate"); nothing is read or written."""
        system = self._source(ctx, source, "only sources validate")
        targets = targets_of(system, self._systems(ctx, role=Role.TARGET, enabled=True))
        return validation.validate(
            self._stage(ctx, system, "read"),
            [self._stage(ctx, t, "write") for t in targets],
            samples,
        )

    def _stage(self, ctx: Context, system: System, kind: str) -> validation.Stage:
        properties = self.systems.transformation_properties(ctx, system.id)
        text = self.systems.transformation(ctx, system.id, kind).text
        return validation.Stage(system.name, Transformation(text, properties))

    def recover(self, ctx: Context) -> list[Job]:
        """Jobs whose worker died: marked ``Pending Restart`` and continued by a new job
        (same chain, from the last committed page), spec §3.8."""
        with self.db.write(ctx) as tx:
            restarted = [self._restart(tx, j) for j in store.stale_jobs(tx, self._stale_before())]
            if self.queue is not None:
                for job in restarted:
                    self.queue.enqueue(tx.conn, job)
        return restarted

    def _restart(self, tx: Transaction, job: Job) -> Job:
        options, checkpoint = store.job_options(tx, job.id)
        store.update_job(
            tx,
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
        store.insert_job(tx, successor, options)
        store.update_job(tx, successor.id, checkpoint=checkpoint)
        return successor

    # -- the job runners ------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def runners(self, ctx: Context) -> list[JobRunner]:
        """The processes running jobs now (their heartbeat younger than the stale time): none,
        and queued jobs wait until a server with jobs or a ``provisor worker`` runs."""
        with self.db.read(ctx) as tx:
            return store.live_runners(tx, self._stale_before())

    @requires(Permission.VIEW)
    def gauges(self, ctx: Context) -> tuple[int, list[JobRunner]]:
        """The queued jobs of the call's tenants and every runner that has beaten recently or
        not (stale ones are forgotten after ten stale times): the metrics' queue depth and
        heartbeats, two indexed queries."""
        with self.db.read(ctx) as tx:
            return store.count_queued(tx), store.live_runners(tx, "")

    def beat(self, ctx: Context, name: str, started: str) -> None:
        """Runner ``name`` (started at ``started``) is alive; those silent for ten stale times
        are forgotten."""
        older = format_datetime(parse_datetime(now()) - timedelta(seconds=10 * self.stale_seconds))
        with self.db.write(ctx) as tx:
            store.retire_runners(tx, before=older)
            store.beat_runner(tx, name, started, now())

    def retire(self, ctx: Context, name: str) -> None:
        """Runner ``name`` stopped."""
        with self.db.write(ctx) as tx:
            store.retire_runners(tx, name=name)

    # -- deletions held back --------------------------------------------------------------------

    @requires(Permission.VIEW)
    def deletion_holds(self, ctx: Context, source: str) -> list[Hold]:
        """The deletions held back for a source system, per target and entity type."""
        system = self._system(ctx, source)
        with self.db.read(ctx) as tx:
            return store.holds(tx, system.id)

    @requires(Permission.VIEW)
    def unconfirmed_holds(self, ctx: Context, *, limit: int = 50) -> list[Hold]:
        """Deletions held back for any source and not confirmed yet (at most ``limit``)."""
        with self.db.read(ctx) as tx:
            return store.unconfirmed_holds(tx, limit)

    @requires()
    def confirm_deletions(
        self,
        ctx: Context,
        source: str,
        *,
        entity_type: str | None = None,
        target: str | None = None,
    ) -> list[Hold]:
        """Confirm, as ``ctx``'s actor, the deletions held back for a source (of one entity
        type, in one target) as they stand: the next run that reaches them deletes at most
        as many, once. ConflictError when nothing is held back."""
        system = self._system(ctx, source)
        found = self._system(ctx, target) if target else None
        kind = _entity_type(entity_type)
        with self.db.write(ctx) as tx:
            confirmed = store.confirm_holds(
                tx,
                system.id,
                ctx.author[:255],
                entity_type=kind,
                target_id=found.id if found else None,
            )
            if confirmed:
                tx.audit(
                    "deletions.confirm",
                    system.id,
                    {
                        "holds": [
                            {
                                "targetSystemId": h.target_id,
                                "entityType": h.entity_type,
                                "heldBack": h.count,
                            }
                            for h in confirmed
                        ]
                    },
                )
        if not confirmed:
            scope = "".join((f" ({kind}s)" if kind else "", f" in {found.name}" if found else ""))
            raise ConflictError(f"No deletions of {system.name} are held back{scope}.")
        return confirmed

    # -- logs and resets ------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def retention_days(self, ctx: Context) -> int:
        """How many days the logs of finished jobs are kept."""
        return self._retention_days(ctx)

    def _retention_days(self, ctx: Context) -> int:
        with self.db.read(ctx) as tx:
            days = store.retention_days(tx)
        return days if days is not None else RETENTION_DAYS[0]

    @requires()
    def set_retention_days(self, ctx: Context, days: int) -> int:
        """Keep the logs of finished jobs 7, 14 or 30 days."""
        if days not in RETENTION_DAYS:
            raise InputError(f"Job logs are kept 7, 14 or 30 days, not {days}.")
        with self.db.write(ctx) as tx:
            store.set_retention_days(tx, days)
            tx.audit("job_settings.update", "logRetentionDays", {"logRetentionDays": days})
        return days

    @requires()
    def delete_logs(self, ctx: Context) -> int:
        """Delete the logs of every finished job; how many jobs went."""
        with self.db.write(ctx) as tx:
            deleted = self._purge(tx, everything=True)
            tx.audit("job.delete", "*", {"deleted": deleted})
        return deleted

    def purge(self, ctx: Context) -> int:
        """Delete the logs of finished jobs older than the retention (maintenance): those of
        ``ctx``'s tenant, or of every tenant (``ANY_TENANT``), each after its own
        retention."""
        with self.db.write(ctx) as tx:
            return self._purge(tx, everything=False)

    def _purge(self, tx: Transaction, *, everything: bool) -> int:
        """Real-time logs and proxy calls older than the retention go too (they are never
        deleted by hand, spec §6.6)."""
        moment = parse_datetime(now())

        def before(days: int) -> str:
            return format_datetime(moment - timedelta(days=days))

        kept = store.retention_per_tenant(tx)
        older = store.Cutoffs(
            {tenant: before(days) for tenant, days in kept.items()}, before(RETENTION_DAYS[0])
        )
        store.delete_realtime_logs(tx, before=older)
        store.delete_proxy_activity(tx, before=older)
        return store.delete_finished_jobs(tx, before=None if everything else older)

    @requires()
    def reset_system(self, ctx: Context, system: str) -> int:
        """Forget the operational data of a source or target (spec §4.8)."""
        found = self._system(ctx, system)
        if found.role is Role.PROXY:
            raise InputError("Proxy systems have no operational data to reset.")
        with self.db.write(ctx) as tx:
            running = store.active_jobs(tx, found.id) if found.role is Role.SOURCE else []
            if any(j.status is not JobStatus.QUEUED for j in running):
                raise ConflictError(f"A job of {found.name} is running: stop it first.")
            removed = store.reset_system(tx, found.id)
            tx.audit("system.reset", found.id, {"removedRecords": removed})
        return removed

    @requires()
    def reset_tenant(self, ctx: Context, *, confirm: bool) -> int:
        """Delete every system with its transformations, schedules, jobs and logs (spec §4.9);
        technical users stay. ``confirm`` must be true. The number of systems deleted."""
        if not confirm:
            raise InputError('Send {"confirm": true} to delete every system, job and log.')
        with self.db.write(ctx) as tx:
            if store.any_running(tx):
                raise ConflictError("A job is running: stop it before resetting the tenant.")
            deleted = store.delete_every_system(tx)
            tx.audit("tenant.reset", ctx.tenant, {"deletedSystems": deleted})
        return deleted


def _entity_type(name: str | None) -> EntityType | None:
    try:
        return None if name is None else EntityType(name)
    except ValueError:
        raise InputError(f"The entity type is user or group, not {name!r}.") from None


def _unbound(ctx: Context) -> None:
    """SAP's job status and logs name no system: a certificate attached to one system may
    not call them (as the web layer has always refused it)."""
    if ctx.actor.system is not None:
        raise PermissionDeniedError(confined(ctx.actor.system))


def targets_of(source: System, systems: Sequence[System]) -> list[System]:
    """The enabled targets among ``systems`` that ``source`` provisions."""
    return [
        s
        for s in systems
        if s.role is Role.TARGET and s.enabled and source.id in s.source_system_ids
    ]
