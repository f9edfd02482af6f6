"""Signing in and out: name and password, then the second factor when the administrator has
one; signing out here or everywhere."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from provisor.admins.model import Administrator, Session
from provisor.admins.service import PENDING
from provisor.auth.attempts import retry_after
from provisor.console.rendering import (
    COOKIE,
    LOGIN_COOKIE,
    ROOT,
    ConsoleRoute,
    PublicRoute,
    base,
    context,
    is_https,
    redirect,
    render,
    same_origin,
    services,
    set_session_cookie,
    url,
)
from provisor.errors import AuthenticationError
from provisor.web.auth import client_address
from provisor.web.tenancy import tenant_of

router = APIRouter(prefix=ROOT, route_class=PublicRoute, include_in_schema=False)
signed_in = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)


def _next(value: str) -> str:
    """Where to go after signing in: a console path, never another site."""
    if value.startswith(ROOT) and not value.startswith("//") and "\\" not in value:
        return value[len(ROOT) :]
    return ""


def _form(request: Request, status: int = 200, error: str = "", **values: Any) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    request.state.login_csrf = token
    sso = services(request).administrators.provider(tenant_of(request.scope))
    response = render(
        request,
        "login.html",
        status=status,
        error=error,
        sso_label=sso.label if sso else "",
        next=request.query_params.get("next", ""),
        **values,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        path=base(request),
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


def login_form(request: Request, status: int, error: str) -> Response:
    """The sign-in page saying why another way of signing in (single sign-on) failed."""
    return _form(request, status, error)


@router.get("/login")
def login_page(request: Request) -> Response:
    return _form(request)


def _login_checked(request: Request, csrf: str) -> str | None:
    """Why this sign-in form is refused before its credentials are checked, or None."""
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not same_origin(request) or not expected or not secrets.compare_digest(csrf, expected):
        return "The sign-in form expired: try again."
    return None


@router.post("/login")
def login(
    request: Request,
    name: Annotated[str, Form(max_length=255)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    found = services(request)
    problem = _login_checked(request, csrf)
    if problem:
        return _form(request, 400, problem, name=name)
    tenant = tenant_of(request.scope)
    address = client_address(request)
    who = f"console:{tenant}:{name.strip().casefold()}"
    wait = found.attempts.blocked(address, who)
    if wait:
        return _form(request, 429, _too_many(wait), name=name)
    try:
        admin = found.administrators.authenticate(tenant, name, password)
    except AuthenticationError as exc:
        wait = found.attempts.failed(address, who, tenant=tenant)
        return _form(
            request, 429 if wait else 401, _too_many(wait) if wait else exc.message, name=name
        )
    found.attempts.succeeded(who)
    if admin.totp_enabled:
        token, _session = found.administrators.open_session(tenant, admin, PENDING)
        response = redirect(request, "/login/code", next=next)
        set_session_cookie(request, response, token)
        return response
    return start_session(request, admin, "password", next)


def start_session(
    request: Request, admin: Administrator, method: str, next: str, notice: str = ""
) -> Response:
    """Sign ``admin`` in: a new session (and cookie), then the page they were going to.
    Used by every way of signing in."""
    tenant = tenant_of(request.scope)
    token, _session = services(request).administrators.open_session(tenant, admin, method)
    response = redirect(request, _next(next), notice=notice)
    set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_COOKIE, path=base(request))
    return response


def _too_many(seconds: float) -> str:
    return f"Too many failed sign-ins: wait {retry_after(seconds)} s and try again."


def _pending(request: Request) -> Session | None:
    token = request.cookies.get(COOKIE, "")
    session = services(request).administrators.session(tenant_of(request.scope), token)
    return session if session is not None and session.method == PENDING else None


@router.get("/login/code")
def code_page(request: Request) -> Response:
    if _pending(request) is None:
        return redirect(request, "/login")
    return _form(request, step="code")


@router.post("/login/code")
def code(
    request: Request,
    code: Annotated[str, Form(max_length=16)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    found = services(request)
    session = _pending(request)
    if session is None:
        return redirect(request, "/login", notice="Sign in again.")
    problem = _login_checked(request, csrf)
    if problem:
        return _form(request, 400, problem, step="code")
    admin = session.administrator
    address = client_address(request)
    who = f"console:{admin.id}"
    wait = found.attempts.blocked(address, who)
    if wait:
        return _form(request, 429, _too_many(wait), step="code")
    if not found.administrators.check_code(session.tenant, admin.id, code):
        found.attempts.failed(address, who, tenant=session.tenant)
        return _form(request, 401, "That code is not right: try the current one.", step="code")
    found.attempts.succeeded(who)
    found.administrators.close_session(session.tenant, session.id, hashed=True)  # the pending one
    return start_session(request, admin, "totp", next)


@signed_in.post("/logout")
def logout(request: Request) -> Response:
    services(request).administrators.close_session(
        tenant_of(request.scope), request.cookies.get(COOKIE, "")
    )
    return _signed_out(request, "Signed out.")


@signed_in.post("/logout/everywhere")
def logout_everywhere(request: Request) -> Response:
    ended = services(request).administrators.end_own_sessions(context(request))
    return _signed_out(request, f"Signed out everywhere ({ended} sessions ended).")


def _signed_out(request: Request, notice: str) -> Response:
    response = redirect(request, "/login", notice=notice)
    response.delete_cookie(COOKIE, path=base(request))
    return response


__all__ = ["login_form", "router", "signed_in", "start_session", "url"]
