"""Jobs on PostgreSQL: handed to workers through procrastinate (decision 0008).

A started job is deferred as a procrastinate task in the same transaction as its row, with
the source system's id as procrastinate's ``lock``: tasks of one source run one after the
other, on any number of ``provisor worker`` processes on any hosts. When a worker dies,
procrastinate sees its heartbeat stop; a living worker retries the task, and the task
continues the job from its last committed page in a new job of the same chain (SAP's
*Pending Restart*).
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

from provisor.context import Context
from provisor.jobs.model import Job
from provisor.jobs.runners import beating
from provisor.jobs.scheduler import ScheduleService
from provisor.jobs.service import WORKER, JobService

log = structlog.get_logger("provisor.jobs")

QUEUE = "provisor-jobs"
TASK = "provisor.run_job"


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
        deferrer.defer(job_id=job.id)


class ProcrastinateWorker:
    """Runs jobs from procrastinate, starts scheduled ones and, every ``maintenance_seconds``,
    retries the tasks of dead workers and deletes old logs. It acts as the ``worker``
    system actor."""

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
        self.ctx = Context.system(WORKER)
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

    async def _run_job(self, job_id: str) -> None:
        ctx = Context.system(WORKER, request_id=job_id)  # the job id correlates its logs
        status = await self.service.run_queued(ctx, job_id, self.name)
        if status is not None:
            log.info("job ended", job=job_id, status=status.value, worker=self.name)

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
            if await asyncio.to_thread(self.service.is_orphan, self.ctx, str(job_id)):
                log.warning("job's worker stopped: retrying it", job=job_id)
                await manager.retry_job(task)
