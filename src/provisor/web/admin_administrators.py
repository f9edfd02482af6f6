"""Administrators (the people who use the console) in the admin API at
``/api/v1/administrators``: lists and shows need ``view``, changes ``admin``.

A password is in the answer that generated it (create, reset) and nowhere else. An
administrator is named by its name in the path. Errors are RFC 7807 problem JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from provisor.admins import present
from provisor.admins.model import MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, Role
from provisor.admins.service import AdministratorService
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1",
    tags=[openapi.ADMIN_ADMINISTRATORS],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

MAX_PAGE = 200
PASSWORD = (
    "At least 12 characters; left out, one is generated and returned in the answer, this once."
)


class NewAdministrator(BaseModel):
    """A local administrator to create."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "ada", "role": "administrator"}]},
    )

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    role: Role = Field(description="administrator (everything) or viewer (read-only)")
    password: str | None = Field(None, max_length=MAX_PASSWORD_LENGTH, description=PASSWORD)


class RoleChange(BaseModel):
    """An administrator's new role (their sessions end: they sign in again with it)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "viewer"}]})

    role: Role


class PasswordReset(BaseModel):
    """An administrator's new password (their sessions end)."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(None, max_length=MAX_PASSWORD_LENGTH, description=PASSWORD)


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers=headers, media_type="application/json")


@router.get(
    "/administrators",
    summary="Administrators by name, a page at a time (never a password)",
    dependencies=[guard(AdministratorService.listing)],
)
def list_administrators(
    services: ServicesDep,
    ctx: ContextDep,
    search: Annotated[str, Query(max_length=MAX_NAME_LENGTH, description="Part of a name")] = "",
    after: Annotated[
        str, Query(max_length=MAX_NAME_LENGTH, description="The previous page's next")
    ] = "",
    count: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> Response:
    found = services.administrators.listing(ctx, after=after, count=count + 1, search=search)
    return _json(present.page(found, count))


@router.post(
    "/administrators",
    status_code=201,
    summary="Create a local administrator: a generated password is in the answer, this once",
    dependencies=[guard(AdministratorService.create)],
)
def create_administrator(
    new: NewAdministrator, request: Request, services: ServicesDep, ctx: ContextDep
) -> Response:
    admin, password = services.administrators.create(ctx, new.name, new.role, new.password)
    location = str(request.url_for("get_administrator", administrator=admin.name))
    body = present.administrator(admin) if new.password else present.with_password(admin, password)
    return _json(body, 201, {"Location": location})


@router.get(
    "/administrators/{administrator}",
    summary="One administrator",
    dependencies=[guard(AdministratorService.show)],
)
def get_administrator(administrator: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.administrator(services.administrators.show(ctx, administrator)))


@router.patch(
    "/administrators/{administrator}",
    summary="Change an administrator's role; their sessions end (400 for the last administrator's)",
    dependencies=[guard(AdministratorService.set_role)],
)
def change_administrator(
    administrator: str, change: RoleChange, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _json(
        present.administrator(services.administrators.set_role(ctx, administrator, change.role))
    )


@router.post(
    "/administrators/{administrator}/password",
    summary="Reset a local administrator's password (given, or generated and returned this "
    "once); their sessions end",
    dependencies=[guard(AdministratorService.reset_password)],
)
def reset_administrator_password(
    administrator: str,
    services: ServicesDep,
    ctx: ContextDep,
    reset: Annotated[PasswordReset | None, Body()] = None,
) -> Response:
    given = reset.password if reset else None
    password = services.administrators.reset_password(ctx, administrator, given)
    admin = services.administrators.show(ctx, administrator)
    body = present.administrator(admin) if given else present.with_password(admin, password)
    return _json(body)


@router.post(
    "/administrators/{administrator}/second-factor/reset",
    summary="Remove an administrator's second factor (a lost authenticator); their sessions end",
    dependencies=[guard(AdministratorService.reset_second_factor)],
)
def reset_administrator_second_factor(
    administrator: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    services.administrators.reset_second_factor(ctx, administrator)
    return _json(present.administrator(services.administrators.show(ctx, administrator)))


@router.post(
    "/administrators/{administrator}/sessions/end",
    summary="Sign an administrator out everywhere",
    dependencies=[guard(AdministratorService.end_sessions)],
)
def end_administrator_sessions(
    administrator: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    return _json({"ended": services.administrators.end_sessions(ctx, administrator)})


@router.delete(
    "/administrators/{administrator}",
    status_code=204,
    summary="Delete an administrator and end their sessions (400 for the last administrator)",
    dependencies=[guard(AdministratorService.delete)],
)
def delete_administrator(administrator: str, services: ServicesDep, ctx: ContextDep) -> Response:
    services.administrators.delete(ctx, administrator)
    return Response(status_code=204)
