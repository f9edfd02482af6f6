"""My account: the signed-in person's own password, second factor (TOTP, with its QR code
drawn on the server) and sessions; for every role."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from provisor.admins.model import MAX_PASSWORD_LENGTH
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
    session_of,
)
from provisor.context import Context
from provisor.errors import InputError

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
    try:
        if new != repeated:
            raise InputError("The new password and its repetition differ.")
        services(request).administrators.change_own_password(ctx, current, new)
    except InputError as exc:
        return _page(request, ctx, 400, exc.message)
    return redirect(request, "/account", notice="Your password is changed.")


@router.post("/account/second-factor")
def begin_second_factor(request: Request, ctx: ConsoleContext) -> Response:
    services(request).administrators.begin_second_factor(ctx)
    return redirect(request, "/account", notice="Scan the code, then confirm with a code.")


@router.post("/account/second-factor/confirm")
def confirm_second_factor(request: Request, ctx: ConsoleContext, code: Code = "") -> Response:
    try:
        services(request).administrators.confirm_second_factor(ctx, code)
    except InputError as exc:
        return _page(request, ctx, 400, exc.message)
    return redirect(request, "/account", notice="The second factor is on.")


@router.post("/account/second-factor/disable")
def disable_second_factor(request: Request, ctx: ConsoleContext, code: Code = "") -> Response:
    try:
        services(request).administrators.disable_second_factor(ctx, code)
    except InputError as exc:
        return _page(request, ctx, 400, exc.message)
    return redirect(request, "/account", notice="The second factor is off.")
