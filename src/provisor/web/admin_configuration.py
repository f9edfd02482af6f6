"""A tenant's configuration as one document in the admin API (``/api/v1``, permission
``admin``): export it, plan a document against the tenant, apply it, list the bundle
templates. A document with problems is refused with 400 problem JSON listing every one
(``problems``); applying with an ``expect`` fingerprint that no longer matches is 409.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query
from starlette.responses import Response

from provisor.configuration import present
from provisor.configuration.service import ConfigurationService
from provisor.timestamps import now
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_CONFIGURATION],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

Document = Annotated[
    dict[str, Any],
    Body(description="A configuration document (GET /api/v1/configuration, or a bundle's)"),
]
Prune = Annotated[
    bool,
    Query(
        description="Also delete what the document leaves out (systems, schedules, links, "
        "custom schemas)"
    ),
]

Expect = Annotated[
    str | None,
    Query(
        max_length=64,
        description="The fingerprint of the plan reviewed: 409 when the configuration changed "
        "since",
    ),
]


def _json(data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_INDENT_2),
        headers=headers,
        media_type="application/json",
    )


@router.get(
    "/configuration",
    summary="The tenant's configuration as one document (credentials left out)",
    dependencies=[guard(ConfigurationService.export)],
)
def export_configuration(services: ServicesDep, ctx: ContextDep) -> Response:
    return exported(services.configuration.export(ctx), ctx.tenant)


def exported(document: Any, tenant: str) -> Response:
    """A tenant's exported configuration, as a file to save (also the operator's export)."""
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in tenant)
    disposition = f'attachment; filename="provisor-{name}-{now()[:10]}.json"'
    return _json(document, headers={"Content-Disposition": disposition})


@router.post(
    "/configuration/plan",
    summary="What applying a document would change; its fingerprint",
    dependencies=[guard(ConfigurationService.plan)],
)
def plan_configuration(
    body: Document, services: ServicesDep, ctx: ContextDep, prune: Prune = False
) -> Response:
    return _json(present.plan(services.configuration.plan(ctx, body, prune=prune)))


@router.post(
    "/configuration/apply",
    summary="Make the tenant's configuration the document's",
    dependencies=[guard(ConfigurationService.apply)],
)
def apply_configuration(
    body: Document,
    services: ServicesDep,
    ctx: ContextDep,
    prune: Prune = False,
    expect: Expect = None,
) -> Response:
    applied = services.configuration.apply(ctx, body, prune=prune, expect=expect)
    return _json(present.plan(applied))


@router.get(
    "/bundles",
    summary="The bundle templates a tenant can be set up from",
    dependencies=[guard(ConfigurationService.bundles)],
)
def list_bundles(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.bundles(services.configuration.bundles(ctx)))


@router.get(
    "/bundles/{name}",
    summary="A bundle template's document (plan and apply it like any configuration)",
    dependencies=[guard(ConfigurationService.bundle)],
)
def get_bundle(name: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(services.configuration.bundle(ctx, name))
