"""The schedules pages: every source's schedule, and a source's schedule to create, change,
turn off or delete (through the ScheduleService, as the admin API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import InputError, NotFoundError
from provisor.jobs.schedule import DAYS, DEFAULT_TIME_ZONE, SourceSchedule

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

SOURCES = 200  # sources listed (the benchmark has 50 systems)


@router.get("/schedules")
def schedules(request: Request, ctx: ConsoleContext) -> Response:
    found = services(request)
    sources, total = found.systems.listing(ctx, role=Role.SOURCE, limit=SOURCES)
    by_source = {s.source_id: s for s in found.schedules.all(ctx)}
    return render(
        request,
        "schedules/list.html",
        rows=[(system, by_source.get(system.id)) for system in sources],
        total=total,
        shown=len(sources),
    )


def _current(ctx: Context, request: Request, source: str) -> SourceSchedule | None:
    try:
        return services(request).schedules.get(ctx, source)
    except NotFoundError:
        return None


def _values(schedule: SourceSchedule | None) -> dict[str, Any]:
    """The form's values of a saved schedule (or of a new one)."""
    data = schedule.schedule.to_dict() if schedule else {"enabled": True, "intervalMinutes": 60}
    weekly = "daysOfWeek" in data
    return {
        "enabled": data["enabled"],
        "kind": "weekly" if weekly else "interval",
        "interval": str(data.get("intervalMinutes", 60)),
        "days": data.get("daysOfWeek", []),
        "time": data.get("time", "02:00"),
        "zone": data.get("timeZone", DEFAULT_TIME_ZONE),
    }


def _form(
    request: Request,
    ctx: Context,
    source: str,
    *,
    values: dict[str, Any] | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    system = services(request).systems.show(ctx, source)
    current = _current(ctx, request, system.id)
    return render(
        request,
        "schedules/form.html",
        status=status,
        system=system,
        saved=current,
        values=values or _values(current),
        days=DAYS,
        error=error,
    )


@router.get("/schedules/{source}")
def schedule(request: Request, source: str, ctx: ConsoleContext) -> Response:
    return _form(request, ctx, source)


def _typed(form: Any) -> dict[str, Any]:
    return {
        "enabled": form.get("enabled") == "1",
        "kind": form.get("kind", "interval"),
        "interval": str(form.get("interval", ""))[:16],
        "days": [d for d in form.getlist("days") if d in DAYS],
        "time": str(form.get("time", ""))[:16],
        "zone": str(form.get("zone", ""))[:64],
    }


def _document(typed: dict[str, Any]) -> dict[str, Any]:
    """The admin API's JSON of the form's values; InputError for a number that is none."""
    if typed["kind"] == "weekly":
        return {
            "enabled": typed["enabled"],
            "daysOfWeek": typed["days"],
            "time": typed["time"],
            "timeZone": typed["zone"] or DEFAULT_TIME_ZONE,
        }
    try:
        minutes = int(typed["interval"])
    except ValueError:
        raise InputError(
            f"The interval is a number of minutes, not {typed['interval']!r}."
        ) from None
    return {"enabled": typed["enabled"], "intervalMinutes": minutes}


@router.post("/schedules/{source}")
async def save(request: Request, source: str, ctx: ConsoleContext) -> Response:
    typed = _typed(await request.form())
    return await run_in_threadpool(_save, request, ctx, source, typed)


def _save(request: Request, ctx: Context, source: str, typed: dict[str, Any]) -> Response:
    try:
        saved = services(request).schedules.put(ctx, source, _document(typed))
    except InputError as exc:
        return _form(request, ctx, source, values=typed, error=exc.message, status=400)
    return redirect(
        request, f"/schedules/{saved.source_id}", notice=f"Schedule of {saved.source_name} saved."
    )


@router.post("/schedules/{source}/disable")
def disable(request: Request, source: str, ctx: ConsoleContext) -> Response:
    saved = services(request).schedules.disable(ctx, source)
    return redirect(
        request,
        f"/schedules/{saved.source_id}",
        notice=f"Schedule of {saved.source_name} turned off.",
    )


@router.post("/schedules/{source}/delete")
def delete(request: Request, source: str, ctx: ConsoleContext) -> Response:
    system = services(request).systems.show(ctx, source)
    services(request).schedules.delete(ctx, system.id)
    return redirect(request, "/schedules", notice=f"Schedule of {system.name} deleted.")
