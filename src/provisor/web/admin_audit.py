"""The audit log in the admin API (``/api/v1/audit``, permission ``view``) and the operator
API (``/operator/v1/audit``: the installation's log, or a tenant's with ``?tenant=``): records
newest first with filters and an id cursor, a streamed export (JSON lines or CSV, oldest
first, bounded), and the check of the hash chain."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response, StreamingResponse

from provisor.audit.service import DEFAULT_PAGE, EXPORT_MAX, MAX_PAGE, AuditService, Filters
from provisor.connectors.csv.files import formula_safe
from provisor.context import Context, Permission
from provisor.runtime import Services
from provisor.web import openapi
from provisor.web.auth import ContextDep, Guard, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1", tags=[openapi.ADMIN_AUDIT], route_class=GuardedRoute, responses=openapi.errors
)
operator = APIRouter(
    prefix="/operator/v1",
    tags=[openapi.OPERATOR],
    route_class=GuardedRoute,
    responses=openapi.errors,
)
COLUMNS = (
    "id",
    "seq",
    "at",
    "tenant",
    "actorKind",
    "actor",
    "address",
    "requestId",
    "action",
    "target",
    "detail",
    "prevHash",
    "hash",
)


def filters(
    since: Annotated[
        str, Query(max_length=40, description="From this time (ISO 8601), inclusive")
    ] = "",
    until: Annotated[
        str, Query(max_length=40, description="Until this time (ISO 8601), exclusive")
    ] = "",
    actor: Annotated[str, Query(max_length=255, description="The actor's name")] = "",
    action: Annotated[
        str, Query(max_length=64, description="Actions starting with this, e.g. administrator.")
    ] = "",
    target: Annotated[str, Query(max_length=255, description="What was acted on")] = "",
) -> Filters:
    return Filters(since=since, until=until, actor=actor, action=action, target=target)


FiltersDep = Annotated[Filters, Depends(filters)]
Before = Annotated[
    int | None, Query(ge=1, description="The cursor: records older than this id (next)")
]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Format = Annotated[str, Query(pattern="^(jsonl|csv)$", description="jsonl (default) or csv")]
ExportLimit = Annotated[int, Query(ge=1, le=EXPORT_MAX)]
TenantParam = Annotated[
    str | None, Query(max_length=63, description="A tenant's log instead of the installation's")
]


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


def _page(audit: AuditService, ctx: Context, found: Filters, before: int | None, limit: int) -> Any:
    items, after = audit.listing(ctx, found, before=before, limit=limit)
    return _json({"items": items, "next": after})


def _lines(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for record in records:
        yield orjson.dumps(record) + b"\n"


def _csv(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The records as CSV, each cell that a spreadsheet would take for a formula (an actor,
    a target or a detail a caller chose) quoted as text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        row = {**record, "detail": orjson.dumps(record["detail"]).decode()}
        writer.writerow([_cell(row[name]) for name in COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else formula_safe(str(value))


def _export(audit: AuditService, ctx: Context, found: Filters, format: str, limit: int) -> Response:
    records = audit.export(ctx, found, limit=limit)  # checks first: errors before streaming
    name = f"audit-{ctx.tenant}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return StreamingResponse(_csv(records), media_type="text/csv", headers=headers)
    return StreamingResponse(_lines(records), media_type="application/x-ndjson", headers=headers)


@router.get(
    "/audit",
    summary="The tenant's audit log, newest first (filters; next page: before=<next>)",
    dependencies=[guard(AuditService.listing)],
)
def list_audit(
    services: ServicesDep,
    ctx: ContextDep,
    found: FiltersDep,
    before: Before = None,
    limit: Limit = DEFAULT_PAGE,
) -> Response:
    return _page(services.audit, ctx, found, before, limit)  # type: ignore[no-any-return]


@router.get(
    "/audit/export",
    summary="The tenant's audit log, oldest first, as JSON lines or CSV (streamed, bounded)",
    dependencies=[guard(AuditService.export)],
)
def export_audit(
    services: ServicesDep,
    ctx: ContextDep,
    found: FiltersDep,
    format: Format = "jsonl",
    limit: ExportLimit = EXPORT_MAX,
) -> Response:
    return _export(services.audit, ctx, found, format, limit)


@router.get(
    "/audit/verify",
    summary="Check the tenant's audit hash chain: the first broken record, if any",
    dependencies=[guard(AuditService.verify)],
)
def verify_audit(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(services.audit.verify(ctx).to_json())


OPERATOR_GUARD = [Depends(Guard(Permission.OPERATOR))]


def _scope(services: Services, ctx: Context, tenant: str | None) -> Context:
    """The operator's context: the installation's log, or acting in ``tenant``."""
    return ctx if tenant is None else services.tenants.acting_in(ctx, tenant)


@operator.get(
    "/audit",
    summary="The installation's audit log (or a tenant's), newest first",
    dependencies=OPERATOR_GUARD,
)
def operator_audit(
    services: ServicesDep,
    ctx: ContextDep,
    found: FiltersDep,
    tenant: TenantParam = None,
    before: Before = None,
    limit: Limit = DEFAULT_PAGE,
) -> Response:
    return _page(services.audit, _scope(services, ctx, tenant), found, before, limit)  # type: ignore[no-any-return]


@operator.get(
    "/audit/export",
    summary="The installation's audit log (or a tenant's) as JSON lines or CSV",
    dependencies=OPERATOR_GUARD,
)
def operator_export(
    services: ServicesDep,
    ctx: ContextDep,
    found: FiltersDep,
    tenant: TenantParam = None,
    format: Format = "jsonl",
    limit: ExportLimit = EXPORT_MAX,
) -> Response:
    return _export(services.audit, _scope(services, ctx, tenant), found, format, limit)


@operator.get(
    "/audit/verify",
    summary="Check the installation's audit hash chain (or a tenant's)",
    dependencies=OPERATOR_GUARD,
)
def operator_verify(services: ServicesDep, ctx: ContextDep, tenant: TenantParam = None) -> Response:
    return _json(services.audit.verify(_scope(services, ctx, tenant)).to_json())
