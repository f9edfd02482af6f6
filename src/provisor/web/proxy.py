"""The proxy systems' SCIM 2.0 API (spec §5): ``/ipsproxy/service/api/v1/scim/{id}/...``.

The Neo-style path ``/ipsproxy/api/v1/scim/{id}/...`` serves the same (hidden from OpenAPI).
Every request needs the permission ``proxy_api``; errors are SCIM error bodies.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import Response

from provisor.context import Context
from provisor.errors import ProvisorError
from provisor.proxy.activity import ProxyCall
from provisor.proxy.model import Resource
from provisor.proxy.present import list_body
from provisor.proxy.service import ProxyService
from provisor.scim.errors import (
    MethodNotAllowedError,
    NotImplementedSCIMError,
    ResourceNotFoundError,
    SCIMError,
)
from provisor.scim.limits import check_index
from provisor.timestamps import now
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard, services
from provisor.web.errors import status_of
from provisor.web.paths import route_path
from provisor.web.scim_api import (
    IfMatch,
    IfNoneMatch,
    SortBy,
    SortOrder,
    json_body,
    scim_response,
    search_request,
)
from provisor.web.scim_discovery import NoFilter, discovery_list
from provisor.web.tenancy import public_root

PREFIX = "/ipsproxy/service/api/v1/scim/{system_id}"
NEO_PREFIX = "/ipsproxy/api/v1/scim/{system_id}"
ENDPOINT = "{endpoint}"  # Users or Groups: anything else is a SCIM 404

OPERATIONS = {
    "list_resources": "search",
    "search_by_post": "search",
    "create_resource": "create",
    "get_resource": "get",
    "replace_resource": "replace",
    "patch_resource": "patch",
    "delete_resource": "delete",
}  # every other route: "discovery"


class ProxyRoute(GuardedRoute):
    """A proxy route whose calls go to the proxy's activity log once the caller was
    admitted (those refused before are not the proxy's traffic): an append, written later
    by the log's own thread."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        operation = OPERATIONS.get(getattr(self.endpoint, "__name__", ""), "discovery")

        async def recorded(request: Request) -> Response:
            started = time.perf_counter()
            response: Response | None = None
            status = 500
            try:
                response = await handler(request)
                status = response.status_code
                return response
            except SCIMError as exc:
                status = exc.status
                raise
            except ProvisorError as exc:
                status = status_of(exc)
                raise
            except RequestValidationError:  # answered 400 (web.errors)
                status = 400
                raise
            except Exception as exc:  # an HTTPException carries its status
                status = getattr(exc, "status_code", 500)
                raise
            finally:
                ctx: Context | None = getattr(request.state, "context", None)
                if ctx is not None:
                    _record(request, ctx, operation, status, started, response)

        return recorded


def _record(
    request: Request,
    ctx: Context,
    operation: str,
    status: int,
    started: float,
    response: Response | None,
) -> None:
    params = request.path_params
    entity_id = params.get("resource_id")
    if entity_id is None and status == 201 and response is not None:
        entity_id = response.headers.get("location", "").rsplit("/", 1)[-1] or None
    services(request).proxy_activity.record(
        ProxyCall(
            tenant=ctx.tenant,
            time=now(),
            system_id=str(params.get("system_id", ""))[:64],
            operation=operation,
            endpoint=str(params.get("endpoint") or route_path(request.scope).rsplit("/", 1)[-1]),
            entity_id=entity_id,
            status=status,
            duration_us=round((time.perf_counter() - started) * 1_000_000),
            request_id=ctx.request_id,
            caller=ctx.author,
        )
    )


router = APIRouter(
    tags=[openapi.PROXY],
    route_class=ProxyRoute,
    default_response_class=Response,
    responses=openapi.scim_errors,
)

Filter = Annotated[str | None, Query(description='<attribute> eq "value", or meta.lastModified gt')]
StartIndex = Annotated[int | None, Query(alias="startIndex")]
Count = Annotated[int | None, Query(description="1 to 100 (default 25)")]
Attributes = Annotated[str | None, Query()]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]


