"""Jobs in the admin API (``/api/v1``, permission ``admin``) and SAP's tenant admin API
(``/ips/service/publicapi/v1``, permission ``tenant_admin_api``, spec §3.11)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.auth.permissions import Principal
from provisor.errors import ConfigError
from provisor.jobs.export import export_job
from provisor.jobs.model import Job, JobStatus, JobType, Trigger
from provisor.jobs.service import JobService
from provisor.jobs.validate import ENTITY_TYPES, parse_csv, samples_from_json
from provisor.web import openapi
from provisor.web.auth import (
    Admin,
    GuardedRoute,
    PrincipalDep,
    ServicesDep,
    TenantAdminCaller,
)
from provisor.web.limits import Offset

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_JOBS],
    route_class=GuardedRoute,
    dependencies=[Admin],
    responses=openapi.errors,
)
public = APIRouter(
    tags=[openapi.TENANT_ADMIN],
    route_class=GuardedRoute,
    dependencies=[TenantAdminCaller],
    responses=openapi.errors,
)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def _jobs(services: Any) -> JobService:
    jobs: JobService = services.jobs
    return jobs


class StartBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: JobType = JobType.READ
    trace: bool = Field(False, description="Keep each entity's transformation trace (SIMULATE)")


def _started(request: Request, job: Job) -> Response:
    location = str(request.url_for("get_job", job_id=job.id))
    return _json(job.to_dict(), 202, {"Location": location})


@router.post(
    "/systems/{system_id}/jobs",
    status_code=202,
    summary="Start a job on a source system (queued behind a running one)",
)
def start_job(
    system_id: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    body: StartBody | None = None,
) -> Response:
    author = principal.name
    wanted = body or StartBody()
    job = _jobs(services).start(
        system_id,
        type=wanted.type,
        triggered_by=author,
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
)
async def validate(
    system_id: str,
    request: Request,
    services: ServicesDep,
    entity_type: Annotated[str | None, Query(alias="entityType")] = None,
) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if content_type == "text/csv":
        if entity_type not in ENTITY_TYPES:
            raise ConfigError("A text/csv body needs ?entityType=user or ?entityType=group.")
        samples: dict[str, Any] = {entity_type: parse_csv(raw.decode("utf-8-sig"), entity_type)}
    else:
        samples = samples_from_json(raw)
    result = await run_in_threadpool(_jobs(services).validate, system_id, samples)
    return _json(result)


@router.get("/jobs", summary="Jobs, newest first")
def list_jobs(
    services: ServicesDep,
    source: Annotated[str | None, Query(description="Source system id or name")] = None,
    status: JobStatus | None = None,
    type: JobType | None = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    found, total = _jobs(services).all(
        source=source,
        status=status.value if status else None,
        type=type.value if type else None,
        offset=offset,
        limit=limit,
    )
    return _json(
        {"items": [j.to_dict() for j in found], "total": total, "offset": offset, "limit": limit}
    )


@router.get("/jobs/{job_id}", summary="A job with its statistics")
def get_job(job_id: str, services: ServicesDep) -> Response:
    return _json(_jobs(services).get(job_id).to_dict())


@router.post("/jobs/{job_id}/stop", summary="Stop a job at its next safe point")
def stop_job(job_id: str, services: ServicesDep) -> Response:
    return _json(_jobs(services).stop(job_id).to_dict())


@router.get("/jobs/{job_id}/entities", summary="Failed, skipped, created... entities of a job")
def job_entities(
    job_id: str,
    services: ServicesDep,
    action: Annotated[
        list[str] | None, Query(description="failed, skipped, created, updated, deleted")
    ] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> Response:
    rows, total = _jobs(services).entity_logs(job_id, action, offset=offset, limit=limit)
    return _json({"items": rows, "total": total, "offset": offset, "limit": limit})


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
)
def export_job_logs(
    job_id: str,
    services: ServicesDep,
    log_type: LogTypeQuery = "commonLog",
) -> Response:
    return _zip(*export_job(_jobs(services), job_id, log_type))


@router.delete("/jobs", summary="Delete the logs of every finished job")
def delete_job_logs(services: ServicesDep) -> Response:
    return _json({"deleted": _jobs(services).purge(everything=True)})


class JobSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    log_retention_days: int = Field(alias="logRetentionDays", description="7, 14 or 30")


@router.get("/job-settings", summary="How long job logs are kept")
def get_job_settings(services: ServicesDep) -> Response:
    return _json({"logRetentionDays": _jobs(services).retention_days()})


@router.put("/job-settings", summary="Keep job logs 7, 14 or 30 days")
def put_job_settings(body: JobSettings, services: ServicesDep) -> Response:
    _jobs(services).set_retention_days(body.log_retention_days)
    return _json({"logRetentionDays": body.log_retention_days})


@router.post("/systems/{system_id}/reset", summary="Forget a system's operational data")
def reset_system(system_id: str, services: ServicesDep) -> Response:
    return _json({"removedRecords": _jobs(services).reset_system(system_id)})


@router.get(
    "/systems/{system_id}/deletion-holds",
    summary="Deletions an empty or shrunken full read held back, per target and entity type",
)
def deletion_holds(system_id: str, services: ServicesDep) -> Response:
    holds = _jobs(services).deletion_holds(system_id)
    return _json({"items": [h.to_dict() for h in holds]})


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
)
def confirm_deletions(
    system_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    body: ConfirmDeletions | None = None,
) -> Response:
    wanted = body or ConfirmDeletions()
    confirmed = _jobs(services).confirm_deletions(
        system_id, by=principal.name, entity_type=wanted.entity_type, target=wanted.target
    )
    return _json({"confirmed": [h.to_dict() for h in confirmed]})


class TenantReset(BaseModel):
    model_config = ConfigDict(extra="forbid")

    confirm: bool = Field(description="Must be true: every system, job and log is deleted")


@router.post("/tenant/reset", summary="Delete every system, transformation, schedule and log")
def reset_tenant(body: TenantReset, services: ServicesDep) -> Response:
    if not body.confirm:
        raise ConfigError('Send {"confirm": true} to delete every system, job and log.')
    return _json({"deletedSystems": _jobs(services).reset_tenant()})


# -- SAP's tenant admin API -----------------------------------------------------------------------

PUBLIC_PREFIXES = ("/ips/service/publicapi/v1", "/ips/publicapi/v1")


def _triggered_by(principal: Principal) -> str:
    return f"Identity Provisioning API - {principal.name}"


def _public_start(
    system_id: str,
    job_type: str,
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
) -> Response:
    by = _triggered_by(principal)
    try:
        wanted = JobType(job_type.upper())
    except ValueError:
        wanted = None
    if wanted not in (JobType.READ, JobType.RESYNC):
        raise ConfigError(f"JobType is READ or RESYNC, not {job_type!r}.")
    job = _jobs(services).start(
        system_id, type=wanted, trigger=Trigger.IMMEDIATE, triggered_by=by, queue_if_running=False
    )
    location = str(request.url_for("public_job_status", job_id=job.id))
    return _json({"jobId": job.id, "status": job.status.value}, 202, {"Location": location})


def _public_status(job_id: str, services: ServicesDep) -> Response:
    job = _jobs(services).get(job_id)
    return _json({"jobId": job.id, **job.to_dict()})


def _public_logs(
    job_id: str,
    services: ServicesDep,
    action: Annotated[str | None, Query(description="export")] = None,
    log_type: LogTypeQuery = "commonLog",
) -> Response:
    if action != "export":
        got = "missing" if action is None else f"{action!r}"
        raise ConfigError(f"The query parameter action must be export ({got}).")
    return _zip(*export_job(_jobs(services), job_id, log_type))


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
    )
    public.add_api_route(
        f"{prefix}/jobs/{{job_id}}",
        _public_status,
        methods=["GET"],
        summary="A job's status and statistics",
        include_in_schema=primary,
        name="public_job_status" if primary else "public_job_status_alias",
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
    )
