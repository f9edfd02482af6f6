"""The admin API of systems and connector types at ``/api/v1`` (permission ``admin``).

Errors are RFC 7807 problem JSON. Systems carry an ETag (``W/"<version>"``); ``If-Match``
on a change makes it fail with 412 when the system changed meanwhile.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Header, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.connectors.types import ConnectorType, PropertySpec, connector_types
from provisor.errors import ConfigError, NotFoundError
from provisor.systems.exchange import export_system, identity_management_csv, import_system
from provisor.systems.model import NewSystem, System, SystemChanges, TransformationVersion
from provisor.systems.service import SystemService, default_text, document_of
from provisor.transform.defaults import ROLES as DEFAULT_NAMES
from provisor.web import openapi
from provisor.web.auth import Admin, GuardedRoute, PrincipalDep, ServicesDep
from provisor.web.limits import Offset

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_SYSTEMS],
    route_class=GuardedRoute,
    dependencies=[Admin],
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
    return _json(system.to_dict(), status, headers)


def _version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f'If-Match: expected an ETag like W/"3", not {if_match!r}.') from None


def _transformation(version: TransformationVersion) -> dict[str, Any]:
    return {**version.summary(), "document": document_of(version.text), "text": version.text}


# -- connector types ------------------------------------------------------------------------------


def _property(spec: PropertySpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": spec.key,
        "type": spec.kind.value,
        "default": spec.default,
        "seeded": spec.seeded,
        "roles": sorted(spec.roles),
        "requiredFor": sorted(spec.required),
        "description": spec.description,
    }
    if spec.choices:
        out["allowedValues"] = list(spec.choices)
    if spec.minimum is not None:
        out["minimum"] = spec.minimum
    if spec.maximum is not None:
        out["maximum"] = spec.maximum
    return out


def _type(kind: ConnectorType, *, properties: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": kind.id,
        "name": kind.name,
        "prefix": kind.prefix,
        "roles": sorted(kind.roles),
        "entityTypes": list(kind.entity_types),
        "description": kind.description,
    }
    if properties:
        out["properties"] = [_property(p) for p in kind.properties]
    return out


def _find_type(name: str) -> ConnectorType:
    for kind in connector_types():
        if name in (kind.id, kind.name):
            return kind
    raise NotFoundError(f"No connector type {name!r}.")


@router.get("/connector-types", summary="Connector types with their properties")
def list_connector_types() -> Response:
    return _json({"items": [_type(k) for k in connector_types()]})


@router.get("/connector-types/{type_id}", summary="One connector type")
def get_connector_type(type_id: str) -> Response:
    return _json(_type(_find_type(type_id)))


@router.get(
    "/connector-types/{type_id}/transformations/{name}",
    summary="A default transformation (read, write, proxy-read, proxy-write)",
)
def get_default_transformation(type_id: str, name: str) -> Response:
    kind = _find_type(type_id)
    if name not in DEFAULT_NAMES:
        raise NotFoundError(f"No default {name!r}: one of {', '.join(DEFAULT_NAMES)}.")
    role = Role.PROXY if name.startswith("proxy-") else Role.SOURCE
    which = name.removeprefix("proxy-")
    if role is not Role.PROXY and kind.roles.isdisjoint({Role.SOURCE, Role.TARGET}):
        raise NotFoundError(f"{kind.name} has no {name} transformation.")
    return _json(document_of(default_text(kind, role, which)))


# -- systems --------------------------------------------------------------------------------------


def _systems(services: Any) -> SystemService:
    systems: SystemService = services.systems
    return systems


@router.get("/systems", summary="Systems, enabled first then by name")
def list_systems(
    services: ServicesDep,
    role: Role | None = None,
    type: Annotated[str | None, Query(description="Connector type id or name")] = None,
    enabled: bool | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    found, total = _systems(services).all(
        role=role, type=type, enabled=enabled, offset=offset, limit=limit
    )
    return _json(
        {
            "items": [s.to_dict() for s in found],
            "total": total,
            "offset": offset,
            "limit": limit,
        }
    )


@router.post("/systems", status_code=201, summary="Create a system")
def create_system(
    new: NewSystem, request: Request, services: ServicesDep, principal: PrincipalDep
) -> Response:
    author = principal.name
    return _system(_systems(services).create(new, author=author), 201, request)


@router.get("/systems/{system_id}", summary="One system (credentials masked)")
def get_system(system_id: str, services: ServicesDep) -> Response:
    return _system(_systems(services).get(system_id))


@router.patch("/systems/{system_id}", summary="Change a system (absent fields stay)")
def update_system(
    system_id: str,
    changes: SystemChanges,
    services: ServicesDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:
    author = principal.name
    system = _systems(services).update(
        system_id, changes, author=author, if_version=_version(if_match)
    )
    return _system(system)


@router.delete("/systems/{system_id}", status_code=204, summary="Delete a system")
def delete_system(system_id: str, services: ServicesDep, if_match: IfMatch = None) -> Response:
    _systems(services).delete(system_id, if_version=_version(if_match))
    return Response(status_code=204)


@router.post("/systems/{system_id}/enable", summary="Enable a system")
def enable_system(system_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    author = principal.name
    return _system(_systems(services).set_enabled(system_id, True, author=author))


@router.post("/systems/{system_id}/disable", summary="Disable a system (no jobs run on it)")
def disable_system(system_id: str, services: ServicesDep, principal: PrincipalDep) -> Response:
    author = principal.name
    return _system(_systems(services).set_enabled(system_id, False, author=author))


class PropertiesBody(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    properties: dict[str, str | None]
    credential_keys: list[str] | None = Field(None, alias="credentialKeys")


def _properties(system: System) -> Response:
    body = {"properties": system.properties, "credentialKeys": list(system.credential_keys)}
    return _json(body, headers={"ETag": system.etag})


@router.get("/systems/{system_id}/properties", summary="Properties (credentials masked)")
def get_properties(system_id: str, services: ServicesDep) -> Response:
    return _properties(_systems(services).get(system_id))


@router.put("/systems/{system_id}/properties", summary="Replace all properties")
def replace_properties(
    system_id: str,
    body: PropertiesBody,
    services: ServicesDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:
    author = principal.name
    system = _systems(services).replace_properties(
        system_id,
        body.properties,
        body.credential_keys,
        author=author,
        if_version=_version(if_match),
    )
    return _properties(system)


@router.patch("/systems/{system_id}/properties", summary="Set (value) or remove (null) properties")
def patch_properties(
    system_id: str,
    body: PropertiesBody,
    services: ServicesDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:
    author = principal.name
    changes = SystemChanges(properties=body.properties, credential_keys=body.credential_keys)
    system = _systems(services).update(
        system_id, changes, author=author, if_version=_version(if_match)
    )
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


@router.get("/systems/{system_id}/transformations", summary="Current transformations")
def get_transformations(system_id: str, services: ServicesDep) -> Response:
    service = _systems(services)
    system = service.get(system_id)
    return _json({k: _transformation(service.transformation(system.id, k)) for k in system.kinds})


@router.get("/systems/{system_id}/transformations/{kind}", summary="The current version")
def get_transformation(system_id: str, kind: str, services: ServicesDep) -> Response:
    return _json(_transformation(_systems(services).transformation(system_id, kind)))


@router.put(
    "/systems/{system_id}/transformations/{kind}",
    summary="Save a new version (checked first: 400 lists every problem)",
)
def save_transformation(
    system_id: str,
    kind: str,
    body: TransformationBody,
    services: ServicesDep,
    principal: PrincipalDep,
    if_match: IfMatch = None,
) -> Response:
    author = principal.name
    if (body.document is None) == (body.text is None):
        raise ConfigError("Send the transformation as document (JSON) or as text, one of them.")
    saved = _systems(services).save_transformation(
        system_id,
        kind,
        body.document if body.document is not None else body.text,
        description=body.description,
        author=author,
        if_version=_version(if_match),
    )
    return _json(_transformation(saved))


@router.get("/systems/{system_id}/transformations/{kind}/versions", summary="History")
def transformation_history(
    system_id: str,
    kind: str,
    services: ServicesDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    versions, total = _systems(services).history(system_id, kind, offset=offset, limit=limit)
    return _json(
        {
            "items": [v.summary() for v in versions],
            "total": total,
            "offset": offset,
            "limit": limit,
        }
    )


@router.get("/systems/{system_id}/transformations/{kind}/versions/{version}")
def get_transformation_version(
    system_id: str, kind: str, version: int, services: ServicesDep
) -> Response:
    return _json(_transformation(_systems(services).transformation(system_id, kind, version)))


@router.post(
    "/systems/{system_id}/transformations/{kind}/versions/{version}/apply",
    summary="Make an older version current (saved as a new version)",
)
def apply_transformation_version(
    system_id: str, kind: str, version: int, services: ServicesDep, principal: PrincipalDep
) -> Response:
    author = principal.name
    saved = _systems(services).apply_version(system_id, kind, version, author=author)
    return _json(_transformation(saved))


@router.post(
    "/systems/{system_id}/transformations/{kind}/reset",
    summary="Back to the connector type's default (or to the initial version)",
)
def reset_transformation(
    system_id: str,
    kind: str,
    services: ServicesDep,
    principal: PrincipalDep,
    body: Annotated[ResetBody | None, Body()] = None,
) -> Response:
    author = principal.name
    saved = _systems(services).reset_transformation(
        system_id, kind, to=(body or ResetBody()).to, author=author
    )
    return _json(_transformation(saved))


# -- test, export, import -------------------------------------------------------------------------


@router.post("/systems/{system_id}/test", summary="Test the connection to the back-end")
async def test_system(system_id: str, services: ServicesDep) -> Response:
    result = await _systems(services).test_connection(system_id)
    return _json({"ok": result.ok, "message": result.message, "seconds": round(result.seconds, 3)})


@router.get(
    "/systems/{system_id}/export",
    summary="Export as JSON (credentials left out); proxies also as SAP Identity Management CSV",
    responses={
        200: {
            "description": "The system as JSON, or with format=csv as CSV",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def export(
    system_id: str,
    request: Request,
    services: ServicesDep,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    service = _systems(services)
    system = service.get(system_id)
    filename = "".join(c if c.isalnum() or c in "-_." else "_" for c in system.name)
    if format == "csv":
        base = services.settings.base_url or str(request.base_url)
        text = identity_management_csv(system, base)
        disposition = f'attachment; filename="{filename}.csv"'
        return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})
    data = export_system(service, system.id)
    disposition = f'attachment; filename="{filename}.json"'
    return _json(data, headers={"Content-Disposition": disposition})


@router.post("/systems/import", status_code=201, summary="Create a system from an export")
def import_(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    data: Annotated[dict[str, Any], Body(description="An export")],
    name: Annotated[str | None, Query(description="A new name (the exported one is taken)")] = None,
    role: Annotated[Role | None, Query(description="The role expected (the export's)")] = None,
) -> Response:
    author = principal.name
    imported = import_system(_systems(services), data, author=author, name=name, role=role)
    system = imported.system
    headers = {
        "ETag": system.etag,
        "Location": str(request.url_for("get_system", system_id=system.id)),
    }
    return _json({**system.to_dict(), "warnings": imported.warnings}, 201, headers)
