"""Single sign-on: "Sign in with <provider>" and its callback, and the tenant's settings of its
OpenID Connect provider (with "Test discovery").

The sign-in's state (state, nonce, PKCE verifier) waits in a sealed cookie for the callback:
HttpOnly, SameSite=Lax (the provider's redirect back is a top-level GET from another site,
which a Strict cookie would not accompany), for the console's path, Secure under HTTPS, and
deleted once the callback has used it. The callback opens a session as the password sign-in
does (:func:`.login.start_session`), then goes on to the console from a page of its own: a
redirect would still be part of the provider's cross-site navigation, which the SameSite=Strict
session cookie does not accompany (the browser would arrive signed out).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from provisor.admins.model import SsoSettings
from provisor.admins.oidc import DEFAULT_SCOPES, STATE_MAX_AGE, Discovery
from provisor.console.pages import login
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    PublicRoute,
    base,
    is_https,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import AuthenticationError, InputError
from provisor.web.auth import client_address
from provisor.web.tenancy import tenant_of

router = APIRouter(prefix=ROOT, route_class=PublicRoute, include_in_schema=False)
settings_router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

STATE_COOKIE = "provisor_sso"
NEXT_COOKIE = "provisor_sso_next"
SETTINGS = "/sso"
MAX_PARAMETER = 4096  # characters of one callback parameter (codes and states are far shorter)
MAX_VALUES = 100  # claim values of each role


def callback_url(request: Request) -> str:
    """The redirect URI to register at the provider: this tenant's callback (https also
    behind a trusted TLS-terminating proxy). With ``PROVISOR_BASE_URL`` set it is built on
    that, not on the request's Host header."""
    configured = services(request).settings.base_url
    if configured:
        origin = configured.rstrip("/")  # its path too: a proxy may serve provisor below one
    else:
        scheme = "https" if is_https(request) else request.url.scheme
        origin = f"{scheme}://{request.url.netloc}"
    return f"{origin}{base(request)}/login/sso/callback"


def _state_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        max_age=STATE_MAX_AGE,
        path=base(request),
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


def _forget(request: Request, response: Response) -> Response:
    for name in (STATE_COOKIE, NEXT_COOKIE):
        if name in request.cookies:
            response.delete_cookie(name, path=base(request))
    return response


@router.get("/login/sso")
async def sso_start(request: Request, next: str = "") -> Response:
    """Send the browser to the tenant's provider."""
    try:
        started = await services(request).sso.start(tenant_of(request.scope), callback_url(request))
    except AuthenticationError as exc:
        return await run_in_threadpool(login.login_form, request, 401, exc.message)
    response = RedirectResponse(started.url, status_code=303)
    _state_cookie(request, response, STATE_COOKIE, started.sealed)
    if next:
        _state_cookie(request, response, NEXT_COOKIE, quote(next[:2000]))
    return response


@router.get("/login/sso/callback")
async def sso_callback(request: Request) -> Response:
    """The provider's answer: an administrator signed in, or the sign-in page saying why not."""
    params = {key: value[:MAX_PARAMETER] for key, value in request.query_params.items()}
    try:
        admin = await services(request).sso.finish(
            tenant_of(request.scope),
            callback_url(request),
            request.cookies.get(STATE_COOKIE, ""),
            params,
        )
    except AuthenticationError as exc:
        if not services(request).attempts.failed(client_address(request)):  # bounded
            await run_in_threadpool(login.signin_failed, request, "", "sso", exc.message)
        refused = await run_in_threadpool(login.login_form, request, 401, exc.message)
        return _forget(request, refused)
    next = unquote(request.cookies.get(NEXT_COOKIE, ""))
    signed_in = await run_in_threadpool(login.start_session, request, admin, "sso", next)
    onward = await run_in_threadpool(
        render, request, "sso_continue.html", target=signed_in.headers["location"]
    )
    for cookie in signed_in.headers.getlist("set-cookie"):
        onward.headers.append("set-cookie", cookie)
    return _forget(request, onward)


# -- the settings -----------------------------------------------------------------------------


def _values(text: str) -> tuple[str, ...]:
    """Claim values, one a line (a value may hold commas: LDAP names of groups do)."""
    values = tuple(dict.fromkeys(v.strip() for v in text.splitlines() if v.strip()))
    if len(values) > MAX_VALUES:
        raise InputError(f"At most {MAX_VALUES} claim values per role.")
    return values


def _page(
    request: Request,
    ctx: Context,
    status: int = 200,
    *,
    form: SsoSettings | None = None,
    error: str = "",
    discovery: Discovery | None = None,
) -> Response:
    stored = services(request).administrators.sso_settings(ctx)
    return render(
        request,
        "sso.html",
        status=status,
        stored=stored,
        form=form or stored,
        error=error,
        discovery=discovery,
        callback=callback_url(request),
        default_scopes=DEFAULT_SCOPES,
    )


Text = Annotated[str, Form(max_length=2048)]
Values = Annotated[str, Form(max_length=20_000)]


def _settings(
    label: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    role_claim: str,
    administrator_values: str,
    viewer_values: str,
    scopes: str,
) -> SsoSettings:
    return SsoSettings(
        label=label.strip(),
        issuer=issuer.strip(),
        client_id=client_id.strip(),
        client_secret=client_secret,
        role_claim=role_claim.strip(),
        administrator_values=_values(administrator_values),
        viewer_values=_values(viewer_values),
        scopes=re.sub(r"\s+", " ", scopes).strip() or DEFAULT_SCOPES,
    )


@settings_router.get(SETTINGS)
def sso_settings_page(request: Request, ctx: ConsoleContext) -> Response:
    return _page(request, ctx)


@settings_router.post(SETTINGS)
def sso_save(
    request: Request,
    ctx: ConsoleContext,
    label: Text = "",
    issuer: Text = "",
    client_id: Text = "",
    role_claim: Text = "",
    client_secret: Text = "",
    administrator_values: Values = "",
    viewer_values: Values = "",
    scopes: Text = "",
) -> Response:
    """Save the provider; an empty client secret keeps the stored one."""
    try:
        form = _settings(
            label,
            issuer,
            client_id,
            client_secret,
            role_claim,
            administrator_values,
            viewer_values,
            scopes,
        )
    except InputError as exc:
        return _page(request, ctx, 400, error=exc.message)
    try:
        services(request).administrators.set_sso(ctx, form)
    except InputError as exc:
        return _page(request, ctx, 400, form=replace(form, client_secret=""), error=exc.message)
    return redirect(request, SETTINGS, notice="Single sign-on saved.")


@settings_router.post(SETTINGS + "/test")
async def sso_test(
    request: Request,
    ctx: ConsoleContext,
    issuer: Text = "",
    label: Text = "",
    client_id: Text = "",
    role_claim: Text = "",
    administrator_values: Values = "",
    viewer_values: Values = "",
    scopes: Text = "",
) -> Response:
    """Read the provider's discovery document and show what provisor will use."""
    form = _settings(
        label, issuer, client_id, "", role_claim, administrator_values, viewer_values, scopes
    )
    try:
        found = await services(request).sso.discover(ctx, form.issuer)
    except InputError as exc:
        return await run_in_threadpool(_page, request, ctx, 400, form=form, error=exc.message)
    return await run_in_threadpool(_page, request, ctx, form=form, discovery=found)


@settings_router.post(SETTINGS + "/delete")
def sso_delete(request: Request, ctx: ConsoleContext) -> Response:
    services(request).administrators.clear_sso(ctx)
    notice = "Single sign-on removed: administrators sign in with their passwords."
    return redirect(request, SETTINGS, notice=notice)
