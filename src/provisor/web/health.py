"""Liveness and readiness: ``/health`` answers 200 when the database answers (kept as it
was), ``/health/live`` when the process answers, ``/health/ready`` when every check of
``installation.health`` passes. None authenticates (docs/decisions/0005): they say nothing of
any tenant's data."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor import __version__
from provisor.errors import StorageError
from provisor.web import openapi
from provisor.web.auth import ServicesDep

router = APIRouter(tags=[openapi.HEALTH])

HEALTH = {
    "type": "object",
    "required": ["status", "database", "version"],
    "properties": {
        "status": {"enum": ["ok", "unavailable"]},
        "database": {"type": "string", "description": "The dialect, or unreachable"},
        "version": {"type": "string"},
    },
}
_HEALTH = {"application/json": {"schema": HEALTH}}

LIVE = {
    "type": "object",
    "required": ["status", "version"],
    "properties": {"status": {"enum": ["ok"]}, "version": {"type": "string"}},
}
CHECK = {
    "type": "object",
    "required": ["ok", "detail"],
    "properties": {"ok": {"type": "boolean"}, "detail": {"type": "string"}},
}
READY = {
    "type": "object",
    "required": ["status", "checks", "version"],
    "properties": {
        "status": {"enum": ["ready", "unready"]},
        "checks": {
            "type": "object",
            "description": "One entry per check: database (it answers), migrations (its "
            "revision is the code's), master_key (this node's is the database's), jobs (a job "
            "runner beat within PROVISOR_JOB_STALE_SECONDS)",
            "required": ["database", "migrations", "master_key", "jobs"],
            "additionalProperties": CHECK,
        },
        "version": {"type": "string"},
    },
}
_READY = {"application/json": {"schema": READY}}


@router.get(
    "/health",
    summary="Whether the server and its database work (no authentication)",
    responses={
        200: {"description": "Healthy", "content": _HEALTH},
        503: {"description": "Database unavailable", "content": _HEALTH},
    },
    response_class=Response,
)
def health(services: ServicesDep) -> Response:
    try:
        services.db.ping()
    except StorageError:
        body = {"status": "unavailable", "database": "unreachable", "version": __version__}
        return Response(orjson.dumps(body), 503, media_type="application/json")
    body = {"status": "ok", "database": services.db.dialect, "version": __version__}
    return Response(orjson.dumps(body), 200, media_type="application/json")


@router.get(
    "/health/live",
    summary="Whether the process answers: no database (no authentication)",
    responses={200: {"description": "Alive", "content": {"application/json": {"schema": LIVE}}}},
    response_class=Response,
)
async def live() -> Response:
    body = {"status": "ok", "version": __version__}
    return Response(orjson.dumps(body), 200, media_type="application/json")


@router.get(
    "/health/ready",
    summary="Whether the node can serve: database, migrations, master key, job runner "
    "(no authentication; probed at most once a second and a half per process)",
    responses={
        200: {"description": "Ready: every check passed", "content": _READY},
        503: {"description": "Not ready: the failed checks say why", "content": _READY},
    },
    response_class=Response,
)
async def ready(services: ServicesDep) -> Response:
    report = await run_in_threadpool(services.readiness.report)
    body = {
        "status": "ready" if report.ready else "unready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in report.checks},
        "version": __version__,
    }
    return Response(orjson.dumps(body), 200 if report.ready else 503, media_type="application/json")
