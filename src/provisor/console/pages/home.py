"""The home page: the tenant's systems by role, running jobs and the latest ones."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.rendering import ROOT, ConsoleContext, ConsoleRoute, render, services
from provisor.jobs.model import JobStatus

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

SHOWN = 50  # systems of each role on the home page (the systems page pages through all)


@router.get("")
@router.get("/")
def home(request: Request, ctx: ConsoleContext) -> Response:
    found = services(request)
    roles = {}
    for role in Role:
        systems, total = found.systems.listing(ctx, role=role, limit=SHOWN)
        roles[role.value] = (systems, total)
    running, _ = found.jobs.all(ctx, status=JobStatus.RUNNING, limit=20)
    latest, _ = found.jobs.all(ctx, limit=10)
    return render(request, "home.html", roles=roles, running=running, latest=latest)
