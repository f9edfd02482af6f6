"""The real-time provisioning logs of the admin API, ``/api/v1/realtime-logs``."""

from __future__ import annotations

from typing import TypedDict

from provisor.remote.session import Session, path

LOGS = "/api/v1/realtime-logs"


class SystemOutcome(TypedDict):
    """What a real-time call did in one system."""

    systemId: str
    systemName: str
    role: str
    operation: str
    state: str
    reason: str | None


class RealtimeLog(TypedDict):
    """One real-time provisioning call."""

    id: str
    logType: str
    sourceSystemId: str
    sourceSystemName: str
    entityType: str
    entityId: str | None
    operation: str
    status: str
    startTime: str
    durationMs: int
    errorMessage: str | None
    triggeredBy: str
    systems: list[SystemOutcome]


class RealtimeLogPage(TypedDict):
    items: list[RealtimeLog]
    total: int
    offset: int
    limit: int


class Realtime:
    """``remote.realtime``: what real-time provisioning did."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def logs(
        self,
        *,
        source: str | None = None,
        entity_id: str | None = None,
        entity_type: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> RealtimeLogPage:
        """Logs newest first, of a source system (id or name), an entity id, an entity type
        (``user``, ``group``), a status (``Finished Successfully``, ``Finished with Error``)."""
        params = {
            "source": source,
            "entityId": entity_id,
            "entityType": entity_type,
            "status": status,
            "offset": offset,
            "limit": limit,
        }
        page: RealtimeLogPage = self._session.json("GET", LOGS, params=params)
        return page

    def log(self, log_id: str) -> RealtimeLog:
        found: RealtimeLog = self._session.json("GET", path(LOGS, log_id))
        return found
