"""Schedules of source systems in the admin API (``/api/v1``, permission ``admin``, spec §3.7)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body
from fastapi.openapi.models import Example
from starlette.responses import Response

from provisor.jobs import present
from provisor.jobs.scheduler import ScheduleService
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_SCHEDULES],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

EXAMPLES: dict[str, Example] = {
    "interval": {"value": {"enabled": True, "intervalMinutes": 40}},
    "weekly": {
        "value": {
            "enabled": True,
            "daysOfWeek": ["MON", "FRI"],
            "time": "02:30",
            "timeZone": "Europe/Berlin",
        }
    },
}


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@router.get(
    "/schedules",
    summary="Every source system's schedule, by the source's name",
    dependencies=[guard(ScheduleService.all)],
)
def list_schedules(services: ServicesDep, ctx: ContextDep) -> Response:
    found = services.schedules.all(ctx)
    return _json({"items": present.schedules(found), "total": len(found)})


@router.get(
    "/systems/{system_id}/schedule",
    summary="A source system's schedule",
    dependencies=[guard(ScheduleService.get)],
)
def get_schedule(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.schedule(services.schedules.get(ctx, system_id)))


@router.put(
    "/systems/{system_id}/schedule",
    summary="Run READ jobs every N (> 30) minutes or on days of the week at a time",
    dependencies=[guard(ScheduleService.put)],
)
def put_schedule(
    system_id: str,
    body: Annotated[dict[str, Any], Body(openapi_examples=EXAMPLES)],
    services: ServicesDep,
    ctx: ContextDep,
) -> Response:
    return _json(present.schedule(services.schedules.put(ctx, system_id, body)))


@router.post(
    "/systems/{system_id}/schedule/disable",
    summary="Turn a source's schedule off and keep it (a running job goes on)",
    dependencies=[guard(ScheduleService.disable)],
)
def disable_schedule(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.schedule(services.schedules.disable(ctx, system_id)))


@router.delete(
    "/systems/{system_id}/schedule",
    status_code=204,
    summary="Delete a source's schedule",
    dependencies=[guard(ScheduleService.delete)],
)
def delete_schedule(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    services.schedules.delete(ctx, system_id)
    return Response(status_code=204)
