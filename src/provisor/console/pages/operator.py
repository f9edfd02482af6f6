"""The installation's console at ``/operator/console``, for its operators (administrators
of the installation scope with the role ``operator``): signing in, their account, and the
tenants with their health. The tenants' own pages are not here: an operator manages
tenants, not what they hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from provisor.console.pages import account, login
from provisor.console.rendering import (
    OPERATOR_ROOT,
    ConsoleContext,
    ConsoleRoute,
    render,
    services,
)
from provisor.tenants.service import TenantHealth

# The sign-in pages and the account page, the same as a tenant's, below /operator.
shared = APIRouter(prefix="/operator", include_in_schema=False)
shared.include_router(login.router)
shared.include_router(login.signed_in)
shared.include_router(account.router)

router = APIRouter(prefix=OPERATOR_ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50
LATEST = 5


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of a quota a tenant uses (``limit`` None: no limit)."""

    label: str
    used: int
    limit: int | None

    @property
    def full(self) -> bool:
        return self.limit is not None and self.used >= self.limit


def usages(request: Request, found: TenantHealth) -> list[Usage]:
    """A tenant's use of each quota: its own, else the installation's default."""
    settings = services(request).settings
    quotas, health = found.tenant.quotas, found.health
    return [
        Usage(
            "source systems",
            health.systems.get("source", 0),
            _limit(quotas.source_systems, settings.max_source_systems),
        ),
        Usage(
            "target systems",
            health.systems.get("target", 0),
            _limit(quotas.target_systems, settings.max_target_systems),
        ),
        Usage(
            "proxy systems",
            health.systems.get("proxy", 0),
            _limit(quotas.proxy_systems, settings.max_proxy_systems),
        ),
        Usage("directory entities", health.entities, quotas.directory_entities),
    ]


def _limit(own: int | None, default: int | None) -> int | None:
    return own if own is not None else default


@router.get("")
@router.get("/")
def tenants(
    request: Request,
    ctx: ConsoleContext,
    search: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    found, total = services(request).tenants.health(
        ctx, search=search, offset=offset, limit=PAGE, latest=LATEST
    )
    return render(
        request,
        "operator/tenants.html",
        tenants=[(t, usages(request, t)) for t in found],
        total=total,
        offset=offset,
        limit=PAGE,
        search=search,
    )
