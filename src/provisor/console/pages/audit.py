"""The audit log page: who changed what, signed in or failed to, newest first, with filters
and an id cursor, and the check of the hash chain; a tenant's at /console/audit, the
installation's at /operator/console/audit."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisor.audit.service import DEFAULT_PAGE, Filters
from provisor.console.rendering import (
    OPERATOR_ROOT,
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    render,
    services,
)
from provisor.errors import InputError

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)
operator = APIRouter(prefix=OPERATOR_ROOT, route_class=ConsoleRoute, include_in_schema=False)

FIELDS = ("since", "until", "actor", "action", "target")


def _page(request: Request, ctx: ConsoleContext) -> Response:
    query = request.query_params
    given = {name: (query.get(name) or "").strip()[:255] for name in FIELDS}
    raw = query.get("before") or ""
    if raw and not raw.isdigit():
        raise InputError("The page cursor (before) is a record id.")
    before = int(raw) if raw else None
    audit = services(request).audit
    records, after = audit.listing(ctx, Filters(**given), before=before, limit=DEFAULT_PAGE)
    verdict = audit.verify(ctx) if query.get("verify") else None
    return render(
        request,
        "audit.html",
        records=records,
        after=after,
        before=before,
        filters={k: v for k, v in given.items() if v},
        verdict=verdict,
    )


@router.get("/audit")
def audit_page(request: Request, ctx: ConsoleContext) -> Response:
    return _page(request, ctx)


@operator.get("/audit")
def operator_audit_page(request: Request, ctx: ConsoleContext) -> Response:
    return _page(request, ctx)
