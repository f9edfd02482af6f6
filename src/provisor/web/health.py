"""Liveness and readiness: ``/health`` answers 200 when the database answers."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
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
