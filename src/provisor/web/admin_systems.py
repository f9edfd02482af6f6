"""The admin API of systems and connector types at ``/api/v1`` (permission ``admin``).

Errors are RFC 7807 problem JSON. Systems carry an ETag (``W/"<version>"``); ``If-Match``
on a change makes it fail with 412 when the system changed meanwhile (the service compares
versions). Each route admits the callers its service operation declares.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.errors import InputError
from provisor.systems import present
from provisor.systems.exchange import export_system, identity_management_csv, import_system
from provisor.systems.model import NewSystem, System, SystemChanges
from provisor.systems.service import SystemService
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard
from provisor.web.limits import Offset
from provisor.web.tenancy import public_root

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_SYSTEMS],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

IfMatch = Annotated[
    str | None, Header(alias="If-Match", description='The ETag read before: W/"<version>"')
]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def _system(system: System, status: int = 200, request: Request | None = None) -> Response:
    headers = {"ETag": system.etag}
    if request is not None and status == 201:
        headers["Location"] = str(request.url_for("get_system", system_id=system.id))
    return _json(present.system(system), status, headers)


def _version(if_match: str | None) -> int | None:
    """The version an If-Match header names (None: any)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(text)
    except ValueError:
        raise InputError(f'If-Match: expected an ETag like W/"3", not {if_match!r}.') from None


# -- connector types ------------------------------------------------------------------------------


@router.get(
    "/connector-types",
    summary="Connector types with their properties",
    dependencies=[guard(SystemService.connector_types)],
)
def list_connector_types(services: ServicesDep, ctx: ContextDep) -> Response:
    found = services.systems.connector_types(ctx)
    return _json({"items": [present.connector_type(k) for k in found]})


@router.get(
    "/connector-types/{type_id}",
    summary="One connector type",
    dependencies=[guard(SystemService.connector_type)],
)
def get_connector_type(type_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.connector_type(services.systems.connector_type(ctx, type_id)))


