"""Running queued jobs in this process: claim, run, restart the orphans, purge old logs, for
every tenant (each job runs in its own tenant)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time

import structlog

from provisor.context import ANY_TENANT, Context
from provisor.jobs.model import Job
from provisor.jobs.runners import beating
from provisor.jobs.scheduler import ScheduleService
from provisor.jobs.service import WORKER, JobService

log = structlog.get_logger("provisor.jobs")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Executor:
    """Claims queued jobs of every tenant from the database and runs up to ``concurrency``
    at once (one per source system, as many per tenant as its quota allows); every
    ``maintenance_seconds`` it restarts jobs whose worker died and deletes the logs older
    than each tenant's retention. It acts as the ``worker`` system actor: over every tenant
    to claim and maintain, in the job's tenant to run one."""

    def __init__(
        self,
        service: JobService,
        schedules: ScheduleService,
        *,
        name: str | None = None,
        concurrency: int = 4,
        poll_seconds: float = 1.0,
        maintenance_seconds: float = 30.0,
    ) -> None:
        self.service = service
        self.schedules = schedules
        self.ctx = Context.system(WORKER, tenant=ANY_TENANT)
        self.name = name or worker_name()
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.maintenance_seconds = maintenance_seconds
        self.tasks: set[asyncio.Task[object]] = set()
        self.wakeup = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; running jobs are then interrupted (and restarted later)."""
        maintained = 0.0
        ended = asyncio.Event()
        heart = asyncio.create_task(beating(self.service, self.name, ended))
        try:
            while not stop.is_set():
                if time.monotonic() - maintained > self.maintenance_seconds:
                    maintained = time.monotonic()
                    await self._maintain()
                await self._start_scheduled()
                await self._claim()
                self.wakeup.clear()
                waiters = [asyncio.ensure_future(e.wait()) for e in (stop, self.wakeup)]
                await asyncio.wait(
                    waiters, timeout=self.poll_seconds, return_when="FIRST_COMPLETED"
                )
                for waiter in waiters:
                    waiter.cancel()
        finally:
            for task in list(self.tasks):
                task.cancel()
            for task in list(self.tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            ended.set()  # the heart's last beat is over before it retires
            await heart

    async def _claim(self) -> None:
        while len(self.tasks) < self.concurrency:
            job = await asyncio.to_thread(self.service.claim, self.ctx, self.name)
            if job is None:
                return
            task: asyncio.Task[object] = asyncio.create_task(self._run(job))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self.tasks.discard(task)
        self.wakeup.set()  # a source may have a queued job waiting for this one

    async def _run(self, job: Job) -> object:
        where = {"job": job.id, "tenant": job.tenant, "source": job.source_name}
        log.info("job started", **where, type=job.type.value)
        ctx = Context.system(WORKER, tenant=job.tenant, request_id=job.id)
        status = await self.service.run(ctx, job)
        log.info("job ended", **where, status=status.value)
        return status

    async def _start_scheduled(self) -> None:
        try:
            await asyncio.to_thread(self.schedules.tick)
        except Exception:
            log.exception("starting scheduled jobs failed")

    async def _maintain(self) -> None:
        try:
            restarted = await asyncio.to_thread(self.service.recover, self.ctx)
            for job in restarted:
                log.warning(
                    "job restarted", job=job.id, tenant=job.tenant, resumed_from=job.resumed_from
                )
            await asyncio.to_thread(self.service.purge, self.ctx)
        except Exception:
            log.exception("job maintenance failed")
