"""The jobs of the admin API: start, follow, inspect and stop jobs; their entity logs and log
exports; deletions held back; the job runners; job settings and resets."""

from __future__ import annotations

import re
from typing import Any, Literal, NotRequired, TypedDict

from provisor.remote.session import Session, path

JobTypeName = Literal["READ", "RESYNC", "SIMULATE"]
EntityAction = Literal["failed", "skipped", "created", "updated", "deleted"]
LogType = Literal[
    "commonLog",
    "failedEntitiesLog",
    "skippedEntitiesLog",
    "createdEntitiesLog",
    "updatedEntitiesLog",
    "deletedEntitiesLog",
    "allErrorsLog",
]

API = "/api/v1"


class Statistic(TypedDict):
    """A job's figures for one entity type in one system."""

    entityType: str
    systemId: str
    systemName: str
    role: str  # source | target
    read: int
    skipped: int
    failed: int
    created: int
    updated: int
    deleted: int
    unchanged: int


class Job(TypedDict):
    id: str
    sourceSystemId: str
    sourceSystemName: str
    type: str
    triggerType: str
    triggeredBy: str
    status: str
    readMode: str | None
    created: str
    startTime: str | None
    endTime: str | None
    errorMessage: str | None
    executionOutcome: str | None
    stopRequested: bool
    resumedFrom: str | None
    statistics: list[Statistic]


class JobPage(TypedDict):
    items: list[Job]
    total: int
    offset: NotRequired[int]
    limit: NotRequired[int]


class EntityLog(TypedDict):
    """One entity a job failed, skipped, created, updated or deleted in one system."""

    action: str
    entityType: str
    systemId: str
    systemName: str
    entityId: str  # in the source
    name: str | None  # userName / displayName
    targetEntityId: str | None
    reason: str | None
    content: str | None  # only when an ips.trace.*.entity.content property asks
    time: str


class EntityLogPage(TypedDict):
    items: list[EntityLog]
    total: int
    offset: NotRequired[int]
    limit: NotRequired[int]


class Hold(TypedDict):
    """Deletions held back for one target and entity type."""

    sourceSystemId: str
    targetSystemId: str
    targetSystemName: str
    entityType: str
    reason: str  # empty | threshold
    heldBack: int
    read: int
    lastFullCount: int | None
    threshold: int | None
    jobId: str
    held: str
    confirmedBy: str | None
    confirmed: str | None


class JobRunner(TypedDict):
    """A process running jobs."""

    name: str
    started: str
    heartbeat: str


class Export(TypedDict):
    """A job's logs as a zip."""

    filename: str
    data: bytes


class Jobs:
    """``remote.jobs``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- starting, following, stopping ---------------------------------------------------------

    def start(self, source: str, *, type: JobTypeName = "READ", trace: bool = False) -> Job:
        """Start a job on a source system (id or name); queued behind a running one."""
        body = {"type": type, "trace": trace}
        job: Job = self._session.json("POST", path(API, "systems", source, "jobs"), json=body)
        return job

    def get(self, job_id: str) -> Job:
        job: Job = self._session.json("GET", path(API, "jobs", job_id))
        return job

    def all(
        self,
        *,
        source: str | None = None,
        status: str | None = None,
        type: JobTypeName | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> JobPage:
        """Jobs, newest first."""
        params = {"source": source, "status": status, "type": type, "offset": offset}
        page: JobPage = self._session.json(
            "GET", path(API, "jobs"), params={**params, "limit": limit}
        )
        return page

    def stop(self, job_id: str) -> Job:
        """Ask a job to stop at its next safe point (a queued one never starts)."""
        job: Job = self._session.json("POST", path(API, "jobs", job_id, "stop"))
        return job

    def runners(self) -> list[JobRunner]:
        """The processes running jobs now; none: queued jobs wait."""
        found = self._session.json("GET", path(API, "job-runners"))
        items: list[JobRunner] = found["items"]
        return items

    # -- what a job did ------------------------------------------------------------------------

    def entities(
        self,
        job_id: str,
        *,
        actions: list[EntityAction] | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> EntityLogPage:
        """A page of the entities a job failed, skipped, created, updated or deleted."""
        params = {"action": actions or None, "offset": offset, "limit": limit}
        page: EntityLogPage = self._session.json(
            "GET", path(API, "jobs", job_id, "entities"), params=params
        )
        return page

    def export(self, job_id: str, log_type: LogType = "commonLog") -> Export:
        """A job's logs as the zip SAP's tenant admin API gives, with its file name."""
        response = self._session.call(
            "GET", path(API, "jobs", job_id, "logs"), params={"logType": log_type}
        )
        found = re.search(r'filename="([^"/\\]+)"', response.headers.get("content-disposition", ""))
        name = found.group(1) if found else f"ips_jobLogs_{job_id}.zip"
        return Export(filename=name, data=response.content)

    def validate(self, source: str, samples: dict[str, Any]) -> dict[str, Any]:
        """Sample entities (``users``, ``groups``: lists of entities or CSV text) through the
        source's read and its targets' write transformations; nothing is written."""
        result: dict[str, Any] = self._session.json(
            "POST", path(API, "systems", source, "validate"), json=samples
        )
        return result

    # -- deletions held back -------------------------------------------------------------------

    def holds(self, source: str) -> list[Hold]:
        found = self._session.json("GET", path(API, "systems", source, "deletion-holds"))
        items: list[Hold] = found["items"]
        return items

    def confirm_deletions(
        self, source: str, *, entity_type: str | None = None, target: str | None = None
    ) -> list[Hold]:
        """Let the next run delete what was held back (at most as many, once)."""
        body = {k: v for k, v in (("entityType", entity_type), ("target", target)) if v}
        found = self._session.json(
            "POST", path(API, "systems", source, "confirm-deletions"), json=body
        )
        confirmed: list[Hold] = found["confirmed"]
        return confirmed

    # -- logs, settings and resets -------------------------------------------------------------

    def retention_days(self) -> int:
        """How many days the logs of finished jobs are kept."""
        found = self._session.json("GET", path(API, "job-settings"))
        return int(found["logRetentionDays"])

    def set_retention_days(self, days: int) -> int:
        """Keep the logs of finished jobs 7, 14 or 30 days."""
        body = {"logRetentionDays": days}
        found = self._session.json("PUT", path(API, "job-settings"), json=body)
        return int(found["logRetentionDays"])

    def delete_logs(self) -> int:
        """Delete the logs of every finished job; how many jobs went."""
        return int(self._session.json("DELETE", path(API, "jobs"))["deleted"])

    def reset_system(self, system: str) -> int:
        """Forget a source's or target's operational data; how many records went."""
        found = self._session.json("POST", path(API, "systems", system, "reset"))
        return int(found["removedRecords"])

    def reset_tenant(self) -> int:
        """Delete every system with its transformations, schedules, jobs and logs; how many
        systems went."""
        found = self._session.json("POST", path(API, "tenant", "reset"), json={"confirm": True})
        return int(found["deletedSystems"])