@router.get(
    "/connector-types/{type_id}/transformations/{name}",
    summary="A default transformation (read, write, proxy-read, proxy-write)",
    dependencies=[guard(SystemService.default_transformation)],
)
def get_default_transformation(
    type_id: str, name: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _json(services.systems.default_transformation(ctx, type_id, name))


# -- systems --------------------------------------------------------------------------------------


@router.get(
    "/systems",
    summary="Systems, enabled first then by name",
    dependencies=[guard(SystemService.listing)],
)
def list_systems(
    services: ServicesDep,
    ctx: ContextDep,
    role: Role | None = None,
    type: Annotated[str | None, Query(description="Connector type id or name")] = None,
    enabled: bool | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    found, total = services.systems.listing(
        ctx, role=role, type=type, enabled=enabled, offset=offset, limit=limit
    )
    return _json(present.systems(found, total, offset=offset, limit=limit))


@router.post(
    "/systems",
    status_code=201,
    summary="Create a system",
    dependencies=[guard(SystemService.create)],
)
def create_system(
    new: NewSystem, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _system(services.systems.create(ctx, new), 201, request)


@router.get(
    "/systems/{system_id}",
    summary="One system (credentials masked)",
    dependencies=[guard(SystemService.show)],
)
def get_system(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _system(services.systems.show(ctx, system_id))


@router.patch(
    "/systems/{system_id}",
    summary="Change a system (absent fields stay)",
    dependencies=[guard(SystemService.update)],
)
def update_system(
    system_id: str,
    changes: SystemChanges,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    system = services.systems.update(ctx, system_id, changes, if_match=_version(if_match))
    return _system(system)


@router.delete(
    "/systems/{system_id}",
    status_code=204,
    summary="Delete a system",
    dependencies=[guard(SystemService.delete)],
)
def delete_system(
    system_id: str, services: ServicesDep, ctx: ContextDep, if_match: IfMatch = None
) -> Response:
    services.systems.delete(ctx, system_id, if_match=_version(if_match))
    return Response(status_code=204)


@router.post(
    "/systems/{system_id}/enable",
    summary="Enable a system",
    dependencies=[guard(SystemService.set_enabled)],
)
def enable_system(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _system(services.systems.set_enabled(ctx, system_id, True))


@router.post(
    "/systems/{system_id}/disable",
    summary="Disable a system (no jobs run on it)",
    dependencies=[guard(SystemService.set_enabled)],
)
def disable_system(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _system(services.systems.set_enabled(ctx, system_id, False))


class PropertiesBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    properties: dict[str, str | None]
    credential_keys: list[str] | None = Field(None, alias="credentialKeys")


def _properties(system: System) -> Response:
    return _json(present.properties(system), headers={"ETag": system.etag})


@router.get(
    "/systems/{system_id}/properties",
    summary="Properties (credentials masked)",
    dependencies=[guard(SystemService.show)],
)
def get_properties(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _properties(services.systems.show(ctx, system_id))


@router.put(
    "/systems/{system_id}/properties",
    summary="Replace all properties",
    dependencies=[guard(SystemService.replace_properties)],
)
def replace_properties(
    system_id: str,
    body: PropertiesBody,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    system = services.systems.replace_properties(
        ctx, system_id, body.properties, body.credential_keys, if_match=_version(if_match)
    )
    return _properties(system)


@router.patch(
    "/systems/{system_id}/properties",
    summary="Set (value) or remove (null) properties",
    dependencies=[guard(SystemService.update)],
)
def patch_properties(
    system_id: str,
    body: PropertiesBody,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    changes = SystemChanges(properties=body.properties, credential_keys=body.credential_keys)
    system = services.systems.update(ctx, system_id, changes, if_match=_version(if_match))
    return _properties(system)


# -- transformations ------------------------------------------------------------------------------


class TransformationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    document: dict[str, Any] | None = Field(None, description="The transformation (JSON)")
    text: str | None = Field(None, description="Or its text (comments kept)")
    description: str = Field(min_length=1, max_length=2000)


class ResetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field("default", pattern="^(default|initial)$")


@router.get(
    "/systems/{system_id}/transformations",
    summary="Current transformations",
    dependencies=[guard(SystemService.transformations)],
)
def get_transformations(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.transformations(services.systems.transformations(ctx, system_id)))


@router.get(
    "/systems/{system_id}/transformations/{kind}",
    summary="The current version",
    dependencies=[guard(SystemService.read_transformation)],
)
def get_transformation(
    system_id: str, kind: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    found = services.systems.read_transformation(ctx, system_id, kind)
    return _json(present.transformation(found))


@router.put(
    "/systems/{system_id}/transformations/{kind}",
    summary="Save a new version (checked first: 400 lists every problem)",
    dependencies=[guard(SystemService.save_transformation)],
)
def save_transformation(
    system_id: str,
    kind: str,
    body: TransformationBody,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    if (body.document is None) == (body.text is None):
        raise InputError("Send the transformation as document (JSON) or as text, one of them.")
    saved = services.systems.save_transformation(
        ctx,
        system_id,
        kind,
        body.document if body.document is not None else body.text,
        description=body.description,
        if_match=_version(if_match),
    )
    return _json(present.transformation(saved))


@router.get(
    "/systems/{system_id}/transformations/{kind}/versions",
    summary="History",
    dependencies=[guard(SystemService.history)],
)
def transformation_history(
    system_id: str,
    kind: str,
    services: ServicesDep,
    ctx: ContextDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    versions, total = services.systems.history(ctx, system_id, kind, offset=offset, limit=limit)
    return _json(present.history(versions, total, offset=offset, limit=limit))


@router.get(
    "/systems/{system_id}/transformations/{kind}/versions/{version}",
    dependencies=[guard(SystemService.read_transformation)],
)
def get_transformation_version(
    system_id: str, kind: str, version: int, services: ServicesDep, ctx: ContextDep
) -> Response:
    found = services.systems.read_transformation(ctx, system_id, kind, version)
    return _json(present.transformation(found))


@router.post(
    "/systems/{system_id}/transformations/{kind}/versions/{version}/apply",
    summary="Make an older version current (saved as a new version)",
    dependencies=[guard(SystemService.apply_version)],
)
def apply_transformation_version(
    system_id: str, kind: str, version: int, services: ServicesDep, ctx: ContextDep
) -> Response:
    saved = services.systems.apply_version(ctx, system_id, kind, version)
    return _json(present.transformation(saved))


@router.post(
    "/systems/{system_id}/transformations/{kind}/reset",
    summary="Back to the connector type's default (or to the initial version)",
    dependencies=[guard(SystemService.reset_transformation)],
)
def reset_transformation(
    system_id: str,
    kind: str,
    services: ServicesDep,
    ctx: ContextDep,
    body: Annotated[ResetBody | None, Body()] = None,
) -> Response:
    to = (body or ResetBody()).to
    saved = services.systems.reset_transformation(ctx, system_id, kind, to=to)
    return _json(present.transformation(saved))


# -- test, export, import -------------------------------------------------------------------------


@router.post(
    "/systems/{system_id}/test",
    summary="Test the connection to the back-end",
    dependencies=[guard(SystemService.test_connection)],
)
async def test_system(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    result = await services.systems.test_connection(ctx, system_id)
    return _json(present.connection_test(result))


@router.get(
    "/systems/{system_id}/export",
    summary="Export as JSON (credentials left out); proxies also as SAP Identity Management CSV",
    responses={
        200: {
            "description": "The system as JSON, or with format=csv as CSV",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        }
    },
    dependencies=[guard(SystemService.show)],
)
def export(
    system_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    system = services.systems.show(ctx, system_id)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in system.name)
    if format == "csv":
        base = public_root(request.scope, services.settings.base_url, str(request.base_url))
        text = identity_management_csv(system, base)
        disposition = f'attachment; filename="{filename}.csv"'
        return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})
    data = export_system(ctx, services.systems, system.id)
    disposition = f'attachment; filename="{filename}.json"'
    return _json(data, headers={"Content-Disposition": disposition})


@router.post(
    "/systems/import",
    status_code=201,
    summary="Create a system from an export",
    dependencies=[guard(SystemService.create)],
)
def import_(
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    data: Annotated[dict[str, Any], Body(description="An export")],
    name: Annotated[str | None, Query(description="A new name (the exported one is taken)")] = None,
    role: Annotated[Role | None, Query(description="The role expected (the export's)")] = None,
) -> Response:
    imported = import_system(ctx, services.systems, data, name=name, role=role)
    system = imported.system
    headers = {
        "ETag": system.etag,
        "Location": str(request.url_for("get_system", system_id=system.id)),
    }
    return _json(present.imported(system, imported.warnings), 201, headers)
