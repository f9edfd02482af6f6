"""The proxy systems' SCIM 2.0 API (spec §5): ``/ipsproxy/service/api/v1/scim/{id}/...``.

The Neo-style path ``/ipsproxy/api/v1/scim/{id}/...`` serves the same (hidden from OpenAPI).
Every request needs the permission ``proxy_api``; errors are SCIM error bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from provisor.proxy import discovery
from provisor.proxy.service import Listing, ProxyService, etag_matches
from provisor.scim import schemas as s
from provisor.scim.errors import (
    InvalidValueError,
    MethodNotAllowedError,
    NotImplementedSCIMError,
    ResourceNotFoundError,
    SCIMError,
)
from provisor.scim.limits import check_index
from provisor.scim.projection import Projection
from provisor.scim.registry import Registry, resolve
from provisor.web import openapi
from provisor.web.auth import GuardedRoute, ProxyCaller, ServicesDep
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

PREFIX = "/ipsproxy/service/api/v1/scim/{system_id}"
NEO_PREFIX = "/ipsproxy/api/v1/scim/{system_id}"
ENDPOINT = "{endpoint}"  # Users or Groups: anything else is a SCIM 404

router = APIRouter(
    tags=[openapi.PROXY],
    route_class=GuardedRoute,
    dependencies=[ProxyCaller],
    default_response_class=Response,
    responses=openapi.scim_errors,
)

Filter = Annotated[str | None, Query(description='<attribute> eq "value", or meta.lastModified gt')]
StartIndex = Annotated[int | None, Query(alias="startIndex")]
Count = Annotated[int | None, Query(description="1 to 100 (default 25)")]
Attributes = Annotated[str | None, Query()]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]


def proxy_service(request: Request, services: Any) -> ProxyService:
    """The application's proxy service, made on first use."""
    state = request.app.state
    found = getattr(state, "proxy", None)
    if not isinstance(found, ProxyService):
        directory = services.directory
        found = state.proxy = ProxyService(
            services.systems, directory.catalog.registry, directory.options.limits
        )
    return found


def proxy_base(request: Request, system_id: str) -> str:
    """The proxy system's URL, on the path the request came by (current or Neo-style)."""
    neo = request.url.path.startswith("/ipsproxy/api/")
    path = (NEO_PREFIX if neo else PREFIX).format(system_id=system_id)
    configured = request.app.state.services.settings.base_url
    root = configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
    return root + path


def _registry(services: Any) -> Registry:
    registry: Registry = services.directory.catalog.registry()
    return registry


def _project(
    registry: Registry,
    endpoint: str,
    doc: dict[str, Any],
    attributes: str | None,
    excluded: str | None,
) -> dict[str, Any]:
    """``attributes``/``excludedAttributes`` (spec §5.4); attributes outside the schemas
    stay with the default set and go when ``attributes`` is given."""
    if attributes is None and excluded is None:
        return doc
    rt = registry.resource_type("User" if endpoint == "Users" else "Group")
    assert rt is not None
    projection = Projection.parse(rt, attributes, excluded)
    if projection.is_default:
        return doc
    known: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for key, value in doc.items():
        (known if _known(rt, key) else other)[key] = value
    out = projection.apply(known)
    if projection.include is None:
        names = {p.strip().lower() for p in (excluded or "").split(",")}
        out.update({k: v for k, v in other.items() if k.lower() not in names})
    return out


def _known(rt: Any, key: str) -> bool:
    if key in ("schemas", "id") or (key.startswith("urn:") and rt.extension(key) is not None):
        return True
    try:
        resolve(rt, None, key, None, error=ResourceNotFoundError)
    except SCIMError:
        return False
    return True


def _list_body(listing: Listing, docs: list[dict[str, Any]]) -> bytes:
    return orjson.dumps(
        {
            "schemas": [s.LIST_RESPONSE],
            "totalResults": listing.total,
            "itemsPerPage": listing.items_per_page,
            "startIndex": listing.start_index,
            "Resources": docs,
        }
    )


