"""A real-time change and its log (spec §6.2, §6.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from provisor.errors import NotFoundError
from provisor.jobs.model import Action
from provisor.types import EntityType


class Operation(StrEnum):
    """What a source application says it did to an entity."""

    CREATE = "CREATE"  # POST: a new or changed entity (an upsert)
    UPDATE = "UPDATE"  # PUT
    PATCH = "PATCH"  # PATCH: read the entity again from the source
    DELETE = "DELETE"


class Status(StrEnum):
    """How a real-time call ended."""

    SUCCESS = "Finished Successfully"
    ERROR = "Finished with Error"


STATUSES = tuple(s.value for s in Status)


class State(StrEnum):
    """SAP's states of an entity in a system."""

    READ = "Entity Read"
    CREATED = "Entity Created"
    UPDATED = "Entity Updated"
    UNCHANGED = "Entity Already Provisioned"
    SKIPPED = "Entity Skipped"
    FAILED = "Entity Failed"
    DELETED = "Entity Deleted"
    NOT_PROVISIONED = "Entity Not Provisioned"

    @classmethod
    def of(cls, action: Action) -> State:
        """The state of an entity the job engine did ``action`` with."""
        return _STATES[action]


_STATES = {
    Action.READ: State.READ,
    Action.CREATED: State.CREATED,
    Action.UPDATED: State.UPDATED,
    Action.UNCHANGED: State.UNCHANGED,
    Action.SKIPPED: State.SKIPPED,
    Action.FAILED: State.FAILED,
    Action.DELETED: State.DELETED,
}


def entity_type_of(name: str) -> EntityType:
    """The entity type a real-time path names (``user`` or ``group``); NotFoundError else."""
    try:
        return EntityType(name)
    except ValueError:
        raise NotFoundError(f"Entity type {name!r}: use user or group.") from None


@dataclass(frozen=True, slots=True)
class Change:
    """One change a source application pushed."""

    entity_type: EntityType
    operation: Operation
    entity_id: str | None  # from the path (PUT, PATCH, DELETE)
    body: Any = None


@dataclass(slots=True)
class SystemResult:
    """What happened to the entity in one system."""

    system_id: str
    system_name: str
    role: str  # source | target
    operation: str
    state: State
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "systemId": self.system_id,
            "systemName": self.system_name,
            "role": self.role,
            "operation": self.operation,
            "state": self.state.value,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SystemResult:
        return cls(
            data["systemId"],
            data["systemName"],
            data["role"],
            data["operation"],
            State(data["state"]),
            data.get("reason"),
        )


@dataclass(slots=True, kw_only=True)
class RealtimeLog:
    id: str
    source_id: str
    source_name: str
    entity_type: EntityType
    entity_id: str | None
    operation: Operation
    status: Status
    started: str
    duration_ms: int
    error: str | None
    caller: str
    systems: list[SystemResult] = field(default_factory=list)
    entity_name: str | None = None  # userName / displayName, when the entity was read

    @property
    def created(self) -> bool:
        """Whether a CREATE created the entity in some target (an HTTP 201)."""
        return self.operation is Operation.CREATE and any(
            s.state is State.CREATED for s in self.systems
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "logType": "Real Time",
            "sourceSystemId": self.source_id,
            "sourceSystemName": self.source_name,
            "entityType": self.entity_type.value,
            "entityId": self.entity_id,
            "entityName": self.entity_name,
            "operation": self.operation.value,
            "status": self.status.value,
            "startTime": self.started,
            "durationMs": self.duration_ms,
            "errorMessage": self.error,
            "triggeredBy": self.caller,
            "systems": [s.to_dict() for s in self.systems],
        }
