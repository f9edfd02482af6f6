"""A real-time change and its log (spec §6.2, §6.6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from provisor.jobs.model import Action
from provisor.jobs.plan import Participant

ENTITY_TYPES = ("user", "group")
Operation = Literal["CREATE", "UPDATE", "PATCH", "DELETE"]
STATUSES = ("Finished Successfully", "Finished with Error")

# SAP's states of an entity in a system, by what the job engine did with it.
STATES = {
    Action.READ: "Entity Read",
    Action.CREATED: "Entity Created",
    Action.UPDATED: "Entity Updated",
    Action.UNCHANGED: "Entity Already Provisioned",
    Action.SKIPPED: "Entity Skipped",
    Action.FAILED: "Entity Failed",
    Action.DELETED: "Entity Deleted",
}


@dataclass(frozen=True, slots=True)
class Change:
    """One change a source application pushed."""

    entity_type: str
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
    state: str
    reason: str | None = None

    @classmethod
    def of(
        cls, system: Participant, operation: str, state: str, reason: str | None
    ) -> SystemResult:
        return cls(system.id, system.name, system.role.value, operation, state, reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "systemId": self.system_id,
            "systemName": self.system_name,
            "role": self.role,
            "operation": self.operation,
            "state": self.state,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SystemResult:
        return cls(
            data["systemId"],
            data["systemName"],
            data["role"],
            data["operation"],
            data["state"],
            data.get("reason"),
        )


@dataclass(slots=True, kw_only=True)
class RealtimeLog:
    id: str
    source_id: str
    source_name: str
    entity_type: str
    entity_id: str | None
    operation: str
    status: str
    started: str
    duration_ms: int
    error: str | None
    caller: str
    systems: list[SystemResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "logType": "Real Time",
            "sourceSystemId": self.source_id,
            "sourceSystemName": self.source_name,
            "entityType": self.entity_type,
            "entityId": self.entity_id,
            "operation": self.operation,
            "status": self.status,
            "startTime": self.started,
            "durationMs": self.duration_ms,
            "errorMessage": self.error,
            "triggeredBy": self.caller,
            "systems": [s.to_dict() for s in self.systems],
        }
