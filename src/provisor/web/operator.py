"""The operator API at ``/operator/v1`` (permission ``operator``, the installation's
technical users): create, list, show, change, disable, enable and delete tenants, and export
or import a tenant's configuration.

Served at the installation's own address only (``/operator/...`` there is the installation
scope, :mod:`provisor.web.tenancy`); a tenant's administrators never hold ``operator`` and
are refused (403), other credentials are unknown in the installation scope (401).

A tenant's configuration is exported and imported (plan, then apply with the plan's
fingerprint) as its administrators do at ``/api/v1/configuration``: the operator acts in the
tenant as ``operator:<name>`` (``TenantService.acting_in``); a document with problems is 400
listing them all (``problems``), an ``expect`` that no longer matches 409.

Creating a tenant answers 201 with its first administrator's ``client_id`` and
``client_secret``, shown this once (``Cache-Control: no-store``). Deleting one answers 200
with the rows deleted per table (``deleted``) and their ``total``. Errors are RFC 7807
problem JSON: a bad name or quota 400, an unknown tenant 404, a name taken or the default
tenant disabled or deleted 409.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from provisor.configuration import present as configuration_present
from provisor.context import DEFAULT_TENANT, Context, Permission
from provisor.tenants import present
from provisor.tenants.model import QUOTA_NAMES, Quotas
from provisor.tenants.service import TenantService
from provisor.web import openapi
from provisor.web.admin_configuration import Document, Expect, Prune, exported
from provisor.web.auth import (
    ContextDep,
    Guard,
    GuardedRoute,
    ServicesDep,
    guard,
)
from provisor.web.me import caller
from provisor.web.tenancy import PATH_PREFIX, public_root

router = APIRouter(
    prefix="/operator/v1",
    tags=[openapi.OPERATOR],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

QUOTAS_HELP = (
    "Quotas set for the tenant (null or absent: the installation's default): sourceSystems, "
    "targetSystems, proxySystems, directoryEntities (users and groups of its Local Identity "
    "Directory), jobConcurrency (at least 1)"
)
# The quotas object as the OpenAPI document describes it; Quotas.from_json checks it.
QUOTAS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {name: {"type": ["integer", "null"], "minimum": 0} for name in QUOTA_NAMES},
    "additionalProperties": False,
}


class NewTenant(BaseModel):
    """A tenant to create."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"name": "acme", "title": "ACME Corp.", "quotas": {"sourceSystems": 5}},
            ]
        },
    )

    name: str = Field(
        max_length=200,
        description="A host name label: 1 to 63 lower-case letters, digits and inner hyphens",
    )
    title: str = Field("", max_length=255)
    bundle: str | None = Field(
        None, max_length=200, description="A bundle template to set the tenant up from"
    )
    quotas: dict[str, Any] | None = Field(
        None,
        description=QUOTAS_HELP,
        json_schema_extra={"anyOf": [QUOTAS_SCHEMA, {"type": "null"}]},
    )


