"""The metrics on the web: every request counted by route group, method and status and timed
(:class:`MetricsMiddleware`, outermost), and ``GET /metrics``, the Prometheus text of every
process of the server plus what the database says at scrape time (queued jobs, job runners'
heartbeats, certificates' days left: :class:`DatabaseCollector`).

``/metrics`` is the installation's, at its own address: a technical user of the installation
scope holding ``metrics`` (or an operator) may read it; a tenant's credentials are unknown
there (401). At a tenant's address (``/t/<tenant>/metrics``) the installation's are unknown
(401) and no tenant's technical user holds ``metrics`` (403).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import structlog
from fastapi import APIRouter, Depends, Request
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor.context import ANY_TENANT, INSTALLATION, Context, Permission
from provisor.errors import NotFoundError
from provisor.jobs.service import WORKER
from provisor.metrics import instruments
from provisor.metrics.processes import CONTENT_TYPE, exposition
from provisor.runtime import Services
from provisor.timestamps import parse_datetime
from provisor.web import openapi
from provisor.web.auth import Guard, GuardedRoute, services
from provisor.web.tenancy import tenant_of

log = structlog.get_logger("provisor.metrics")

PATH = "/metrics"
_TENANT_PREFIX = "/t/"
# First path segment -> route group (the label of every request metric).
_GROUPS = {
    "scim": "scim",
    "api": "api",
    "console": "console",
    "oauth2": "oauth",
    "health": "health",
    "metrics": "metrics",
    "docs": "docs",
    "redoc": "docs",
    "openapi.json": "docs",
    "static": "docs",
}


def route_group(path: str) -> str:
    """The route group of a request's path (a tenant's ``/t/<tenant>`` prefix left out): a
    few fixed names, never a path, id or name."""
    if path.startswith(_TENANT_PREFIX):
        path = path[len(_TENANT_PREFIX) :]
        path = path[path.find("/") :] if "/" in path else "/"
    first = path[1:].split("/", 2)
    head = first[0]
    if head == "ipsproxy":
        return "realtime" if "/systems/" in path else "ipsproxy"
    if head == "operator":
        return "console" if len(first) > 1 and first[1] == "console" else "operator"
    return _GROUPS.get(head, "other")


class MetricsMiddleware:
    """Counts and times every HTTP request (its status as answered; 500 when the application
    fails before answering)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            instruments.request(
                route_group(scope["path"]),
                scope["method"],
                status,
                time.perf_counter() - started,
            )


class DatabaseCollector:
    """What the database says at scrape time, over every tenant: queued jobs, each job
    runner's seconds since its last heartbeat, each system's active outbound certificate's
    days left. Three indexed queries; a database that does not answer leaves these out of the
    scrape (logged) rather than failing it."""

    def __init__(self, found: Services) -> None:
        self.services = found

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        ctx = Context.system(WORKER, tenant=ANY_TENANT)
        queued = GaugeMetricFamily("provisor_jobs_queued", "Jobs waiting for a job runner")
        beats = GaugeMetricFamily(
            "provisor_job_runner_heartbeat_age_seconds",
            "Seconds since each job runner's last heartbeat (a stopped runner is gone)",
            labels=["runner"],
        )
        days = GaugeMetricFamily(
            "provisor_certificate_days_left",
            "Days until each system's active outbound certificate expires (0 or less: expired)",
            labels=["tenant", "system"],
        )
        try:
            depth, runners = self.services.jobs.gauges(ctx)
            certificates = self.services.certificates.days_left(ctx)
        except Exception:
            log.exception("the metrics' database collector failed")
            return
        moment = datetime.now(UTC)
        queued.add_metric([], depth)
        for runner in runners:
            age = (moment - parse_datetime(runner.heartbeat)).total_seconds()
            beats.add_metric([runner.name], max(0.0, age))
        for tenant, system, left in certificates:
            days.add_metric([tenant, system], left)
        yield queued
        yield beats
        yield days


router = APIRouter(tags=[openapi.HEALTH], route_class=GuardedRoute)


@router.get(
    PATH,
    summary="Metrics in the Prometheus text format (the installation's: permission metrics)",
    responses={
        200: {"description": "The metrics", "content": {CONTENT_TYPE: {}}},
        **openapi.errors,
    },
    response_class=Response,
    dependencies=[Depends(Guard(Permission.METRICS, Permission.OPERATOR))],
)
async def metrics(request: Request) -> Response:
    if tenant_of(request.scope) != INSTALLATION:  # no tenant's client holds metrics: 403 first
        raise NotFoundError("The metrics are the installation's: GET /metrics at its address.")
    if not instruments.enabled():
        raise NotFoundError("Metrics are off on this server (PROVISOR_METRICS=false).")
    body = await run_in_threadpool(exposition, [DatabaseCollector(services(request))])
    return Response(body, 200, media_type=CONTENT_TYPE)
