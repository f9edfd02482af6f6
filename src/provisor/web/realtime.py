"""The real-time provisioning API (spec §6.2, permission ``realtime_api``) and its logs in the
admin API (``/api/v1/realtime-logs``, permission ``admin``)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from provisor.connectors.base import ConnectorError
from provisor.context import Context
from provisor.realtime.model import STATUSES, Change, Operation, Status, entity_type_of
from provisor.realtime.service import RealtimeService
from provisor.scim.errors import SCIMError
from provisor.types import EntityType
from provisor.web import auth, openapi
from provisor.web.auth import ContextDep, GuardedRoute, guard
from provisor.web.limits import Offset
from provisor.web.scim_discovery import discovery_list

public = APIRouter(
    tags=[openapi.REALTIME],
    route_class=GuardedRoute,
    responses=openapi.scim_errors,
)
admin = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_REALTIME],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

PREFIXES = ("/ipsproxy/service/api/v1", "/ipsproxy/api/v1")  # SAP's; the second is Neo's
SCIM_JSON = "application/scim+json"


class _BackendFailed(SCIMError):
    status = 502


class _InvalidBody(SCIMError):
    scim_type = "invalidSyntax"


def _realtime(request: Request) -> RealtimeService:
    return auth.services(request).realtime


def _json(data: Any, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(data), status, media_type=media_type)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _InvalidBody(f"The body is not JSON: {exc}.") from None


async def _push(request: Request, ctx: Context, system_id: str, change: Change) -> Response:
    try:
        log = await _realtime(request).push(ctx, system_id, change)
    except ConnectorError as exc:
        raise _BackendFailed(f"The source system failed: {exc.message}") from None
    return _json(log.to_dict(), 201 if log.created else 200, SCIM_JSON)


async def create(system_id: str, entity_type: str, request: Request, ctx: ContextDep) -> Response:
    """A new or changed entity, as the source holds it (an upsert)."""
    body = await _body(request)
    change = Change(entity_type_of(entity_type), Operation.CREATE, None, body)
    return await _push(request, ctx, system_id, change)


async def replace(
    system_id: str, entity_type: str, entity_id: str, request: Request, ctx: ContextDep
) -> Response:
    body = await _body(request)
    change = Change(entity_type_of(entity_type), Operation.UPDATE, entity_id, body)
    return await _push(request, ctx, system_id, change)


async def patch(
    system_id: str, entity_type: str, entity_id: str, request: Request, ctx: ContextDep
) -> Response:
    """A changed entity: read again from the source, which already holds the change."""
    body = await _body(request)
    change = Change(entity_type_of(entity_type), Operation.PATCH, entity_id, body)
    return await _push(request, ctx, system_id, change)


async def remove(
    system_id: str, entity_type: str, entity_id: str, request: Request, ctx: ContextDep
) -> Response:
    change = Change(entity_type_of(entity_type), Operation.DELETE, entity_id)
    return await _push(request, ctx, system_id, change)


async def test_connection(
    system_id: str, entity_type: str, request: Request, ctx: ContextDep
) -> Response:
    """What a source application's *Test Connection* calls: an empty SCIM list when the
    source system exists and takes changes."""
    _realtime(request).check(ctx, system_id, entity_type_of(entity_type))
    return Response(discovery_list([]), media_type=SCIM_JSON)


_ROUTES: tuple[tuple[str, Any, str, str], ...] = (
    ("/entities/{entity_type}", create, "POST", "Provision a new or changed entity"),
    ("/entities/{entity_type}", test_connection, "GET", "Test the connection"),
    ("/entities/{entity_type}/{entity_id}", replace, "PUT", "Provision a changed entity"),
    ("/entities/{entity_type}/{entity_id}", patch, "PATCH", "Provision a patched entity"),
    ("/entities/{entity_type}/{entity_id}", remove, "DELETE", "Deprovision an entity"),
)

_LOGGED: openapi.Responses = {200: openapi.scim_content("RealtimeLog", "The change's log")}
_RESPONSES: dict[str, openapi.Responses] = {
    "GET": {200: openapi.scim_content("ResourceList", "An empty list")},
    "POST": _LOGGED | {201: openapi.scim_content("RealtimeLog", "Created in a target system")},
    "PUT": _LOGGED,
    "PATCH": _LOGGED,
    "DELETE": _LOGGED,
}

_GUARDS = {  # who may call: the service's declaration (certificates attached to the system too)
    method: guard(RealtimeService.check if method == "GET" else RealtimeService.push)
    for method in _RESPONSES
}

for prefix in PREFIXES:
    for path, endpoint, method, summary in _ROUTES:
        public.add_api_route(
            f"{prefix}/systems/{{system_id}}{path}",
            endpoint,
            methods=[method],
            summary=summary,
            include_in_schema=prefix == PREFIXES[0],
            name=f"realtime_{endpoint.__name__}_{PREFIXES.index(prefix)}",
            response_class=Response,
            responses=_RESPONSES[method],
            dependencies=[_GUARDS[method]],
        )


# -- the logs --------------------------------------------------------------------------------


@admin.get(
    "/realtime-logs",
    summary="Real-time provisioning logs, newest first",
    dependencies=[guard(RealtimeService.search)],
)
def list_logs(
    request: Request,
    ctx: ContextDep,
    source: Annotated[str | None, Query(description="Source system id or name")] = None,
    entity_id: Annotated[str | None, Query(alias="entityId")] = None,
    entity_type: Annotated[EntityType | None, Query(alias="entityType")] = None,
    status: Annotated[Status | None, Query(description=" or ".join(STATUSES))] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    found, total = _realtime(request).search(
        ctx,
        source=source,
        entity_id=entity_id,
        entity_type=entity_type.value if entity_type else None,
        status=status.value if status else None,
        offset=offset,
        limit=limit,
    )
    return _json(
        {"items": [f.to_dict() for f in found], "total": total, "offset": offset, "limit": limit}
    )


@admin.get(
    "/realtime-logs/{log_id}",
    summary="One real-time provisioning log",
    dependencies=[guard(RealtimeService.log)],
)
def get_log(log_id: str, request: Request, ctx: ContextDep) -> Response:
    return _json(_realtime(request).log(ctx, log_id).to_dict())
