"""The admin API's JSON of jobs, their entity logs, deletion holds and schedules: built here
once, for the web layer and the CLI's ``--json`` alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from provisor.jobs.model import EntityLogEntry, Job, JobRunner
from provisor.jobs.ports import Hold
from provisor.jobs.schedule import SourceSchedule


def job(found: Job) -> dict[str, Any]:
    """A job with its statistics."""
    return found.to_dict()


def jobs(
    found: Sequence[Job], total: int, *, offset: int | None = None, limit: int | None = None
) -> dict[str, Any]:
    """A page of jobs; the admin API tells the page's offset and limit too."""
    page: dict[str, Any] = {"items": [j.to_dict() for j in found], "total": total}
    if offset is not None:
        page["offset"] = offset
    if limit is not None:
        page["limit"] = limit
    return page


def public_job(found: Job) -> dict[str, Any]:
    """A job's status as SAP's tenant admin API gives it."""
    return {"jobId": found.id, **found.to_dict()}


def public_started(found: Job) -> dict[str, Any]:
    """SAP's answer to *startJob*."""
    return {"jobId": found.id, "status": found.status.value}


def entity_logs(
    rows: Sequence[EntityLogEntry],
    total: int,
    *,
    offset: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """A page of a job's entity logs: a content or reason that is JSON (a document, a
    trace, a simulation's diff) as JSON, not as a string holding it."""
    items = [
        {**d, "content": _nested(d["content"]), "reason": _nested(d["reason"])}
        for d in (r.to_dict() for r in rows)
    ]
    page: dict[str, Any] = {"items": items, "total": total}
    if offset is not None:
        page["offset"] = offset
    if limit is not None:
        page["limit"] = limit
    return page


def runners(found: Sequence[JobRunner]) -> dict[str, Any]:
    """The processes running jobs now."""
    return {"items": [r.to_dict() for r in found]}


def _nested(text: str | None) -> Any:
    """The JSON an entity log's text holds, else the text."""
    if text is None or not text.startswith(("{", "[")):
        return text
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def holds(found: Sequence[Hold]) -> dict[str, Any]:
    """The deletions held back for a source."""
    return {"items": [h.to_dict() for h in found]}


def confirmed(found: Sequence[Hold]) -> dict[str, Any]:
    """The holds a confirmation covered."""
    return {"confirmed": [h.to_dict() for h in found]}


def schedule(found: SourceSchedule) -> dict[str, Any]:
    """A source's schedule with its next and last run."""
    return found.to_dict()


def schedules(found: Sequence[SourceSchedule]) -> list[dict[str, Any]]:
    return [s.to_dict() for s in found]


def retention(days: int) -> dict[str, Any]:
    return {"logRetentionDays": days}
