"""The proxy activity page: the calls of proxy systems' SCIM APIs, newest first, by system,
entity and outcome."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.pages.jobs import paging
from provisor.console.rendering import ROOT, ConsoleContext, ConsoleRoute, render, services
from provisor.errors import InputError

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50
SYSTEMS = 200
OUTCOMES = {"failed": True, "succeeded": False}


@router.get("/proxy")
def activity(request: Request, ctx: ConsoleContext) -> Response:
    query = request.query_params
    state = query.get("state") or None
    if state is not None and state not in OUTCOMES:
        raise InputError(f"The state is failed or succeeded, not {state!r}.")
    entity = (query.get("entity") or "").strip()[:512] or None
    system = query.get("system") or None
    offset, limit = paging(request, PAGE)
    found = services(request)
    chosen = found.systems.show(ctx, system) if system else None
    calls, more = found.proxy_activity.search(
        ctx,
        system_id=chosen.id if chosen else None,
        entity_id=entity,
        failed=OUTCOMES[state] if state else None,
        offset=offset,
        limit=limit,
    )
    proxies = found.systems.listing(ctx, role=Role.PROXY, limit=SYSTEMS)[0]
    filters = {k: v for k, v in (("system", system), ("entity", entity), ("state", state)) if v}
    return render(
        request,
        "realtime/proxy.html",
        calls=calls,
        more=more,
        offset=offset,
        limit=limit,
        filters=filters,
        proxies=proxies,
        names={s.id: s.name for s in proxies},
    )
