"""Who the caller is (``GET /api/v1/me``): how a client checks its credentials, as
``provisor login`` does, whatever its permissions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from provisor.context import Permission
from provisor.web import openapi
from provisor.web.auth import Guard, GuardedRoute, context_of, current_principal

router = APIRouter(
    prefix="/api/v1", tags=[openapi.OAUTH], responses=openapi.errors, route_class=GuardedRoute
)


@router.get(
    "/me",
    summary="The calling technical user",
    dependencies=[Depends(Guard(*Permission))],  # any permission: every technical user
)
async def me(request: Request) -> dict[str, Any]:
    """The technical user the request authenticates as: its name, client id, permissions,
    how it authenticated (``basic``, ``bearer`` or ``certificate``), the system a
    certificate confines it to, and the tenant."""
    return await caller(request)


async def caller(request: Request) -> dict[str, Any]:
    """The JSON of the principal a guard admitted (also ``GET /operator/v1/me``'s)."""
    principal = await current_principal(request)
    return {
        "clientId": principal.client_id,
        "name": principal.name,
        "permissions": sorted(p.value for p in principal.permissions),
        "authentication": principal.method,
        "system": principal.system,
        "tenant": context_of(request).tenant,
    }
