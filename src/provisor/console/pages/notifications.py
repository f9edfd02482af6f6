"""The notifications page: subscriptions (job, certificate and failed sign-in messages by
e-mail or webhook), subscribing, a test message, and the deliveries with their attempts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.console.pages.jobs import paging
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import InputError, NotFoundError

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 50
SYSTEMS = 200
FIELDS = ("topic", "system", "channel", "name", "address")


def _page(
    request: Request,
    ctx: Context,
    *,
    values: dict[str, str] | None = None,
    error: str = "",
    secret: str | None = None,
    status: int = 200,
) -> Response:
    found = services(request)
    state = request.query_params.get("status") or None
    offset, limit = paging(request, PAGE)
    deliveries, total = found.notifications.deliveries(
        ctx, status=state, offset=offset, limit=limit
    )
    return render(
        request,
        "notifications/index.html",
        status=status,
        subscriptions=found.notifications.subscriptions(ctx),
        deliveries=deliveries,
        total=total,
        offset=offset,
        limit=limit,
        state=state,
        systems=found.systems.listing(ctx, limit=SYSTEMS)[0],
        values=values or {},
        error=error,
        secret=secret,
    )


@router.get("/notifications")
def notifications(request: Request, ctx: ConsoleContext) -> Response:
    return _page(request, ctx)


@router.post("/notifications")
async def subscribe(request: Request, ctx: ConsoleContext) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "").strip() for k in FIELDS}
    return await run_in_threadpool(_subscribe, request, ctx, values)


def _subscribe(request: Request, ctx: Context, values: dict[str, str]) -> Response:
    body: dict[str, Any] = {k: v for k, v in values.items() if v}
    try:
        made, secret = services(request).notifications.subscribe(ctx, body)
    except (InputError, NotFoundError) as exc:
        return _page(request, ctx, values=values, error=exc.message, status=400)
    if secret is not None:  # shown once, on this page, never in a URL or a cookie
        return _page(request, ctx, secret=secret)
    return redirect(request, "/notifications", notice=f"{made.name} subscribed to {made.topic}.")


@router.post("/notifications/{subscription_id}/delete")
def unsubscribe(request: Request, subscription_id: str, ctx: ConsoleContext) -> Response:
    services(request).notifications.unsubscribe(ctx, subscription_id)
    return redirect(request, "/notifications", notice="Subscription removed.")


@router.post("/notifications/{subscription_id}/test")
async def test(request: Request, subscription_id: str, ctx: ConsoleContext) -> Response:
    sent = await services(request).notifications.test(ctx, subscription_id)
    said = f"Test message to {sent.recipient}: {sent.status}"
    if sent.last_error:
        said += f" ({sent.last_error})"
    return redirect(request, "/notifications", notice=said + ".")
