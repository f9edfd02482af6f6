"""Jobs in the admin API (``/api/v1``, permission ``admin``) and SAP's tenant admin API
(``/ips/service/publicapi/v1``, permission ``tenant_admin_api``, spec §3.11)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.errors import InputError
from provisor.jobs import present
from provisor.jobs.model import Job, JobStatus, JobType, Logged
from provisor.jobs.service import JobService
from provisor.jobs.validate import ENTITY_TYPES, parse_csv, samples_from_json
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard
from provisor.web.limits import Offset

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_JOBS],
    route_class=GuardedRoute,
    responses=openapi.errors,
)
public = APIRouter(
    tags=[openapi.TENANT_ADMIN],
    route_class=GuardedRoute,
    responses=openapi.errors,
)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: JobType = JobType.READ
    trace: bool = Field(False, description="Keep each entity's transformation trace (SIMULATE)")


def _started(request: Request, job: Job) -> Response:
    location = str(request.url_for("get_job", job_id=job.id))
    return _json(present.job(job), 202, {"Location": location})


@router.post(
    "/systems/{system_id}/jobs",
    status_code=202,
    summary="Start a job on a source system (queued behind a running one)",
    dependencies=[guard(JobService.start)],
)
def start_job(
    system_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    body: StartBody | None = None,
) -> Response:
    wanted = body or StartBody()
    job = services.jobs.start(
        ctx,
        system_id,
        type=wanted.type,
        options={"trace": wanted.trace} if wanted.trace else None,
    )
    return _started(request, job)


VALIDATE_EXAMPLES: dict[str, Any] = {
    "json": {
        "value": {
            "users": [{"id": "1", "userName": "ada", "name": {"familyName": "Lovelace"}}],
            "groups": [],
        }
    },
    "csv": {"value": {"users": "id,userName,emails[0].value\n1,ada,ada@example.com\n"}},
}


@router.post(
    "/systems/{system_id}/validate",
    summary="Sample entities through the read and write transformations, writing nothing",
    description="`users` and `groups` are lists of entities as the source holds them, or CSV "
    "text whose header names attribute paths in dot notation (`name.familyName`, "
    "`emails[0].value`). A `text/csv` body with `?entityType=user|group` works too.",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}, "examples": VALIDATE_EXAMPLES},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
    dependencies=[guard(JobService.validate)],
)
async def validate(
    system_id: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
    entity_type: Annotated[str | None, Query(alias="entityType")] = None,
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if content_type == "text/csv":
        if entity_type not in ENTITY_TYPES:
            raise InputError("A text/csv body needs ?entityType=user or ?entityType=group.")
        samples: dict[str, Any] = {entity_type: parse_csv(raw.decode("utf-8-sig"), entity_type)}
    else:
        samples = samples_from_json(raw)
    result = await run_in_threadpool(services.jobs.validate, ctx, system_id, samples)
    return _json(result)


@router.get("/jobs", summary="Jobs, newest first", dependencies=[guard(JobService.all)])
def list_jobs(
    services: ServicesDep,
    ctx: ContextDep,
    source: Annotated[str | None, Query(description="Source system id or name")] = None,
    status: JobStatus | None = None,
    type: JobType | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    found, total = services.jobs.all(
        ctx, source=source, status=status, type=type, offset=offset, limit=limit
    )
    return _json(present.jobs(found, total, offset=offset, limit=limit))


@router.get(
    "/job-runners",
    summary="The processes running jobs now",
    description="Each server running jobs and each `provisor worker` beats every quarter of "
    "`PROVISOR_JOB_STALE_SECONDS`; those that beat within that time are listed. An empty list "
    "means queued jobs wait until one runs.",
    dependencies=[guard(JobService.runners)],
)
def job_runners(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.runners(services.jobs.runners(ctx)))


@router.get(
    "/jobs/{job_id}", summary="A job with its statistics", dependencies=[guard(JobService.get)]
)
def get_job(job_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.job(services.jobs.get(ctx, job_id)))


@router.post(
    "/jobs/{job_id}/stop",
    summary="Stop a job at its next safe point",
    dependencies=[guard(JobService.stop)],
)
def stop_job(job_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.job(services.jobs.stop(ctx, job_id)))


@router.get(
    "/jobs/{job_id}/entities",
    summary="Failed, skipped, created... entities of a job",
    dependencies=[guard(JobService.entity_logs)],
)
def job_entities(
    job_id: str,
    services: ServicesDep,
    ctx: ContextDep,
    action: Annotated[list[Logged] | None, Query(description="Only these actions (repeat)")] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> Response:
    rows, total = services.jobs.entity_logs(ctx, job_id, action, offset=offset, limit=limit)
    return _json(present.entity_logs(rows, total, offset=offset, limit=limit))


def _zip(name: str, data: bytes) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, 200, headers=headers, media_type="application/zip")


LogTypeQuery = Annotated[
    str,
    Query(
        alias="logType",
        description="commonLog, failedEntitiesLog, skippedEntitiesLog, createdEntitiesLog, "
        "updatedEntitiesLog, deletedEntitiesLog or allErrorsLog",
    ),
]


@router.get(
    "/jobs/{job_id}/logs",
    summary="A job's logs as a zip (SAP's file names)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
    dependencies=[guard(JobService.export)],
)
def export_job_logs(
    job_id: str,
    services: ServicesDep,
    ctx: ContextDep,
    log_type: LogTypeQuery = "commonLog",
) -> Response:
    return _zip(*services.jobs.export(ctx, job_id, log_type))


@router.delete(
    "/jobs",
    summary="Delete the logs of every finished job",
    dependencies=[guard(JobService.delete_logs)],
)
def delete_job_logs(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json({"deleted": services.jobs.delete_logs(ctx)})


class JobSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    log_retention_days: int = Field(alias="logRetentionDays", description="7, 14 or 30")


@router.get(
    "/job-settings",
    summary="How long job logs are kept",
    dependencies=[guard(JobService.retention_days)],
)
def get_job_settings(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.retention(services.jobs.retention_days(ctx)))


@router.put(
    "/job-settings",
    summary="Keep job logs 7, 14 or 30 days",
    dependencies=[guard(JobService.set_retention_days)],
)
def put_job_settings(body: JobSettings, services: ServicesDep, ctx: ContextDep) -> Response:
    days = services.jobs.set_retention_days(ctx, body.log_retention_days)
    return _json(present.retention(days))


@router.post(
    "/systems/{system_id}/reset",
    summary="Forget a system's operational data",
    dependencies=[guard(JobService.reset_system)],
)
def reset_system(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json({"removedRecords": services.jobs.reset_system(ctx, system_id)})


@router.get(
    "/systems/{system_id}/deletion-holds",
    summary="Deletions an empty or shrunken full read held back, per target and entity type",
    dependencies=[guard(JobService.deletion_holds)],
)
def deletion_holds(system_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.holds(services.jobs.deletion_holds(ctx, system_id)))


class ConfirmDeletions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    entity_type: Literal["user", "group"] | None = Field(
        None, alias="entityType", description="Only the deletions of users or of groups"
    )
    target: str | None = Field(None, description="Only those in this target (id or name)")


@router.post(
    "/systems/{system_id}/confirm-deletions",
    summary="Let the next run delete what was held back (at most as many, once)",
    description="Confirms the deletions held back for a source system as they stand: the "
    "next full read deletes them if it finds no more to delete than were held back; the "
    "confirmation is then spent. 409 when nothing is held back.",
    dependencies=[guard(JobService.confirm_deletions)],
)
def confirm_deletions(
    system_id: str,
    services: ServicesDep,
    ctx: ContextDep,
    body: ConfirmDeletions | None = None,
) -> Response:
    wanted = body or ConfirmDeletions()
    confirmed = services.jobs.confirm_deletions(
        ctx, system_id, entity_type=wanted.entity_type, target=wanted.target
    )
    return _json(present.confirmed(confirmed))


class TenantReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: bool = Field(description="Must be true: every system, job and log is deleted")


@router.post(
    "/tenant/reset",
    summary="Delete every system, transformation, schedule and log",
    dependencies=[guard(JobService.reset_tenant)],
)
def reset_tenant(body: TenantReset, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json({"deletedSystems": services.jobs.reset_tenant(ctx, confirm=body.confirm)})


# -- SAP's tenant admin API -----------------------------------------------------------------------

PUBLIC_PREFIXES = ("/ips/service/publicapi/v1", "/ips/publicapi/v1")


def _public_start(
    system_id: str,
    job_type: str,
    request: Request,
    services: ServicesDep,
    ctx: ContextDep,
) -> Response:
    job = services.jobs.public_start(ctx, system_id, job_type)
    location = str(request.url_for("public_job_status", job_id=job.id))
    return _json(present.public_started(job), 202, {"Location": location})


def _public_status(job_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.public_job(services.jobs.public_get(ctx, job_id)))


def _public_logs(
    job_id: str,
    services: ServicesDep,
    ctx: ContextDep,
    action: Annotated[str | None, Query(description="export")] = None,
    log_type: LogTypeQuery = "commonLog",
) -> Response:
    if action != "export":
        got = "missing" if action is None else f"{action!r}"
        raise InputError(f"The query parameter action must be export ({got}).")
    return _zip(*services.jobs.public_export(ctx, job_id, log_type))


for prefix in PUBLIC_PREFIXES:
    primary = prefix == PUBLIC_PREFIXES[0]
    public.add_api_route(
        f"{prefix}/startJob/{{system_id}}/jobs/{{job_type}}",
        _public_start,
        methods=["POST"],
        status_code=202,
        summary="Start a READ or RESYNC job (409 while one runs)",
        include_in_schema=primary,
        name="public_start_job" if primary else "public_start_job_alias",
        dependencies=[guard(JobService.public_start)],
    )
    public.add_api_route(
        f"{prefix}/jobs/{{job_id}}",
        _public_status,
        methods=["GET"],
        summary="A job's status and statistics",
        include_in_schema=primary,
        name="public_job_status" if primary else "public_job_status_alias",
        dependencies=[guard(JobService.public_get)],
    )
    public.add_api_route(
        f"{prefix}/jobLogs/{{job_id}}",
        _public_logs,
        methods=["GET"],
        summary="Export a job's logs as a zip (action=export)",
        response_class=Response,
        responses={200: {"content": {"application/zip": {}}}},
        include_in_schema=primary,
        name="public_job_logs" if primary else "public_job_logs_alias",
        dependencies=[guard(JobService.public_export)],
    )