class TenantChange(BaseModel):
    """What to change of a tenant (what is left out stays)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"quotas": {"directoryEntities": 50000, "sourceSystems": None}}]
        },
    )

    title: str | None = Field(None, max_length=255)
    quotas: dict[str, Any] | None = Field(
        None,
        description=QUOTAS_HELP + "; merged into the quotas set, null resets one",
        json_schema_extra={"anyOf": [QUOTAS_SCHEMA, {"type": "null"}]},
    )
    enabled: bool | None = Field(
        None, description="A disabled tenant answers 404 at its URLs and runs no scheduled job"
    )


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


def tenant_urls(request: Request, services: ServicesDep, name: str) -> dict[str, str]:
    """Where tenant ``name`` is served: ``path``, the installation's root with ``/t/<name>``
    (the default tenant: the root itself), and ``host``, ``<scheme>://<name>.<domain>``
    when PROVISOR_TENANT_DOMAIN is set."""
    settings = services.settings
    root = public_root(request.scope, settings.base_url, str(request.base_url))
    urls = {"path": root if name == DEFAULT_TENANT else f"{root}{PATH_PREFIX}{name}"}
    if settings.tenant_domain:
        parts = urlsplit(root)
        port = f":{parts.port}" if parts.port is not None else ""
        urls["host"] = f"{parts.scheme}://{name}.{settings.tenant_domain}{port}"
    return urls


@router.get(
    "/me",
    summary="The calling operator (how provisor login checks an operator's credentials)",
    dependencies=[Depends(Guard(Permission.OPERATOR))],
)
async def me(request: Request) -> dict[str, Any]:
    """The operator the request authenticates as, in the shape of ``GET /api/v1/me``
    (``tenant``: the installation scope, ``_installation``)."""
    return await caller(request)


@router.post(
    "/tenants",
    status_code=201,
    summary="Create a tenant and its first administrator, whose secret the answer shows once",
    dependencies=[guard(TenantService.create)],
)
def create_tenant(
    new: NewTenant, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    tenant, creds = services.tenants.create(
        ctx,
        new.name,
        title=new.title,
        bundle=new.bundle,
        quotas=Quotas.from_json(new.quotas),
    )
    location = str(request.url_for("get_tenant", name=tenant.name))
    body = present.created(tenant, creds, tenant_urls(request, services, tenant.name))
    return _json(body, 201, {"Location": location, "Cache-Control": "no-store"})


@router.get(
    "/tenants",
    summary="The installation's tenants",
    dependencies=[guard(TenantService.listing)],
)
def list_tenants(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.tenants(services.tenants.listing(ctx)))


@router.get(
    "/tenants/{name}",
    summary="A tenant, its URLs and what it holds (usage)",
    dependencies=[guard(TenantService.show)],
)
def get_tenant(name: str, request: Request, services: ServicesDep, ctx: ContextDep) -> Response:
    found = services.tenants.show(ctx, name)
    return _json(present.view(found, tenant_urls(request, services, name)))


def _changed(
    request: Request, services: ServicesDep, ctx: Context, name: str, **changes: Any
) -> Response:
    changed = services.tenants.update(ctx, name, **changes)
    return _json(present.tenant(changed, tenant_urls(request, services, name)))


@router.patch(
    "/tenants/{name}",
    summary="Change a tenant's title, quotas (merged) or whether it is enabled",
    dependencies=[guard(TenantService.update)],
)
def update_tenant(
    name: str, change: TenantChange, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _changed(
        request,
        services,
        ctx,
        name,
        title=change.title,
        quota_changes=change.quotas,
        enabled=change.enabled,
    )


@router.post(
    "/tenants/{name}/disable",
    summary="Disable a tenant: 404 at its URLs, no scheduled job (409 for the default tenant)",
    dependencies=[guard(TenantService.update)],
)
def disable_tenant(name: str, request: Request, services: ServicesDep, ctx: ContextDep) -> Response:
    return _changed(request, services, ctx, name, enabled=False)


@router.post(
    "/tenants/{name}/enable",
    summary="Enable a tenant again",
    dependencies=[guard(TenantService.update)],
)
def enable_tenant(name: str, request: Request, services: ServicesDep, ctx: ContextDep) -> Response:
    return _changed(request, services, ctx, name, enabled=True)


@router.delete(
    "/tenants/{name}",
    summary="Delete a tenant and everything it holds; the rows deleted per table (409 for "
    "the default tenant)",
    dependencies=[guard(TenantService.delete)],
)
def delete_tenant(name: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.deleted(name, services.tenants.delete(ctx, name)))


# -- a tenant's configuration, as its administrators manage it at /api/v1/configuration --------


@router.get(
    "/tenants/{name}/configuration",
    summary="Export a tenant's configuration as one document (credentials left out)",
    dependencies=[guard(TenantService.acting_in)],
)
def export_configuration(name: str, services: ServicesDep, ctx: ContextDep) -> Response:
    inside = services.tenants.acting_in(ctx, name)
    return exported(services.configuration.export(inside), inside.tenant)


@router.post(
    "/tenants/{name}/configuration/plan",
    summary="What importing a document into a tenant would change; the plan's fingerprint",
    dependencies=[guard(TenantService.acting_in)],
)
def plan_configuration(
    name: str, body: Document, services: ServicesDep, ctx: ContextDep, prune: Prune = False
) -> Response:
    inside = services.tenants.acting_in(ctx, name)
    return _json(configuration_present.plan(services.configuration.plan(inside, body, prune=prune)))


@router.post(
    "/tenants/{name}/configuration/apply",
    summary="Import a document: make the tenant's configuration the document's",
    dependencies=[guard(TenantService.acting_in)],
)
def apply_configuration(
    name: str,
    body: Document,
    services: ServicesDep,
    ctx: ContextDep,
    prune: Prune = False,
    expect: Expect = None,
) -> Response:
    inside = services.tenants.acting_in(ctx, name)
    applied = services.configuration.apply(inside, body, prune=prune, expect=expect)
    return _json(configuration_present.plan(applied))
