"""The identity timeline: find a person by userName, e-mail or id, and see what every job
and real-time push did to them, newest first, and where they stand in each target."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisor.console.pages.directory import number
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    render,
    services,
    url,
)
from provisor.errors import InputError
from provisor.realtime.timeline import MAX_OFFSET, Timeline

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50


@router.get("/timeline")
def timeline(
    request: Request,
    ctx: ConsoleContext,
    q: str = "",
    offset: str = "",
) -> Response:
    found: Timeline | None = None
    problem = ""
    if q.strip():
        try:
            at = number(offset, "offset", 0, MAX_OFFSET)
            found = services(request).timeline.find(ctx, q, offset=at, limit=PAGE)
        except InputError as exc:
            problem = exc.message
    return render(
        request,
        "timeline.html",
        status=400 if problem else 200,
        q=q,
        found=found,
        problem=problem,
        paged_total=min(found.total, MAX_OFFSET) if found else 0,
        link=lambda at: url(request, "/timeline", q=q.strip(), offset=at),
    )


__all__ = ["router"]
