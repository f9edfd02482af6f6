"""Administrators (the console's people): list, create (a generated password shown once),
role, password reset, second factor reset, ending sessions, deletion. The same
AdministratorService operations as ``/api/v1/administrators``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from provisor.admins.model import MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, Administrator, Role
from provisor.admins.service import role_problem
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    offer_change,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import InputError
from provisor.web.tenancy import tenant_of

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50
Name = Annotated[str, Form(max_length=MAX_NAME_LENGTH + 10)]
Password = Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH + 10)]
RoleField = Annotated[str, Form(max_length=40)]


def roles_of(tenant: str) -> list[Role]:
    """The roles a scope's people may have (the installation's: operators)."""
    return [r for r in Role if role_problem(tenant, r) is None]


def _role(request: Request, value: str) -> Role:
    try:
        role = Role(value)
    except ValueError:
        raise InputError("Choose a role.") from None
    if problem := role_problem(tenant_of(request.scope), role):
        raise InputError(problem)
    return role


def _path(admin: Administrator | str) -> str:
    return "/administrators/" + quote(admin if isinstance(admin, str) else admin.name, safe="/")


@router.get("/administrators")
def list_administrators(
    request: Request,
    ctx: ConsoleContext,
    search: Annotated[str, Query(max_length=MAX_NAME_LENGTH)] = "",
    after: Annotated[str, Query(max_length=MAX_NAME_LENGTH)] = "",
) -> Response:
    found = services(request).administrators.listing(
        ctx, after=after, count=PAGE + 1, search=search
    )
    shown = found[:PAGE]
    more = len(found) > PAGE and shown
    return render(
        request,
        "administrators/list.html",
        admins=shown,
        search=search,
        after=after,
        next_after=shown[-1].name if more else "",
        me=ctx.actor.name,
    )


@router.get("/administrators/new")
def new_administrator(request: Request, ctx: ConsoleContext) -> Response:
    offer_change(request)
    return _new_form(request, name="", role=Role.ADMINISTRATOR.value)


def _new_form(
    request: Request, *, name: str, role: str, status: int = 200, error: str = ""
) -> Response:
    return render(
        request,
        "administrators/new.html",
        status=status,
        error=error,
        roles=roles_of(tenant_of(request.scope)),
        name=name,
        role=role,
    )


@router.post("/administrators/new")
def create_administrator(
    request: Request,
    ctx: ConsoleContext,
    name: Name = "",
    role: RoleField = "",
    password: Password = "",
) -> Response:
    try:
        admin, made = services(request).administrators.create(
            ctx, name, _role(request, role), password or None
        )
    except InputError as exc:
        return _new_form(request, name=name, role=role, status=400, error=exc.message)
    if password:
        return redirect(request, _path(admin), notice=f"Administrator {admin.name} created.")
    return _password_page(request, admin, made, "created")


def _password_page(request: Request, admin: Administrator, password: str, what: str) -> Response:
    """The page that shows a generated password, this once."""
    return render(
        request, "administrators/password.html", admin=admin, password=password, what=what
    )


@router.get("/administrators/{name:path}")
def show_administrator(request: Request, ctx: ConsoleContext, name: str) -> Response:
    return _show(request, ctx, name)


def _show(
    request: Request, ctx: Context, name: str, status: int = 200, error: str = ""
) -> Response:
    admin = services(request).administrators.show(ctx, name)
    return render(
        request,
        "administrators/show.html",
        status=status,
        error=error,
        admin=admin,
        roles=roles_of(tenant_of(request.scope)),
        me=ctx.actor.name,
    )


@router.post("/administrators/{name:path}/role")
def set_role(request: Request, ctx: ConsoleContext, name: str, role: RoleField = "") -> Response:
    try:
        admin = services(request).administrators.set_role(ctx, name, _role(request, role))
    except InputError as exc:
        return _show(request, ctx, name, 400, exc.message)
    return redirect(request, _path(admin), notice=f"{admin.name} is now {admin.role.value}.")


@router.post("/administrators/{name:path}/password")
def reset_password(
    request: Request, ctx: ConsoleContext, name: str, password: Password = ""
) -> Response:
    admins = services(request).administrators
    try:
        made = admins.reset_password(ctx, name, password or None)
    except InputError as exc:
        return _show(request, ctx, name, 400, exc.message)
    admin = admins.show(ctx, name)
    if password:
        return redirect(request, _path(admin), notice=f"The password of {admin.name} is set.")
    return _password_page(request, admin, made, "reset")


@router.post("/administrators/{name:path}/second-factor/reset")
def reset_second_factor(request: Request, ctx: ConsoleContext, name: str) -> Response:
    services(request).administrators.reset_second_factor(ctx, name)
    return redirect(request, _path(name), notice=f"The second factor of {name} is removed.")


@router.post("/administrators/{name:path}/sessions/end")
def end_sessions(request: Request, ctx: ConsoleContext, name: str) -> Response:
    ended = services(request).administrators.end_sessions(ctx, name)
    return redirect(request, _path(name), notice=f"{ended} session(s) of {name} ended.")


@router.post("/administrators/{name:path}/delete")
def delete_administrator(request: Request, ctx: ConsoleContext, name: str) -> Response:
    try:
        services(request).administrators.delete(ctx, name)
    except InputError as exc:
        return _show(request, ctx, name, 400, exc.message)
    return redirect(request, "/administrators", notice=f"Administrator {name} deleted.")
