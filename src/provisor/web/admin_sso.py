"""The console's single sign-on in the admin API, ``/api/v1/console/sso``: the tenant's OpenID
Connect provider. Reading it needs ``view``, changing it ``admin``.

The client secret is written, never read back: GET answers without it, and a PUT without one
keeps the stored one. Errors are RFC 7807 problem JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.responses import Response

from provisor.admins.model import SsoSettings
from provisor.admins.oidc import DEFAULT_SCOPES
from provisor.admins.service import AdministratorService
from provisor.errors import NotFoundError
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1/console",
    tags=[openapi.ADMIN_SSO],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

ClaimValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
NOT_CONFIGURED = "Single sign-on is not configured for this tenant."


class Sso(BaseModel):
    """The tenant's OpenID Connect provider for console sign-in."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "label": "Corporate IdP",
                    "issuer": "https://idp.example.org/realms/staff",
                    "clientId": "provisor-console",
                    "clientSecret": "…",
                    "roleClaim": "groups",
                    "administratorValues": ["provisor-admins"],
                    "viewerValues": ["provisor-viewers"],
                }
            ]
        },
    )

    label: str = Field(min_length=1, max_length=64, description="The button: Sign in with …")
    issuer: str = Field(
        min_length=1,
        max_length=2048,
        description="Exactly as the provider's discovery document writes it (https).",
    )
    client_id: str = Field(alias="clientId", min_length=1, max_length=2048)
    client_secret: str = Field(
        "",
        alias="clientSecret",
        max_length=2048,
        description="Written, never read back; empty or absent keeps the stored one.",
    )
    role_claim: str = Field(
        "groups",
        alias="roleClaim",
        min_length=1,
        max_length=255,
        description="The ID token's claim that holds the console role; a dotted path reaches "
        "a nested one (realm_access.roles).",
    )
    administrator_values: list[ClaimValue] = Field(
        default_factory=list, alias="administratorValues", max_length=100
    )
    viewer_values: list[ClaimValue] = Field(
        default_factory=list, alias="viewerValues", max_length=100
    )
    scopes: str = Field(DEFAULT_SCOPES, max_length=1024)


def _json(data: Any) -> Response:
    return Response(orjson.dumps(data), media_type="application/json")


@router.get(
    "/sso",
    summary="The tenant's OpenID Connect provider for console sign-in (never its secret)",
    dependencies=[guard(AdministratorService.sso_settings)],
)
def get_sso(services: ServicesDep, ctx: ContextDep) -> Response:
    found = services.administrators.sso_settings(ctx)
    if found is None:
        raise NotFoundError(NOT_CONFIGURED)
    return _json(found.public())


@router.put(
    "/sso",
    summary="Set the tenant's OpenID Connect provider (without a client secret: keep it)",
    dependencies=[guard(AdministratorService.set_sso)],
)
def put_sso(body: Sso, services: ServicesDep, ctx: ContextDep) -> Response:
    settings = SsoSettings(
        label=body.label.strip(),
        issuer=body.issuer.strip(),
        client_id=body.client_id.strip(),
        client_secret=body.client_secret,
        role_claim=body.role_claim.strip(),
        administrator_values=tuple(dict.fromkeys(body.administrator_values)),
        viewer_values=tuple(dict.fromkeys(body.viewer_values)),
        scopes=" ".join(body.scopes.split()) or DEFAULT_SCOPES,
    )
    return _json(services.administrators.set_sso(ctx, settings).public())


@router.delete(
    "/sso",
    status_code=204,
    summary="Remove single sign-on: administrators sign in with their passwords",
    dependencies=[guard(AdministratorService.clear_sso)],
)
def delete_sso(services: ServicesDep, ctx: ContextDep) -> Response:
    services.administrators.clear_sso(ctx)
    return Response(status_code=204)
