"""SCIM discovery (RFC 7644 §4) and custom schemas of the Local Identity Directory."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.directory.service import Directory
from provisor.scim import schemas as s
from provisor.scim.errors import ForbiddenError, MethodNotAllowedError, ResourceNotFoundError
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard
from provisor.web.scim_api import base_url, json_body, scim_response

router = APIRouter(
    tags=[openapi.SCIM_DISCOVERY],
    route_class=GuardedRoute,
    default_response_class=Response,
    responses=openapi.scim_errors,
)


def refuse_filter(request: Request) -> None:
    """RFC 7644 §4: a discovery endpoint answers a ``filter`` 403 rather than ignore it, so
    that no client takes what it gets for what matched."""
    if any(name.lower() == "filter" for name in request.query_params):
        raise ForbiddenError(f"{request.url.path} cannot be filtered (RFC 7644 §4): GET it whole.")


NoFilter = Depends(refuse_filter)


def discovery_list(resources: list[dict[str, Any]]) -> bytes:
    """A ListResponse holding every resource (discovery endpoints do not page)."""
    return orjson.dumps(
        {
            "schemas": [s.LIST_RESPONSE],
            "totalResults": len(resources),
            "itemsPerPage": len(resources),
            "startIndex": 1,
            "Resources": resources,
        }
    )


@router.get(
    "/ServiceProviderConfig",
    summary="What this SCIM service supports",
    dependencies=[guard(Directory.resource_types), NoFilter],  # any reader of the directory
    responses={200: openapi.scim_content("ServiceProviderConfig")},
)
def service_provider_config(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    base = base_url(request)
    body = {
        "schemas": [s.SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://github.com/provisor/provisor",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": settings.bulk_max_operations,
            "maxPayloadSize": settings.max_body_bytes,
        },
        "filter": {"supported": True, "maxResults": settings.scim_max_count},
        "changePassword": {"supported": True},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": s.authentication_schemes("a technical user"),
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }
    return scim_response(orjson.dumps(body))


@router.get(
    "/ResourceTypes",
    summary="The resource types: User and Group",
    dependencies=[guard(Directory.resource_types), NoFilter],
    responses={200: openapi.scim_content("ResourceTypeList")},
)
def resource_types(request: Request, ctx: ContextDep, services: ServicesDep) -> Response:
    registry = services.directory.resource_types(ctx)
    base = base_url(request)
    return scim_response(discovery_list([rt.to_scim(base) for rt in registry.resource_types]))


@router.get(
    "/ResourceTypes/{name}",
    summary="One resource type",
    dependencies=[guard(Directory.resource_types), NoFilter],
    responses={200: openapi.scim_content("ResourceType")},
)
def resource_type(name: str, request: Request, ctx: ContextDep, services: ServicesDep) -> Response:
    rt = services.directory.resource_types(ctx).resource_type(name)
    if rt is None:
        raise ResourceNotFoundError(f"Resource type {name} not found.")
    return scim_response(orjson.dumps(rt.to_scim(base_url(request))))


@router.get(
    "/Schemas",
    summary="All schemas, built in and custom",
    dependencies=[guard(Directory.schemas), NoFilter],
    responses={200: openapi.scim_content("SchemaList")},
)
def list_schemas(request: Request, ctx: ContextDep, services: ServicesDep) -> Response:
    registry = services.directory.schemas(ctx)
    base = base_url(request)
    return scim_response(discovery_list([schema.to_scim(base) for schema in registry.schemas()]))


@router.get(
    "/Schemas/{schema_id}",
    summary="One schema",
    dependencies=[guard(Directory.schemas), NoFilter],
    responses={200: openapi.scim_content("Schema")},
)
def get_schema(
    schema_id: str, request: Request, ctx: ContextDep, services: ServicesDep
) -> Response:
    schema = services.directory.schemas(ctx).schema(schema_id)
    if schema is None:
        raise ResourceNotFoundError(f"Schema {schema_id} not found.")
    return scim_response(orjson.dumps(schema.to_scim(base_url(request))))


@router.post(
    "/Schemas",
    status_code=201,
    summary="Create a custom schema (extends User)",
    dependencies=[guard(Directory.create_schema)],
    responses={201: openapi.scim_content("Schema", "Created")},
)
async def create_schema(request: Request, ctx: ContextDep, services: ServicesDep) -> Response:
    if not (await request.body()).strip():
        # The schema list itself is read-only (RFC 7644 §4); POST only adds a custom schema.
        raise MethodNotAllowedError("POST /Schemas needs a custom schema in the body.")
    body = await json_body(request)
    schema = await run_in_threadpool(services.directory.create_schema, ctx, body)
    base = base_url(request)
    return scim_response(
        orjson.dumps(schema.to_scim(base)),
        201,
        {"Location": f"{base}/Schemas/{schema.id}"},
    )


@router.delete(
    "/Schemas/{schema_id}",
    status_code=204,
    summary="Delete a custom schema and all its values",
    dependencies=[guard(Directory.delete_schema)],
)
def delete_schema(schema_id: str, ctx: ContextDep, services: ServicesDep) -> Response:
    services.directory.delete_schema(ctx, schema_id)
    return Response(status_code=204)
