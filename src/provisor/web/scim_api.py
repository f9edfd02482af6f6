"""The Local Identity Directory's SCIM 2.0 API (RFC 7644) at ``/scim``."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.directory.bulk import BulkProcessor
from provisor.directory.service import Directory, ListQuery, Rendered
from provisor.scim import schemas as s
from provisor.scim.errors import (
    InvalidSyntaxError,
    InvalidValueError,
    InvalidVersionError,
    NotImplementedSCIMError,
)
from provisor.scim.limits import check_index
from provisor.types import EntityType
from provisor.web import openapi
from provisor.web.auth import Guard, GuardedRoute, ServicesDep, context_of, guard
from provisor.web.errors import SCIM_MEDIA_TYPE
from provisor.web.tenancy import public_root

router = APIRouter(
    route_class=GuardedRoute, default_response_class=Response, responses=openapi.scim_errors
)

Filter = Annotated[str | None, Query(description="SCIM filter (RFC 7644 §3.4.2.2)")]
SortBy = Annotated[str | None, Query(alias="sortBy")]
SortOrder = Annotated[str | None, Query(alias="sortOrder", pattern="(?i)^(ascending|descending)$")]
StartIndex = Annotated[int | None, Query(alias="startIndex")]
Count = Annotated[int | None, Query()]
StartId = Annotated[
    str | None,
    Query(
        alias="startId",
        description="SAP cursor paging: 'initial' or the id of the first resource of the page",
    ),
]
Attributes = Annotated[str | None, Query()]
Excluded = Annotated[str | None, Query(alias="excludedAttributes")]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match")]


def scim_response(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status, headers=headers, media_type=SCIM_MEDIA_TYPE)


def base_url(request: Request) -> str:
    """The Local Identity Directory's SCIM root for this request's tenant."""
    configured = request.app.state.services.settings.base_url
    return public_root(request.scope, configured, str(request.base_url)) + "/scim"


async def json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise InvalidSyntaxError("The request body is empty; a JSON object is expected.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntaxError(f"The request body is not valid JSON: {exc}.") from exc
    schemas = body.get("schemas") if isinstance(body, dict) else None
    if isinstance(schemas, list) and any(
        isinstance(urn, str) and urn.lower().startswith(s.SCIM1_PREFIX) for urn in schemas
    ):
        raise InvalidVersionError("This is a SCIM 1.x message; the API speaks SCIM 2.0.")
    return body


def rendered(result: Rendered, status: int = 200) -> Response:
    headers = {"ETag": result.etag}
    if status == 201:
        headers["Location"] = result.location
    if result.body is None:
        return Response(status_code=304, headers=headers)
    return scim_response(result.body, status, headers)


# -- Users and Groups ----------------------------------------------------------------------------


@router.post(
    "/.search",
    summary="Search users and groups together (SearchRequest body)",
    dependencies=[guard(Directory.search_all)],
    tags=[openapi.SCIM_SEARCH],
    responses={200: openapi.scim_content("ResourceList")},
)
async def search_everything(request: Request, services: ServicesDep) -> Response:
    ctx = context_of(request)
    query = search_request(await json_body(request))
    body = await run_in_threadpool(services.directory.search_all, ctx, query, base_url(request))
    return scim_response(body)


def search_request(body: Any) -> ListQuery:
    """A ListQuery from a SearchRequest message (RFC 7644 §3.4.3)."""
    if not isinstance(body, dict):
        raise InvalidSyntaxError("A SearchRequest must be a JSON object.")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or s.SEARCH_REQUEST not in schemas:
        raise InvalidSyntaxError(f"A SearchRequest must have schemas [{s.SEARCH_REQUEST!r}].")

    def text(key: str) -> str | None:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ",".join(value)
        if not isinstance(value, str):
            raise InvalidValueError(f"{key} must be a string.")
        return value

    def number(key: str) -> int | None:
        value = body.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidValueError(f"{key} must be an integer.")
        return value

    order = text("sortOrder")
    if order is not None and order.lower() not in ("ascending", "descending"):
        raise InvalidValueError("sortOrder must be 'ascending' or 'descending'.")
    return ListQuery(
        filter=text("filter"),
        sort_by=text("sortBy"),
        sort_order=order,
        start_index=check_index("startIndex", number("startIndex")),
        count=check_index("count", number("count")),
        start_id=text("startId"),
        attributes=text("attributes"),
        excluded_attributes=text("excludedAttributes"),
    )


def _register(kind: EntityType) -> None:
    """The routes of one resource type: /Users or /Groups."""
    # The directory's rules for the type, checked before the request is read: reads admit
    # ``view`` too, changes only the type's manage permission.
    reads = Depends(Guard(*Directory.readers(kind)))
    changes = Depends(Guard(Directory.permission(kind)))
    tag = {EntityType.USER: openapi.SCIM_USERS, EntityType.GROUP: openapi.SCIM_GROUPS}[kind]
    endpoint, name = kind.endpoint, kind.resource_type

    def list_resources(
        request: Request,
        services: ServicesDep,
        filter: Filter = None,
        sort_by: SortBy = None,
        sort_order: SortOrder = None,
        start_index: StartIndex = None,
        count: Count = None,
        start_id: StartId = None,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        ctx = context_of(request)
        query = ListQuery(
            filter=filter,
            sort_by=sort_by,
            sort_order=sort_order,
            start_index=check_index("startIndex", start_index),
            count=check_index("count", count),
            start_id=start_id,
            attributes=attributes,
            excluded_attributes=excluded,
        )
        return scim_response(services.directory.search(ctx, kind, query, base_url(request)))

    async def search_resources(request: Request, services: ServicesDep) -> Response:
        ctx = context_of(request)
        query = search_request(await json_body(request))
        search = services.directory.search
        body = await run_in_threadpool(search, ctx, kind, query, base_url(request))
        return scim_response(body)

    async def create_resource(
        request: Request,
        services: ServicesDep,
        attributes: Attributes = None,
        excluded: Excluded = None,
    ) -> Response:
        ctx = context_of(request)
        body = await json_body(request)

        def create() -> Rendered:
            return services.directory.create(
                ctx, kind, body, base_url(request), attributes=attributes, excluded=excluded
            )

        return rendered(await run_in_threadpool(create), 201)

    def get_resource(
        resource_id: str,
        request: Request,
        services: ServicesDep,
        attributes: Attributes = None,
        excluded: Excluded = None,
        if_none_match: IfNoneMatch = None,
    ) -> Response:
        ctx = context_of(request)
        result = services.directory.get(
            ctx,
            kind,
            resource_id,
            base_url(request),
            attributes=attributes,
            excluded=excluded,
            if_none_match=if_none_match,
        )
        return rendered(result)

    async def replace_resource(
        resource_id: str,
        request: Request,
        services: ServicesDep,
        attributes: Attributes = None,
        excluded: Excluded = None,
        if_match: IfMatch = None,
    ) -> Response:
        ctx = context_of(request)
        body = await json_body(request)

        def replace() -> Rendered:
            return services.directory.replace(
                ctx,
                kind,
                resource_id,
                body,
                base_url(request),
                if_match,
                attributes=attributes,
                excluded=excluded,
            )

        return rendered(await run_in_threadpool(replace))

    async def patch_resource(
        resource_id: str,
        request: Request,
        services: ServicesDep,
        attributes: Attributes = None,
        excluded: Excluded = None,
        if_match: IfMatch = None,
    ) -> Response:
        ctx = context_of(request)
        body = await json_body(request)

        def patch() -> Rendered:
            return services.directory.patch(
                ctx,
                kind,
                resource_id,
                body,
                base_url(request),
                if_match=if_match,
                attributes=attributes,
                excluded=excluded,
            )

        return rendered(await run_in_threadpool(patch))

    def delete_resource(
        resource_id: str, request: Request, services: ServicesDep, if_match: IfMatch = None
    ) -> Response:
        ctx = context_of(request)
        services.directory.delete(ctx, kind, resource_id, if_match)
        return Response(status_code=204)

    one = f"/{endpoint}/{{resource_id}}"
    found: openapi.Responses = {200: openapi.scim_content(name)}
    listed: openapi.Responses = {200: openapi.scim_content(f"{name}List")}
    unchanged: openapi.Responses = {304: {"description": "Not modified (If-None-Match)"}}
    routes: list[tuple[str, Any, str, str, int, openapi.Responses]] = [
        (f"/{endpoint}", list_resources, "GET", f"List or filter {endpoint.lower()}", 200, listed),
        (
            f"/{endpoint}/.search",
            search_resources,
            "POST",
            f"Search {endpoint.lower()}",
            200,
            listed,
        ),
        (
            f"/{endpoint}",
            create_resource,
            "POST",
            f"Create a {kind.value}",
            201,
            {201: openapi.scim_content(name, "Created")},
        ),
        (one, get_resource, "GET", f"Get a {kind.value}", 200, found | unchanged),
        (one, replace_resource, "PUT", f"Replace a {kind.value}", 200, found),
        (one, patch_resource, "PATCH", f"Modify a {kind.value} (PatchOp)", 200, found),
        (one, delete_resource, "DELETE", f"Delete a {kind.value}", 204, {}),
    ]
    for path, handler, method, summary, status, responses in routes:
        admits = reads if handler in (list_resources, search_resources, get_resource) else changes
        router.add_api_route(
            path,
            handler,
            methods=[method],
            summary=summary,
            status_code=status,
            tags=[tag],
            name=f"{handler.__name__}_{kind.value}",
            responses=responses,
            dependencies=[admits],
        )


_register(EntityType.USER)
_register(EntityType.GROUP)


async def me() -> Response:
    raise NotImplementedSCIMError(
        "/Me is not supported: the authenticated caller is a technical user, not a user of "
        "the directory."
    )


for _method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
    router.add_api_route(
        "/Me",
        me,
        methods=[_method],
        name=f"me_{_method.lower()}",
        status_code=501,
        summary="Not supported: callers are technical users, not directory users (RFC 7644 §3.11)",
        tags=[openapi.SCIM_USERS],
        responses={501: openapi.scim_content("ScimError", "Not implemented")},
        dependencies=[guard(Directory.resource_types)],  # any reader of the directory
    )


# -- Bulk ------------------------------------------------------------------------------------------


@router.post(
    "/Bulk",
    summary="Several operations in one request (RFC 7644 §3.7)",
    dependencies=[guard(BulkProcessor.run)],
    tags=[openapi.SCIM_SEARCH],
    responses={200: openapi.scim_content("BulkResponse")},
)
async def bulk(request: Request, services: ServicesDep) -> Response:
    ctx = context_of(request)
    body = await json_body(request)
    processor = BulkProcessor(
        services.directory,
        base_url(request),
        max_operations=services.settings.bulk_max_operations,
    )
    return scim_response(await run_in_threadpool(processor.run, ctx, body))
