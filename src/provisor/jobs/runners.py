"""A job runner's heartbeat: a process running jobs (a server's job runner, ``provisor
worker``) says it is alive every quarter of the stale time, and that it stopped when it
stops, so that ``GET /api/v1/job-runners`` and ``provisor jobs start`` can tell when a queued
job waits for nothing."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from provisor.context import ANY_TENANT, Context
from provisor.jobs.service import WORKER, JobService
from provisor.timestamps import now

log = structlog.get_logger("provisor.jobs")


async def beating(service: JobService, name: str, stop: asyncio.Event) -> None:
    """Beat as runner ``name`` until ``stop`` is set, then retire (after the last beat, so
    that none lands after it). A failed beat is logged and tried again next time. A runner
    serves every tenant (``job_runners`` is the installation's table)."""
    ctx = Context.system(WORKER, tenant=ANY_TENANT)
    started = now()
    every = max(0.5, service.stale_seconds / 4)
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(service.beat, ctx, name, started)
            except Exception:
                log.exception("the job runner's heartbeat failed", runner=name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    finally:
        try:
            await asyncio.to_thread(service.retire, ctx, name)
        except Exception:
            log.exception("the job runner could not say it stopped", runner=name)
