"""The real-time provisioning API (spec §6.2, permission ``realtime_api``) and its logs in the
admin API (``/api/v1/realtime-logs``, permission ``admin``)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from provisor.auth.permissions import Principal
from provisor.connectors.base import ConnectorError
from provisor.context import Context as _Context
from provisor.errors import NotFoundError
from provisor.realtime.model import STATUSES, Change
from provisor.realtime.service import RealtimeService
from provisor.scim.errors import SCIMError
from provisor.web import openapi
from provisor.web.auth import Admin, GuardedRoute, PrincipalDep, RealtimeCaller, ServicesDep
from provisor.web.limits import Offset
from provisor.web.scim_discovery import discovery_list

_SYSTEMS_CTX = _Context.system("realtime")  # until this module takes a ctx (issue 15)

public = APIRouter(
    tags=[openapi.REALTIME],
    route_class=GuardedRoute,
    dependencies=[RealtimeCaller],
    responses=openapi.scim_errors,
)
admin = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_REALTIME],
    route_class=GuardedRoute,
    dependencies=[Admin],
    responses=openapi.errors,
)

PREFIXES = ("/ipsproxy/service/api/v1", "/ipsproxy/api/v1")  # SAP's; the second is Neo's
SCIM_JSON = "application/scim+json"


class _BackendFailed(SCIMError):
    status = 502


class _InvalidBody(SCIMError):
    scim_type = "invalidSyntax"


def _realtime(request: Request) -> RealtimeService:
    service: RealtimeService = request.app.state.realtime
    return service


def _json(data: Any, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(data), status, media_type=media_type)


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _InvalidBody(f"The body is not JSON: {exc}.") from None


async def _push(
    request: Request,
    principal: Principal,
    system_id: str,
    change: Change,
) -> Response:
    try:
        log = await _realtime(request).push(system_id, change, caller=principal.name)
    except ConnectorError as exc:
        raise _BackendFailed(f"The source system failed: {exc.message}") from None
    created = change.operation == "CREATE" and any(s.state == "Entity Created" for s in log.systems)
    return _json(log.to_dict(), 201 if created else 200, SCIM_JSON)


async def create(
    system_id: str, entity_type: str, request: Request, principal: PrincipalDep
) -> Response:
    """A new or changed entity, as the source holds it (an upsert)."""
    body = await _body(request)
    return await _push(request, principal, system_id, Change(entity_type, "CREATE", None, body))


async def replace(
    system_id: str, entity_type: str, entity_id: str, request: Request, principal: PrincipalDep
) -> Response:
    body = await _body(request)
    change = Change(entity_type, "UPDATE", entity_id, body)
    return await _push(request, principal, system_id, change)


async def patch(
    system_id: str, entity_type: str, entity_id: str, request: Request, principal: PrincipalDep
) -> Response:
    """A changed entity: read again from the source, which already holds the change."""
    body = await _body(request)
    change = Change(entity_type, "PATCH", entity_id, body)
    return await _push(request, principal, system_id, change)


async def remove(
    system_id: str, entity_type: str, entity_id: str, request: Request, principal: PrincipalDep
) -> Response:
    change = Change(entity_type, "DELETE", entity_id)
    return await _push(request, principal, system_id, change)


async def test_connection(system_id: str, entity_type: str, services: ServicesDep) -> Response:
    """What a source application's *Test Connection* calls: an empty SCIM list when the
    source system exists and takes changes."""
    if entity_type not in ("user", "group"):
        raise NotFoundError(f"Entity type {entity_type!r}: use user or group.")
    services.systems.get(_SYSTEMS_CTX, system_id)
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
        )


# -- the logs --------------------------------------------------------------------------------


@admin.get("/realtime-logs", summary="Real-time provisioning logs, newest first")
def list_logs(
    request: Request,
    services: ServicesDep,
    source: Annotated[str | None, Query(description="Source system id or name")] = None,
    entity_id: Annotated[str | None, Query(alias="entityId")] = None,
    entity_type: Annotated[str | None, Query(alias="entityType")] = None,
    status: Annotated[str | None, Query(description=" or ".join(STATUSES))] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> Response:
    source_id = services.systems.get(_SYSTEMS_CTX, source).id if source else None
    found, total = _realtime(request).search(
        source_id=source_id,
        entity_id=entity_id,
        entity_type=entity_type,
        status=status,
        offset=offset,
        limit=limit,
    )
    return _json(
        {"items": [f.to_dict() for f in found], "total": total, "offset": offset, "limit": limit}
    )


@admin.get("/realtime-logs/{log_id}", summary="One real-time provisioning log")
def get_log(log_id: str, request: Request) -> Response:
    found = _realtime(request).logs.get(log_id)
    if found is None:
        raise NotFoundError(f"No real-time log {log_id!r}.")
    return _json(found.to_dict())
