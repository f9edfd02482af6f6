"""Technical users (clients) in the admin API at ``/api/v1/clients``: lists and shows need
``view``, changes ``admin``.

A secret is in the answer that made it (create, rotate-secret) and nowhere else; lists and
shows give the secrets' metadata (id, created, expires). A client is named by its id or its
name in the path. Errors are RFC 7807 problem JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Request
from fastapi.openapi.models import Example
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from provisor.auth import present
from provisor.auth.clients import MAX_DESCRIPTION, ClientService
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_CLIENTS],
    route_class=GuardedRoute,
    responses=openapi.errors,
)


PERMISSIONS = (
    "manage_users, manage_groups, proxy_api, realtime_api, tenant_admin_api, view (read-only "
    "administration), admin"
)


class NewClient(BaseModel):
    """A technical user to create."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"name": "hr-sync", "permissions": ["manage_users", "manage_groups"]},
            ]
        },
    )

    name: str = Field(min_length=1, max_length=255)
    permissions: list[str] = Field(min_length=1, description=PERMISSIONS)
    description: str = Field("", max_length=MAX_DESCRIPTION)
    expires_in_days: int | None = Field(
        None, alias="expiresInDays", ge=1, description="The secret expires after so many days."
    )


class ClientChange(BaseModel):
    """What to change of a technical user: its permissions (the list replaces them all), its
    description, or both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"permissions": ["view"], "description": "monitoring"}]},
    )

    permissions: list[str] | None = Field(None, min_length=1, description=PERMISSIONS)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class Rotation(BaseModel):
    """How to rotate a client's secret."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    keep_previous: bool = Field(
        False,
        alias="keepPrevious",
        description="Keep the newest current secret valid too (two at most).",
    )
    expires_in_days: int | None = Field(
        None, alias="expiresInDays", ge=1, description="The new secret expires after so many days."
    )


ROTATIONS: dict[str, Example] = {
    "replace": {"value": {}},
    "overlap": {"value": {"keepPrevious": True, "expiresInDays": 90}},
}


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


@router.get(
    "/clients",
    summary="Technical users and their secrets' metadata (never a secret)",
    dependencies=[guard(ClientService.listing)],
)
def list_clients(services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.clients(services.clients.listing(ctx)))


@router.post(
    "/clients",
    status_code=201,
    summary="Create a technical user: the answer holds its secret, shown this once",
    dependencies=[guard(ClientService.create)],
)
def create_client(
    new: NewClient, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    row, creds = services.clients.create(
        ctx,
        new.name,
        new.permissions,
        description=new.description,
        expires_in_days=new.expires_in_days,
    )
    view = services.clients.show(ctx, row.id)
    location = str(request.url_for("get_client", client_id=row.id))
    return _json(present.with_secret(view, creds), 201, {"Location": location})


@router.get(
    "/clients/{client_id}",
    summary="One technical user (id or name) and its secrets' metadata",
    dependencies=[guard(ClientService.show)],
)
def get_client(client_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.client(services.clients.show(ctx, client_id)))


@router.patch(
    "/clients/{client_id}",
    summary="Change a technical user's permissions or description; its secrets and "
    "certificates stay (409 for taking admin from the last admin client)",
    dependencies=[guard(ClientService.update)],
)
def update_client(
    client_id: str, change: ClientChange, services: ServicesDep, ctx: ContextDep
) -> Response:
    row = services.clients.update(
        ctx, client_id, permissions=change.permissions, description=change.description
    )
    return _json(present.client(services.clients.show(ctx, row.id)))


@router.post(
    "/clients/{client_id}/rotate-secret",
    summary="Issue a new secret, shown this once; the previous one stops working unless "
    "keepPrevious",
    dependencies=[guard(ClientService.rotate_secret)],
)
def rotate_client_secret(
    client_id: str,
    services: ServicesDep,
    ctx: ContextDep,
    rotation: Annotated[Rotation | None, Body(openapi_examples=ROTATIONS)] = None,
) -> Response:
    wanted = rotation or Rotation()
    row, creds = services.clients.rotate_secret(
        ctx,
        client_id,
        keep_previous=wanted.keep_previous,
        expires_in_days=wanted.expires_in_days,
    )
    return _json(present.with_secret(services.clients.show(ctx, row.id), creds))


@router.delete(
    "/clients/{client_id}",
    status_code=204,
    summary="Delete a technical user: its secrets, tokens and certificates stop working "
    "(409 for the last admin client)",
    dependencies=[guard(ClientService.delete)],
)
def delete_client(client_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    services.clients.delete(ctx, client_id)
    return Response(status_code=204)
