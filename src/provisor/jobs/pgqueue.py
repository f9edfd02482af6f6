"""Jobs on PostgreSQL: handed to workers through procrastinate (decision 0008).

A started job is deferred as a procrastinate task in the same transaction as its row, with
the source system's id as procrastinate's ``lock``: tasks of one source run one after the
other, on any number of ``provisor worker`` processes on any hosts. When a worker dies,
procrastinate sees its heartbeat stop; a living worker retries the task, and the task
continues the job from its last committed page in a new job of the same chain (SAP's
*Pending Restart*).

A task carries the job's tenant (``tenant``; tasks deferred before tenants carry none: the
default tenant's), and the worker runs the job in that tenant's context. A tenant runs at
most its quota of jobs at once (``PROVISOR_TENANT_JOB_CONCURRENCY``, or the tenant's
``jobConcurrency``): a task whose tenant is at its quota when it starts does not run the
job, which stays ``Queued``; it defers a new task of the same job ``QUOTA_WAIT_SECONDS``
later and ends (check and defer). Tasks of other tenants, which procrastinate hands over
in the meantime, go first. Claims take turns (an advisory lock in the claiming
transaction), so that two workers never both take a tenant's last place.

A job's full read split into partitions (jobs/partitions.py, decision 0032) defers one task
per partition, without a lock: any worker runs any partition, at the same time as the
others. A partition's task whose worker died is retried like a job's; it goes on after the
entities its partition committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import procrastinate
import structlog
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from provisor.context import ANY_TENANT, DEFAULT_TENANT, Context
from provisor.jobs.model import Job
from provisor.jobs.runners import beating
from provisor.jobs.scheduler import ScheduleService
from provisor.jobs.service import WORKER, AtQuota, JobService

log = structlog.get_logger("provisor.jobs")

QUEUE = "provisor-jobs"
TASK = "provisor.run_job"
PART_TASK = "provisor.run_partition"
QUOTA_WAIT_SECONDS = 2  # a job whose tenant is at its quota is handed over again this later
# How often a worker looks for tasks that became due without a notification: those retried
# from a dead worker (procrastinate notifies inserts only) and those deferred for later
# (quota waits). procrastinate's default, 5 s, added up to 5 s to every take-over.
FETCH_SECONDS = 1.0


def conninfo(sqlalchemy_url: str) -> str:
    """The libpq URL of a SQLAlchemy PostgreSQL URL."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ProcrastinateQueue:
    """Defers jobs as procrastinate tasks inside the caller's transaction."""

    def __init__(self) -> None:
        # No pool of its own: every defer goes through the caller's connection.
        self.app = procrastinate.App(connector=procrastinate.SyncPsycopgConnector())

    def enqueue(self, conn: Connection, job: Job) -> None:
        deferrer = self.app.configure_task(
            TASK,
            queue=QUEUE,
            lock=job.source_id,
            connection=conn.connection.driver_connection,
        )
        deferrer.defer(**task_arguments(job))

    def enqueue_part(self, conn: Connection, job: Job, entity_type: str, number: int) -> None:
        deferrer = self.app.configure_task(
            PART_TASK, queue=QUEUE, connection=conn.connection.driver_connection
        )
        deferrer.defer(**task_arguments(job), entity_type=entity_type, number=number)


def task_arguments(job: Job) -> dict[str, str]:
    """What a task of ``job`` carries: the job and its tenant."""
    return {"job_id": job.id, "tenant": job.tenant}


