"""Schedules of source systems in the admin API (``/api/v1``, permission ``admin``, spec §3.7)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body
from fastapi.openapi.models import Example
from starlette.responses import Response

from provisor.jobs.scheduler import Scheduler
from provisor.runtime import Services
from provisor.web import openapi
from provisor.web.auth import Admin, GuardedRoute, ServicesDep

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_SCHEDULES],
    route_class=GuardedRoute,
    dependencies=[Admin],
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


def _scheduler(services: Services) -> Scheduler:
    return services.scheduler


@router.get("/systems/{system_id}/schedule", summary="A source system's schedule")
def get_schedule(system_id: str, services: ServicesDep) -> Response:
    return _json(_scheduler(services).get(system_id).to_dict())


@router.put(
    "/systems/{system_id}/schedule",
    summary="Run READ jobs every N (> 30) minutes or on days of the week at a time",
)
def put_schedule(
    system_id: str,
    body: Annotated[dict[str, Any], Body(openapi_examples=EXAMPLES)],
    services: ServicesDep,
) -> Response:
    return _json(_scheduler(services).put(system_id, body).to_dict())


@router.delete(
    "/systems/{system_id}/schedule", status_code=204, summary="Delete a source's schedule"
)
def delete_schedule(system_id: str, services: ServicesDep) -> Response:
    _scheduler(services).delete(system_id)
    return Response(status_code=204)
