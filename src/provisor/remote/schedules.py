"""The schedules of source systems in the admin API (``/api/v1/schedules``,
``/api/v1/systems/{source}/schedule``)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from provisor.remote.session import Session, path

SYSTEMS = "/api/v1/systems"


class ScheduleInfo(TypedDict):
    """A source's schedule: every ``intervalMinutes``, or on ``daysOfWeek`` at ``time`` in
    ``timeZone``; its next and last run (ISO text, UTC)."""

    systemId: str
    systemName: str
    enabled: bool
    intervalMinutes: NotRequired[int]
    daysOfWeek: NotRequired[list[str]]
    time: NotRequired[str]
    timeZone: NotRequired[str]
    nextRun: str | None
    lastRun: str | None


class ScheduleList(TypedDict):
    items: list[ScheduleInfo]
    total: int


class Schedules:
    """``remote.schedules``: the schedule of a source system (id or name)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def list(self) -> ScheduleList:
        found: ScheduleList = self._session.json("GET", "/api/v1/schedules")
        return found

    def show(self, source: str) -> ScheduleInfo:
        found: ScheduleInfo = self._session.json("GET", path(SYSTEMS, source, "schedule"))
        return found

    def put(self, source: str, schedule: dict[str, Any]) -> ScheduleInfo:
        """Save a schedule: ``{"enabled": true, "intervalMinutes": 40}`` or
        ``{"enabled": true, "daysOfWeek": ["MON"], "time": "02:30", "timeZone": "UTC"}``."""
        saved: ScheduleInfo = self._session.json(
            "PUT", path(SYSTEMS, source, "schedule"), json=schedule
        )
        return saved

    def disable(self, source: str) -> ScheduleInfo:
        off: ScheduleInfo = self._session.json("POST", path(SYSTEMS, source, "schedule", "disable"))
        return off

    def delete(self, source: str) -> None:
        self._session.call("DELETE", path(SYSTEMS, source, "schedule"))
