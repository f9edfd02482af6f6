"""Jobs as the API, the logs and the engine see them (spec §3.3, §3.8, §3.9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisor.context import DEFAULT_TENANT


class JobType(StrEnum):
    READ = "READ"  # writes new and changed entities
    RESYNC = "RESYNC"  # full read, rewrites every entity
    SIMULATE = "SIMULATE"  # full read, writes nothing, reports what it would do


class JobStatus(StrEnum):
    QUEUED = "Queued"
    RUNNING = "Running"
    RUNNING_WITH_ERROR = "Running with Error"
    SUCCESS = "Success"
    FINISHED_WITH_ERROR = "Finished with Error"
    MANUALLY_TERMINATED = "Manually Terminated"
    PENDING_RESTART = "Pending Restart"

    @property
    def active(self) -> bool:
        return self in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RUNNING_WITH_ERROR)

    @property
    def finished(self) -> bool:
        return not self.active and self is not JobStatus.PENDING_RESTART


ACTIVE = tuple(s.value for s in JobStatus if s.active)


class Trigger(StrEnum):
    IMMEDIATE = "IMMEDIATE"
    REPEAT = "REPEAT"


class ReadMode(StrEnum):
    FULL = "Full Read"
    DELTA = "Delta Read"


class Action(StrEnum):
    """What happened to one entity in one system (statistics and entity logs)."""

    READ = "read"
    SKIPPED = "skipped"
    FAILED = "failed"
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    UNCHANGED = "unchanged"


class Logged(StrEnum):
    """The actions an entity log records (every one, by default), in SAP's order."""

    FAILED = "failed"
    SKIPPED = "skipped"
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(slots=True)
class Counts:
    """Statistics of one entity type in one system."""

    read: int = 0
    skipped: int = 0
    failed: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0

    def add(self, action: Action, n: int = 1) -> None:
        setattr(self, action.value, getattr(self, action.value) + n)

    def to_dict(self) -> dict[str, int]:
        return {
            "read": self.read,
            "skipped": self.skipped,
            "failed": self.failed,
            "created": self.created,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Statistic:
    """A job's figures for one entity type in one system (read in the source, written in a
    target)."""

    entity_type: str
    system_id: str
    system_name: str
    role: str
    counts: Counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "entityType": self.entity_type,
            "systemId": self.system_id,
            "systemName": self.system_name,
            "role": self.role,
            **self.counts.to_dict(),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EntityLogEntry:
    """One entity a job failed, skipped, created, updated or deleted in one system: its id in
    the source (``entity_id``), its name (userName / displayName) and its id in the target
    when the job knew them; its content only when an ``ips.trace.*.entity.content`` property
    asked for it."""

    action: Action
    entity_type: str
    system_id: str
    system_name: str
    entity_id: str
    reason: str | None
    content: str | None
    time: str
    name: str | None = None
    target_entity_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "entityType": self.entity_type,
            "systemId": self.system_id,
            "systemName": self.system_name,
            "entityId": self.entity_id,
            "name": self.name,
            "targetEntityId": self.target_entity_id,
            "reason": self.reason,
            "content": self.content,
            "time": self.time,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str
    source_id: str
    source_name: str
    type: JobType
    trigger: Trigger
    triggered_by: str
    status: JobStatus
    read_mode: ReadMode | None
    created: str
    started: str | None = None
    ended: str | None = None
    error: str | None = None
    outcome: str | None = None
    stop_requested: bool = False
    resumed_from: str | None = None
    chain_id: str = ""  # the first job of a chain of restarts: entities seen are marked with it
    checkpoint: int = 0  # entities of the source fully processed (for a restart)
    statistics: list[Statistic] = field(default_factory=list)
    tenant: str = DEFAULT_TENANT  # whose job: it runs in its tenant's context

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sourceSystemId": self.source_id,
            "sourceSystemName": self.source_name,
            "type": self.type.value,
            "triggerType": self.trigger.value,
            "triggeredBy": self.triggered_by,
            "status": self.status.value,
            "readMode": self.read_mode.value if self.read_mode else None,
            "created": self.created,
            "startTime": self.started,
            "endTime": self.ended,
            "errorMessage": self.error,
            "executionOutcome": self.outcome,
            "stopRequested": self.stop_requested,
            "resumedFrom": self.resumed_from,
            "statistics": [s.to_dict() for s in self.statistics],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRunner:
    """A process that runs jobs (a server's job runner, ``provisor worker``), alive while its
    heartbeat is recent."""

    name: str  # host:pid
    started: str
    heartbeat: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "started": self.started, "heartbeat": self.heartbeat}
