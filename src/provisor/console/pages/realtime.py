"""The real-time logs pages: the changes source applications pushed, newest first, by
source, entity and state; one change with what happened in each system."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.pages.jobs import paging
from provisor.console.rendering import ROOT, ConsoleContext, ConsoleRoute, render, services
from provisor.errors import InputError
from provisor.realtime.model import STATUSES

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50
SOURCES = 200


@router.get("/realtime")
def logs(request: Request, ctx: ConsoleContext) -> Response:
    query = request.query_params
    state = query.get("state") or None
    if state is not None and state not in STATUSES:
        raise InputError(f"The state is one of {', '.join(STATUSES)}, not {state!r}.")
    entity = (query.get("entity") or "").strip()[:512] or None
    source = query.get("source") or None
    offset, limit = paging(request, PAGE)
    found = services(request)
    chosen = found.systems.show(ctx, source) if source else None
    rows, total = found.realtime.search(
        ctx,
        source=chosen.id if chosen else None,
        entity=entity,
        status=state,
        offset=offset,
        limit=limit,
    )
    filters = {k: v for k, v in (("source", source), ("entity", entity), ("state", state)) if v}
    return render(
        request,
        "realtime/list.html",
        rows=rows,
        total=total,
        offset=offset,
        limit=limit,
        filters=filters,
        sources=found.systems.listing(ctx, role=Role.SOURCE, limit=SOURCES)[0],
        states=STATUSES,
    )


@router.get("/realtime/{log_id}")
def log(request: Request, log_id: str, ctx: ConsoleContext) -> Response:
    return render(request, "realtime/log.html", log=services(request).realtime.log(ctx, log_id))
