"""Source schedules (spec §3.7): saving them, and starting their READ jobs on the grid.

Every executor calls ``tick`` about once a second. The due schedules are taken in one
transaction (each is taken by one process only), then their jobs start. A source whose job
still runs or waits skips the tick; nothing is caught up later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from provisor.connectors.base import Role
from provisor.context import Context as _Context
from provisor.errors import ConfigError, ConflictError, NotFoundError
from provisor.jobs.model import JobType, Trigger
from provisor.jobs.schedule import Schedule, SourceSchedule
from provisor.jobs.service import JobService
from provisor.storage import schedules as store
from provisor.storage.database import Database
from provisor.systems.model import System

_SYSTEMS_CTX = _Context.system("scheduler")  # until this module takes a ctx (issue 15)

log = structlog.get_logger("provisor.jobs")

TRIGGERED_BY = "Schedule"


class Scheduler:
    def __init__(self, db: Database, jobs: JobService) -> None:
        self.db = db
        self.jobs = jobs

    def all(self) -> list[SourceSchedule]:
        with self.db.read() as conn:
            return store.list_schedules(conn)

    def get(self, source: str) -> SourceSchedule:
        """A source's schedule (id or name); NotFoundError when it has none."""
        system = self.jobs.systems.get(_SYSTEMS_CTX, source)
        with self.db.read() as conn:
            found = store.get_schedule(conn, system.id)
        if found is None:
            raise NotFoundError(f"{system.name} has no schedule.")
        return found

    def put(
        self, source: str, data: Mapping[str, Any], *, now: datetime | None = None
    ) -> SourceSchedule:
        """Save a source's schedule from the admin API's JSON; ConfigError when it is
        invalid or the system is no source. An interval's grid starts ``now``."""
        system = self._source(source)
        moment = now or datetime.now(UTC)
        schedule = Schedule.from_dict(data, anchor=moment)
        with self.db.write() as conn:
            return store.put_schedule(conn, system.id, schedule, moment)

    def disable(self, source: str) -> SourceSchedule:
        """Turn a schedule off and keep it; a running job goes on."""
        found = self.get(source)
        off = replace(found.schedule, enabled=False)
        with self.db.write() as conn:
            return store.put_schedule(conn, found.source_id, off, datetime.now(UTC))

    def delete(self, source: str) -> None:
        system = self.jobs.systems.get(_SYSTEMS_CTX, source)
        with self.db.write() as conn:
            deleted = store.delete_schedule(conn, system.id)
        if not deleted:
            raise NotFoundError(f"{system.name} has no schedule.")

    def tick(self, now: datetime | None = None) -> list[str]:
        """Start a READ job for every source due at ``now``; the ids of the jobs started.
        A source still running, disabled or just deleted is logged and skipped."""
        moment = now or datetime.now(UTC)
        with self.db.read() as conn:
            if not store.any_due(conn, moment):
                return []
        with self.db.write() as conn:
            due = store.due(conn, moment)
        started = []
        for source_id in due:
            try:
                job = self.jobs.start(
                    source_id,
                    type=JobType.READ,
                    trigger=Trigger.REPEAT,
                    triggered_by=TRIGGERED_BY,
                    queue_if_running=False,
                )
            except ConflictError as exc:
                log.info("scheduled job skipped", source=source_id, reason=exc.message)
            except (ConfigError, NotFoundError) as exc:
                log.warning("scheduled job not started", source=source_id, reason=exc.message)
            else:
                log.info("scheduled job started", job=job.id, source=job.source_name)
                started.append(job.id)
        return started

    def _source(self, source: str) -> System:
        system = self.jobs.systems.get(_SYSTEMS_CTX, source)
        if system.role is not Role.SOURCE:
            raise ConfigError(
                f"{system.name} is a {system.role} system: only source systems have schedules."
            )
        return system