def _resource(
    doc: dict[str, Any], status: int = 200, shown: dict[str, Any] | None = None
) -> Response:
    """A resource with its ETag (and Location when created); ``shown`` is what the
    response holds of it when attributes were chosen."""
    headers = {"ETag": doc["meta"]["version"]}
    if status == 201:
        headers["Location"] = doc["meta"]["location"]
    return scim_response(orjson.dumps(doc if shown is None else shown), status, headers)


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


async def _listing(
    request: Request,
    services: Any,
    system_id: str,
    endpoint: str,
    *,
    filter: str | None,
    start_index: int | None,
    count: int | None,
    sort_by: str | None,
    sort_order: str | None,
    attributes: str | None,
    excluded: str | None,
) -> Response:
    proxy = proxy_service(request, services)
    listing = await proxy.search(
        system_id,
        endpoint,
        proxy_base(request, system_id),
        filter=filter,
        start_index=start_index,
        count=count,
        sort_by=sort_by,
        descending=(sort_order or "").lower() == "descending",
    )
    registry = _registry(services)
    docs = [_project(registry, endpoint, d, attributes, excluded) for d in listing.resources]
    return scim_response(_list_body(listing, docs))


async def list_resources(
    system_id: str,
    endpoint: str,
    request: Request,
    services: ServicesDep,
    filter: Filter = None,
    start_index: StartIndex = None,
    count: Count = None,
    sort_by: SortBy = None,
    sort_order: SortOrder = None,
    attributes: Attributes = None,
    excluded: Excluded = None,
) -> Response:
    return await _listing(
        request,
        services,
        system_id,
        endpoint,
        filter=filter,
        start_index=check_index("startIndex", start_index),
        count=check_index("count", count),
        sort_by=sort_by,
        sort_order=sort_order,
        attributes=attributes,
        excluded=excluded,
    )


async def search_by_post(
    system_id: str, endpoint: str, request: Request, services: ServicesDep
) -> Response:
    """A SearchRequest (RFC 7644 §3.4.3): the same as a GET of the list."""
    query = search_request(await json_body(request))
    if query.start_id is not None:
        raise InvalidValueError("The proxy pages by startIndex and count: no startId.")
    return await _listing(
        request,
        services,
        system_id,
        endpoint,
        filter=query.filter,
        start_index=query.start_index,
        count=query.count,
        sort_by=query.sort_by,
        sort_order=query.sort_order,
        attributes=query.attributes,
        excluded=query.excluded_attributes,
    )


async def get_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    attributes: Attributes = None,
    excluded: Excluded = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    proxy = proxy_service(request, services)
    doc = await proxy.get(system_id, endpoint, resource_id, proxy_base(request, system_id))
    tag = doc["meta"]["version"]
    if if_none_match is not None and etag_matches(if_none_match, tag):
        return Response(status_code=304, headers={"ETag": tag})
    shown = _project(_registry(services), endpoint, doc, attributes, excluded)
    return _resource(doc, shown=shown)


async def create_resource(
    system_id: str,
    endpoint: str,
    request: Request,
    services: ServicesDep,
) -> Response:
    _writable(endpoint)
    body = await json_body(request)
    proxy = proxy_service(request, services)
    doc = await proxy.create(system_id, endpoint, body, proxy_base(request, system_id))
    return _resource(doc, 201)


async def replace_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> Response:
    body = await json_body(request)
    proxy = proxy_service(request, services)
    base = proxy_base(request, system_id)
    doc = await proxy.replace(system_id, endpoint, resource_id, body, base, if_match=if_match)
    return _resource(doc)


async def patch_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> Response:
    body = await json_body(request)
    proxy = proxy_service(request, services)
    base = proxy_base(request, system_id)
    doc = await proxy.patch(system_id, endpoint, resource_id, body, base, if_match=if_match)
    return _resource(doc)


async def delete_resource(
    system_id: str,
    endpoint: str,
    resource_id: str,
    request: Request,
    services: ServicesDep,
    if_match: IfMatch = None,
) -> Response:
    base = proxy_base(request, system_id)
    proxy = proxy_service(request, services)
    await proxy.delete(system_id, endpoint, resource_id, base, if_match=if_match)
    return Response(status_code=204)