def proxy_base(request: Request, services: Any, system_id: str) -> str:
    """The proxy system's URL, on the path the request came by (current or Neo-style)."""
    neo = route_path(request.scope).startswith("/ipsproxy/api/")
    path = (NEO_PREFIX if neo else PREFIX).format(system_id=system_id)
    return public_root(request.scope, services.settings.base_url, str(request.base_url)) + path


def _resource(found: Resource, status: int = 200) -> Response:
    """A resource with its ETag (and Location when created)."""
    headers = {"ETag": found.version}
    if status == 201:
        headers["Location"] = found.location
    return scim_response(orjson.dumps(found.shown), status, headers)


# -- resources --------------------------------------------------------------------------------

DISCOVERY = ("ServiceProviderConfig", "ResourceTypes", "Schemas")


def _writable(endpoint: str) -> None:
    """Discovery endpoints are read-only (405); searching several types at once is not
    supported (501)."""
    if endpoint in DISCOVERY:
        raise MethodNotAllowedError(f"/{endpoint} is read-only: GET it.")
    if endpoint == ".search":
        raise NotImplementedSCIMError(
            "The proxy searches one resource type at a time: POST /Users/.search or "
            "/Groups/.search."
        )


async def list_resources(
    system_id: str,
    endpoint: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    filter: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    sort_by: SortBy = None,
    sort_order: SortOrder = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    listing = await services.proxy.search(
        ctx,
        system_id,
        endpoint,
        proxy_base(request, services, system_id),
        filter=filter,
        start_index=check_index("startIndex", start_index),
        count=check_index("count", count),
        sort_by=sort_by,
        descending=(sort_order or "").lower() == "descending",
        attributes=attributes,
        excluded=excluded,
    )
    return scim_response(list_body(listing))


async def search_by_post(
    system_id: str, endpoint: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    """A SearchRequest (RFC 7644 §3.4.3): the same as a GET of the list."""
    query = search_request(await json_body(request))
    listing = await services.proxy.search(
        ctx,
        system_id,
        endpoint,
        proxy_base(request, services, system_id),
        filter=query.filter,
        start_index=query.start_index,
        start_id=query.start_id,
        count=query.count,
        sort_by=query.sort_by,
        descending=(query.sort_order or "").lower() == "descending",
        attributes=query.attributes,
        excluded=query.excluded_attributes,
    )
    return scim_response(list_body(listing))


async def get_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    attributes: Attributes = None,
    excluded: Excluded = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    found = await services.proxy.get(
        ctx,
        system_id,
        endpoint,
        resource_id,
        proxy_base(request, services, system_id),
        attributes=attributes,
        excluded=excluded,
        if_none_match=if_none_match,
    )
    if found.not_modified:
        return Response(status_code=304, headers={"ETag": found.version})
    return _resource(found)


async def create_resource(
    system_id: str, endpoint: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    _writable(endpoint)
    body = await json_body(request)
    base = proxy_base(request, services, system_id)
    return _resource(await services.proxy.create(ctx, system_id, endpoint, body, base), 201)


async def replace_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    body = await json_body(request)
    base = proxy_base(request, services, system_id)
    found = await services.proxy.replace(
        ctx, system_id, endpoint, resource_id, body, base, if_match=if_match
    )
    return _resource(found)


async def patch_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    body = await json_body(request)
    base = proxy_base(request, services, system_id)
    found = await services.proxy.patch(
        ctx, system_id, endpoint, resource_id, body, base, if_match=if_match
    )
    return _resource(found)


async def delete_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    if_match: IfMatch = None,
) -> Response:
    base = proxy_base(request, services, system_id)
    await services.proxy.delete(ctx, system_id, endpoint, resource_id, base, if_match=if_match)
    return Response(status_code=204)


# -- discovery --------------------------------------------------------------------------------


async def service_provider_config(
    system_id: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    base = proxy_base(request, services, system_id)
    body = await services.proxy.service_provider_config(ctx, system_id, base)
    return scim_response(orjson.dumps(body))


async def resource_types(
    system_id: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    base = proxy_base(request, services, system_id)
    found = await services.proxy.resource_types(ctx, system_id, base)
    return scim_response(discovery_list(found))


async def resource_type(
    system_id: str, name: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    base = proxy_base(request, services, system_id)
    for doc in await services.proxy.resource_types(ctx, system_id, base):
        if doc["id"] == name:
            return scim_response(orjson.dumps(doc))
    raise ResourceNotFoundError(f"Resource type {name} not found.")


async def list_schemas(
    system_id: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    base = proxy_base(request, services, system_id)
    found = await services.proxy.schemas(ctx, system_id, base)
    return scim_response(discovery_list(found))


async def get_schema(
    system_id: str, schema_id: str, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    base = proxy_base(request, services, system_id)
    for doc in await services.proxy.schemas(ctx, system_id, base):
        if doc["id"] == schema_id:
            return scim_response(orjson.dumps(doc))
    raise ResourceNotFoundError(f"Schema {schema_id} not found.")


# method, path, handler, the service operation (its permission), summary, status, the body's
# schema (None: no body)
_ROUTES: list[tuple[str, str, Callable[..., Any], Callable[..., Any], str, int, str | None]] = [
    (
        "GET",
        "/ServiceProviderConfig",
        service_provider_config,
        ProxyService.service_provider_config,
        "What the proxy supports",
        200,
        "ServiceProviderConfig",
    ),
    (
        "GET",
        "/ResourceTypes",
        resource_types,
        ProxyService.resource_types,
        "The resource types the proxy serves",
        200,
        "ResourceTypeList",
    ),
    (
        "GET",
        "/ResourceTypes/{name}",
        resource_type,
        ProxyService.resource_types,
        "One resource type",
        200,
        "ResourceType",
    ),
    (
        "GET",
        "/Schemas",
        list_schemas,
        ProxyService.schemas,
        "The schemas of the proxy's resources",
        200,
        "SchemaList",
    ),
    ("GET", "/Schemas/{schema_id}", get_schema, ProxyService.schemas, "One schema", 200, "Schema"),
    (
        "POST",
        f"/{ENDPOINT}/.search",
        search_by_post,
        ProxyService.search,
        "Search users or groups (SearchRequest)",
        200,
        "ProxyResourceList",
    ),
    (
        "GET",
        f"/{ENDPOINT}",
        list_resources,
        ProxyService.search,
        "List users or groups (eq or delta filter)",
        200,
        "ProxyResourceList",
    ),
    (
        "POST",
        f"/{ENDPOINT}",
        create_resource,
        ProxyService.create,
        "Create a user or group in the back-end",
        201,
        "ProxyResource",
    ),
    (
        "GET",
        f"/{ENDPOINT}/{{resource_id}}",
        get_resource,
        ProxyService.get,
        "One user or group",
        200,
        "ProxyResource",
    ),
    (
        "PUT",
        f"/{ENDPOINT}/{{resource_id}}",
        replace_resource,
        ProxyService.replace,
        "Replace a user or group",
        200,
        "ProxyResource",
    ),
    (
        "PATCH",
        f"/{ENDPOINT}/{{resource_id}}",
        patch_resource,
        ProxyService.patch,
        "Patch a user or group",
        200,
        "ProxyResource",
    ),
    (
        "DELETE",
        f"/{ENDPOINT}/{{resource_id}}",
        delete_resource,
        ProxyService.delete,
        "Delete a user or group",
        204,
        None,
    ),
]

for _method, _path, _endpoint, _operation, _summary, _status, _body in _ROUTES:
    _dependencies = [guard(_operation)]
    if _path.lstrip("/").startswith(DISCOVERY):
        _dependencies.append(NoFilter)
    _responses: openapi.Responses = {_status: openapi.scim_content(_body)} if _body else {}
    if _method == "GET" and _path.endswith("{resource_id}"):  # ETags (If-None-Match)
        _responses[304] = {"description": "Not modified (If-None-Match)"}
    for _prefix in (PREFIX, NEO_PREFIX):
        router.add_api_route(
            _prefix + _path,
            _endpoint,
            methods=[_method],
            summary=_summary,
            status_code=_status,
            dependencies=_dependencies,
            responses=_responses,
            include_in_schema=_prefix == PREFIX,
        )