class ProcrastinateWorker:
    """Runs jobs from procrastinate, starts scheduled ones and, every ``maintenance_seconds``,
    retries the tasks of dead workers and deletes old logs. It acts as the ``worker``
    system actor: in the task's tenant to run a job, over every tenant to maintain."""

    def __init__(
        self,
        service: JobService,
        schedules: ScheduleService,
        database_url: str,
        *,
        name: str,
        concurrency: int = 4,
        maintenance_seconds: float = 30.0,
    ) -> None:
        self.service = service
        self.schedules = schedules
        self.ctx = Context.system(WORKER, tenant=ANY_TENANT)
        self.name = name
        self.concurrency = concurrency
        self.stale_seconds = service.stale_seconds
        self.maintenance_seconds = min(maintenance_seconds, self.stale_seconds)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(
                conninfo=conninfo(database_url), min_size=1, max_size=concurrency + 2
            )
        )
        self.app.task(name=TASK, queue=QUEUE)(self._run_job)
        self.app.task(name=PART_TASK, queue=QUEUE)(self._run_part)

    async def _run_job(self, job_id: str, tenant: str = DEFAULT_TENANT) -> None:
        """The task: run the job in its tenant (a task deferred before tenants names none: the
        default tenant's), or hand it over again later when its tenant is at its quota."""
        ctx = Context.system(WORKER, tenant=tenant, request_id=job_id)  # the id: its logs
        try:
            status = await self.service.run_queued(ctx, job_id, self.name)
        except AtQuota as waiting:
            await self.app.configure_task(
                TASK,
                queue=QUEUE,
                lock=waiting.job.source_id,
                schedule_in={"seconds": QUOTA_WAIT_SECONDS},
            ).defer_async(**task_arguments(waiting.job))
            log.info("job waits for its tenant's quota", job=job_id, tenant=tenant)
            return
        if status is not None:
            log.info("job ended", job=job_id, tenant=tenant, status=status.value, worker=self.name)

    async def _run_part(
        self, job_id: str, entity_type: str, number: int, tenant: str = DEFAULT_TENANT
    ) -> None:
        """The task of a partition: run it in its job's tenant (decision 0032)."""
        ctx = Context.system(WORKER, tenant=tenant, request_id=job_id)
        status = await self.service.run_part(ctx, job_id, entity_type, number, self.name)
        if status is not None:
            log.info(
                "partition ended",
                job=job_id,
                entity_type=entity_type,
                partition=number,
                status=status.value,
                worker=self.name,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; running jobs are then interrupted (continued later by
        another worker)."""
        async with self.app.open_async():
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[QUEUE],
                    name=self.name,
                    concurrency=self.concurrency,
                    install_signal_handlers=False,
                    update_heartbeat_interval=max(1.0, self.stale_seconds / 4),
                    fetch_job_polling_interval=FETCH_SECONDS,
                    stalled_worker_timeout=self.stale_seconds,
                    delete_jobs="successful",
                    shutdown_graceful_timeout=0,
                )
            )
            ended = asyncio.Event()
            heart = asyncio.create_task(beating(self.service, self.name, ended))
            maintained = 0.0
            try:
                while not stop.is_set() and not worker.done():
                    if time.monotonic() - maintained > self.maintenance_seconds:
                        maintained = time.monotonic()
                        await self._maintain()
                    await asyncio.to_thread(self._start_scheduled)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=1.0)
            finally:
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker
                ended.set()  # the heart's last beat is over before it retires
                await heart

    def _start_scheduled(self) -> None:
        try:
            self.schedules.tick()
        except Exception:
            log.exception("starting scheduled jobs failed")

    async def _maintain(self) -> None:
        try:
            await self._retry_stalled()
            await asyncio.to_thread(self.service.purge, self.ctx)
        except Exception:
            log.exception("job maintenance failed")

    async def _retry_stalled(self) -> None:
        """Give the tasks of workers that stopped beating to a living one."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            task_name=TASK, seconds_since_heartbeat=self.stale_seconds
        )
        for task in stalled:
            job_id: Any = task.task_kwargs.get("job_id")
            tenant: Any = task.task_kwargs.get("tenant") or DEFAULT_TENANT
            ctx = self.ctx.in_tenant(str(tenant))
            if await asyncio.to_thread(self.service.is_orphan, ctx, str(job_id)):
                log.warning("job's worker stopped: retrying it", job=job_id)
                await manager.retry_job(task)
        # a partition's task goes on after what it committed (or ends, its job having ended)
        for task in await manager.get_stalled_jobs(
            task_name=PART_TASK, seconds_since_heartbeat=self.stale_seconds
        ):
            log.warning("partition's worker stopped: retrying it", job=task.task_kwargs)
            await manager.retry_job(task)