# -- discovery --------------------------------------------------------------------------------


async def service_provider_config(
    system_id: str, request: Request, services: ServicesDep
) -> Response:
    await proxy_service(request, services).compiled(system_id)  # 404/503 as for the others
    body = discovery.service_provider_config(proxy_base(request, system_id))
    return scim_response(orjson.dumps(body))


async def resource_types(system_id: str, request: Request, services: ServicesDep) -> Response:
    compiled = await proxy_service(request, services).compiled(system_id)
    base = proxy_base(request, system_id)
    found = discovery.resource_types(compiled, _registry(services), base)
    return scim_response(discovery_list(found))


async def resource_type(
    system_id: str, name: str, request: Request, services: ServicesDep
) -> Response:
    compiled = await proxy_service(request, services).compiled(system_id)
    base = proxy_base(request, system_id)
    for doc in discovery.resource_types(compiled, _registry(services), base):
        if doc["id"] == name:
            return scim_response(orjson.dumps(doc))
    raise ResourceNotFoundError(f"Resource type {name} not found.")


async def list_schemas(system_id: str, request: Request, services: ServicesDep) -> Response:
    compiled = await proxy_service(request, services).compiled(system_id)
    found = discovery.schemas(compiled, _registry(services), proxy_base(request, system_id))
    return scim_response(discovery_list(found))


async def get_schema(
    system_id: str, schema_id: str, request: Request, services: ServicesDep
) -> Response:
    compiled = await proxy_service(request, services).compiled(system_id)
    for doc in discovery.schemas(compiled, _registry(services), proxy_base(request, system_id)):
        if doc["id"] == schema_id:
            return scim_response(orjson.dumps(doc))
    raise ResourceNotFoundError(f"Schema {schema_id} not found.")


# method, path, handler, summary, status, the body's schema (None: no body)
_ROUTES: list[tuple[str, str, Callable[..., Any], str, int, str | None]] = [
    (
        "GET",
        "/ServiceProviderConfig",
        service_provider_config,
        "What the proxy supports",
        200,
        "ServiceProviderConfig",
    ),
    (
        "GET",
        "/ResourceTypes",
        resource_types,
        "The resource types the proxy serves",
        200,
        "ResourceTypeList",
    ),
    ("GET", "/ResourceTypes/{name}", resource_type, "One resource type", 200, "ResourceType"),
    ("GET", "/Schemas", list_schemas, "The schemas of the proxy's resources", 200, "SchemaList"),
    ("GET", "/Schemas/{schema_id}", get_schema, "One schema", 200, "Schema"),
    (
        "POST",
        f"/{ENDPOINT}/.search",
        search_by_post,
        "Search users or groups (SearchRequest)",
        200,
        "ProxyResourceList",
    ),
    (
        "GET",
        f"/{ENDPOINT}",
        list_resources,
        "List users or groups (eq or delta filter)",
        200,
        "ProxyResourceList",
    ),
    (
        "POST",
        f"/{ENDPOINT}",
        create_resource,
        "Create a user or group in the back-end",
        201,
        "ProxyResource",
    ),
    (
        "GET",
        f"/{ENDPOINT}/{{resource_id}}",
        get_resource,
        "One user or group",
        200,
        "ProxyResource",
    ),
    (
        "PUT",
        f"/{ENDPOINT}/{{resource_id}}",
        replace_resource,
        "Replace a user or group",
        200,
        "ProxyResource",
    ),
    (
        "PATCH",
        f"/{ENDPOINT}/{{resource_id}}",
        patch_resource,
        "Patch a user or group",
        200,
        "ProxyResource",
    ),
    (
        "DELETE",
        f"/{ENDPOINT}/{{resource_id}}",
        delete_resource,
        "Delete a user or group",
        204,
        None,
    ),
]

for _method, _path, _endpoint, _summary, _status, _body in _ROUTES:
    _dependencies = [NoFilter] if _path.lstrip("/").startswith(DISCOVERY) else []
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
