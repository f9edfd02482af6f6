"""Notifications in the admin API (``/api/v1/notifications``): subscriptions (``admin`` to
change, ``view`` to read), the deliveries with their attempts, a test message."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Query
from fastapi.openapi.models import Example
from starlette.responses import Response

from provisor.notifications import present
from provisor.notifications.service import NotificationService
from provisor.web import openapi
from provisor.web.auth import ContextDep, GuardedRoute, ServicesDep, guard

router = APIRouter(
    prefix="/api/v1/notifications",
    tags=[openapi.ADMIN_NOTIFICATIONS],
    route_class=GuardedRoute,
    responses=openapi.errors,
)

EXAMPLES: dict[str, Example] = {
    "job mails": {
        "summary": "SAP's job notifications of a source system, by e-mail",
        "value": {
            "topic": "job",
            "system": "HR",
            "channel": "email",
            "name": "Ops Team",
            "address": "ops@example.org",
        },
    },
    "certificates by webhook": {
        "summary": "Every system's certificate notices, to a webhook (secret shown once)",
        "value": {
            "topic": "certificate",
            "channel": "webhook",
            "name": "Alerting",
            "address": "https://alerts.example.org/provisor",
        },
    },
    "failed sign-ins": {
        "summary": "Bursts of failed sign-ins in the tenant",
        "value": {"topic": "login", "channel": "email", "address": "security@example.org"},
    },
}


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


@router.get(
    "/subscriptions",
    summary="The tenant's subscriptions (of a topic, of a system)",
    dependencies=[guard(NotificationService.subscriptions)],
)
def list_subscriptions(
    services: ServicesDep,
    ctx: ContextDep,
    topic: Annotated[str | None, Query(description="job, certificate or login")] = None,
    system: Annotated[str | None, Query(description="A system's id or name")] = None,
) -> Response:
    found = services.notifications.subscriptions(ctx, topic=topic, system=system)
    return _json(present.subscriptions(found))


@router.post(
    "/subscriptions",
    status_code=201,
    summary="Subscribe a recipient (e-mail) or a webhook; a webhook's secret is shown once",
    dependencies=[guard(NotificationService.subscribe)],
)
def subscribe(
    body: Annotated[dict[str, Any], Body(openapi_examples=EXAMPLES)],
    services: ServicesDep,
    ctx: ContextDep,
) -> Response:
    created, secret = services.notifications.subscribe(ctx, body)
    return _json(present.subscription(created, secret), 201)


@router.get(
    "/subscriptions/{subscription_id}",
    summary="A subscription",
    dependencies=[guard(NotificationService.subscription)],
)
def get_subscription(subscription_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    return _json(present.subscription(services.notifications.subscription(ctx, subscription_id)))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="Unsubscribe (its deliveries go with it)",
    dependencies=[guard(NotificationService.unsubscribe)],
)
def unsubscribe(subscription_id: str, services: ServicesDep, ctx: ContextDep) -> Response:
    services.notifications.unsubscribe(ctx, subscription_id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{subscription_id}/test",
    summary="Send a test message to the subscriber now (once); the delivery",
    dependencies=[guard(NotificationService.test)],
)
async def test_subscription(
    subscription_id: str, services: ServicesDep, ctx: ContextDep
) -> Response:
    sent = await services.notifications.test(ctx, subscription_id)
    return _json(present.delivery(sent))


@router.get(
    "/deliveries",
    summary="Messages sent and to send, newest first, with their attempts",
    dependencies=[guard(NotificationService.deliveries)],
)
def list_deliveries(
    services: ServicesDep,
    ctx: ContextDep,
    status: Annotated[str | None, Query(description="pending, delivered or failed")] = None,
    subscription: Annotated[str | None, Query(description="A subscription's id")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Response:
    found, total = services.notifications.deliveries(
        ctx, status=status, subscription=subscription, offset=offset, limit=limit
    )
    return _json(present.deliveries(found, total, offset=offset, limit=limit))
