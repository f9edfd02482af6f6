"""Source schedules (spec §3.7): saving them, and starting their READ jobs on the grid.

Every executor calls ``tick`` about once a second. The due schedules of every tenant are
taken in one transaction (each is taken by one process only), then their jobs start, each
under the scheduler's system context in the schedule's tenant (recorded as started by
``Schedule``). A source whose job still runs or waits skips the tick, and so does every
source of a tenant the operator disabled; nothing is caught up later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from provisor.connectors.base import Role
from provisor.context import ANY_TENANT, Context, Permission, requires
from provisor.errors import ConfigError, ConflictError, InputError, NotFoundError
from provisor.jobs import schedules_store as store
from provisor.jobs.model import JobType, Trigger
from provisor.jobs.schedule import Schedule, SourceSchedule
from provisor.jobs.service import JobService
from provisor.storage.database import Database
from provisor.systems.model import System

log = structlog.get_logger("provisor.jobs")

SCHEDULER = "Schedule"  # the actor of scheduled jobs: their "triggered by"
OFF = "The tenant is disabled: it runs no scheduled job."


class ScheduleService:
    """The schedules of source systems (admin operations) and their ticks (the workers')."""

    def __init__(self, db: Database, jobs: JobService) -> None:
        self.db = db
        self.jobs = jobs

    def _system(self, ctx: Context, id_or_name: str) -> System:
        return self.jobs.systems.get(ctx, id_or_name)

    @requires(Permission.VIEW)
    def all(self, ctx: Context) -> list[SourceSchedule]:
        """Every source's schedule."""
        with self.db.read(ctx) as tx:
            return store.list_schedules(tx)

    @requires(Permission.VIEW)
    def get(self, ctx: Context, source: str) -> SourceSchedule:
        """A source's schedule (id or name); NotFoundError when it has none."""
        return self._get(ctx, source)

    def _get(self, ctx: Context, source: str) -> SourceSchedule:
        system = self._system(ctx, source)
        with self.db.read(ctx) as tx:
            found = store.get_schedule(tx, system.id)
        if found is None:
            raise NotFoundError(f"{system.name} has no schedule.")
        return found

    @requires()
    def put(
        self, ctx: Context, source: str, data: Mapping[str, Any], *, now: datetime | None = None
    ) -> SourceSchedule:
        """Save a source's schedule from the admin API's JSON; InputError when it is
        invalid or the system is no source. An interval's grid starts ``now``."""
        system = self._source(ctx, source)
        moment = now or datetime.now(UTC)
        schedule = Schedule.from_dict(data, anchor=moment)
        with self.db.write(ctx) as tx:
            saved = store.put_schedule(tx, system.id, schedule, moment)
            tx.audit("schedule.update", system.id, schedule.to_dict())
        return saved

    @requires()
    def disable(self, ctx: Context, source: str) -> SourceSchedule:
        """Turn a schedule off and keep it; a running job goes on."""
        found = self._get(ctx, source)
        off = replace(found.schedule, enabled=False)
        with self.db.write(ctx) as tx:
            saved = store.put_schedule(tx, found.source_id, off, datetime.now(UTC))
            tx.audit("schedule.update", found.source_id, off.to_dict())
        return saved

    @requires()
    def delete(self, ctx: Context, source: str) -> None:
        """Delete a source's schedule; NotFoundError when it has none."""
        system = self._system(ctx, source)
        with self.db.write(ctx) as tx:
            deleted = store.delete_schedule(tx, system.id)
            if deleted:
                tx.audit("schedule.delete", system.id)
        if not deleted:
            raise NotFoundError(f"{system.name} has no schedule.")

    def tick(self, now: datetime | None = None) -> list[str]:
        """Start a READ job for every source of every tenant due at ``now``, in its tenant;
        the ids of the jobs started. A source still running, disabled or just deleted, or of
        a disabled tenant, is logged and skipped."""
        every = Context.system(SCHEDULER, tenant=ANY_TENANT)
        moment = now or datetime.now(UTC)
        with self.db.read(every) as tx:
            if not store.any_due(tx, moment):
                return []
        with self.db.write(every) as tx:
            due = store.due(tx, moment)
            disabled = store.disabled_tenants(tx) if due else set()
        started = []
        for tenant, source_id in due:
            if tenant in disabled:
                log.info("scheduled job skipped", tenant=tenant, source=source_id, reason=OFF)
                continue
            ctx = Context.system(SCHEDULER, tenant=tenant, request_id=every.request_id)
            try:
                job = self.jobs.start(
                    ctx,
                    source_id,
                    type=JobType.READ,
                    trigger=Trigger.REPEAT,
                    queue_if_running=False,
                )
            except ConflictError as exc:
                log.info(
                    "scheduled job skipped", tenant=tenant, source=source_id, reason=exc.message
                )
            except (ConfigError, InputError, NotFoundError) as exc:
                log.warning(
                    "scheduled job not started",
                    tenant=tenant,
                    source=source_id,
                    reason=exc.message,
                )
            else:
                log.info("scheduled job started", tenant=tenant, job=job.id, source=job.source_name)
                started.append(job.id)
        return started

    def _source(self, ctx: Context, source: str) -> System:
        system = self._system(ctx, source)
        if system.role is not Role.SOURCE:
            raise InputError(
                f"{system.name} is a {system.role} system: only source systems have schedules."
            )
        return system
