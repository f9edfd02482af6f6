"""My account: the signed-in person's own password, second factor (TOTP, with its QR code
drawn on the server) and sessions; for every role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from provisor.admins.model import MAX_PASSWORD_LENGTH
from provisor.auth.attempts import retry_after
from provisor.console.pages.login import start_session
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    context,
    redirect,
    render,
    services,
    session_of,
)
from provisor.context import Context
from provisor.errors import InputError
from provisor.web.auth import client_address

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

Password = Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH + 10)]
Code = Annotated[str, Form(max_length=16)]


def qr_code(text: str) -> str:
    """``text`` as a QR code: an SVG ``data:`` URI (the page's ``img-src`` allows ``data:``)."""
    code = segno.make(text, error="m")
    uri: str = code.svg_data_uri(scale=5, border=2, dark="#000", light="#fff")
    return uri


def _page(request: Request, ctx: Context, status: int = 200, error: str = "") -> Response:
    pending = services(request).administrators.pending_second_factor(ctx)
    return render(
        request,
        "account.html",
        status=status,
        error=error,
        admin=session_of(request).administrator,
        pending=pending,
        qr=qr_code(pending[1]) if pending else "",
    )


@router.get("/account")
def account(request: Request, ctx: ConsoleContext) -> Response:
    return _page(request, ctx)


@router.post("/account/password")
def change_password(
    request: Request,
    ctx: ConsoleContext,
    current: Password = "",
    new: Password = "",
    repeated: Password = "",
) -> Response:
    found = services(request).administrators
    if new != repeated:
        return _page(request, ctx, 400, "The new password and its repetition differ.")
    refused = _guessing(request, ctx, lambda: found.change_own_password(ctx, current, new))
    if refused is not None:
        return refused
    return _fresh_session(request, "Your password is changed; your other sessions ended.")


@router.post("/account/second-factor")
def begin_second_factor(request: Request, ctx: ConsoleContext) -> Response:
    services(request).administrators.begin_second_factor(ctx)
    return redirect(request, "/account", notice="Scan the code, then confirm with a code.")


@router.post("/account/second-factor/confirm")
def confirm_second_factor(request: Request, ctx: ConsoleContext, code: Code = "") -> Response:
    found = services(request).administrators
    refused = _guessing(request, ctx, lambda: found.confirm_second_factor(ctx, code))
    if refused is not None:
        return refused
    return _fresh_session(request, "The second factor is on; your other sessions ended.")


@router.post("/account/second-factor/disable")
def disable_second_factor(request: Request, ctx: ConsoleContext, code: Code = "") -> Response:
    found = services(request).administrators
    refused = _guessing(request, ctx, lambda: found.disable_second_factor(ctx, code))
    if refused is not None:
        return refused
    return _fresh_session(request, "The second factor is off; your other sessions ended.")


def _guessing(request: Request, ctx: Context, check: Callable[[], None]) -> Response | None:
    """Run ``check`` (which proves the current password or a code) on the sign-in's budgets:
    a stolen session cannot guess the password or the codes faster than a stranger could
    sign in. None when it passed, else the page saying why not."""
    attempts = services(request).attempts
    address = client_address(request)
    who = f"console:{ctx.tenant}:{ctx.actor.name.casefold()}"
    wait = attempts.blocked(address, who)
    if wait:
        return _page(request, ctx, 429, f"Too many wrong answers: wait {retry_after(wait)} s.")
    try:
        check()
    except InputError as exc:
        attempts.failed(address, who, tenant=ctx.tenant)
        return _page(request, ctx, 400, exc.message)
    attempts.succeeded(who)
    return None


def _fresh_session(request: Request, notice: str) -> Response:
    """After a change of the person's password or second factor every session of theirs
    ended (the service ends them): this browser gets a new one."""
    admin = services(request).administrators.me(context(request))
    return start_session(request, admin, session_of(request).method, ROOT + "/account", notice)
