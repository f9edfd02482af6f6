"""The ASGI application: ``create_app(settings)`` wires services, routes and error handling."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from provisor import __version__, logs, tracing
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.web import (
    admin_administrators,
    admin_audit,
    admin_certificates,
    admin_clients,
    admin_configuration,
    admin_jobs,
    admin_notifications,
    admin_schedules,
    admin_sso,
    admin_systems,
    apidocs,
    errors,
    health,
    me,
    oauth,
    openapi,
    operator,
    proxy,
    scim_api,
    scim_discovery,
)
from provisor.web import metrics as metrics_routes
from provisor.web import realtime as realtime_routes
from provisor.web.access import AccessLogMiddleware
from provisor.web.limits import BodyLimitMiddleware, URLTextMiddleware
from provisor.web.proxies import Proxies
from provisor.web.request_ids import RequestIdMiddleware
from provisor.web.tenancy import TenantMiddleware
from provisor.web.traces import TracingMiddleware

DESCRIPTION = """\
Identity provisioning compatible with SAP Cloud Identity Services - Identity Provisioning.

Authenticate with HTTP Basic (a technical user's client id and secret) or with a bearer
token from `POST /oauth2/token` (client credentials grant), or with a client certificate
attached to the technical user (mTLS with `provisor serve --tls-cert`, or from a trusted
TLS-terminating reverse proxy). `GET /api/v1/me` says who the credentials are.

Every path below is a tenant's: the default tenant's at the server's own address, another
tenant's below `/t/<tenant>/` (or at `<tenant>.<PROVISOR_TENANT_DOMAIN>`), with that tenant's
credentials. `/operator/v1` is the installation's operators' (permission `operator`), at the
server's own address only.
"""


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """Build the application on ``services`` (opened now from ``settings`` when not given:
    the composition root builds every service); they are closed on shutdown."""
    settings = settings or Settings()
    logs.configure(settings.log_level)
    if settings.otel_traces_url:  # else as it is: off, or on as a test turned it on
        tracing.configure(settings.otel_traces_url)
    services = services or Services.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gc.freeze()  # what start-up built lives on: keep it out of every garbage collection
        yield
        await services.aclose()

    app = FastAPI(
        title="provisor",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by apidocs from the package, not from a CDN
        redoc_url=None,
        openapi_tags=openapi.TAGS,
    )
    app.state.services = services  # the routes' only way to services (web.auth.services)
    app.add_middleware(URLTextMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if tracing.enabled():  # inside the tenant's: it sees the route the request reached
        app.add_middleware(TracingMiddleware)
    app.add_middleware(  # which tenant: before any limit answers in a tenant's format
        TenantMiddleware, tenants=services.tenants, domain=settings.tenant_domain
    )
    proxies = Proxies(settings.trusted_proxies)
    if settings.access_log:  # after every other middleware: it sees their answers too
        app.add_middleware(AccessLogMiddleware, proxies=proxies)
    # outermost: even a refused request has an id
    app.add_middleware(RequestIdMiddleware, proxies=proxies)
    if settings.metrics:  # outermost: every request counted, as answered
        app.add_middleware(metrics_routes.MetricsMiddleware)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(metrics_routes.router)
    apidocs.install(app)
    openapi.install(app)
    app.include_router(oauth.router)
    app.include_router(me.router)
    app.include_router(scim_discovery.router, prefix="/scim")
    app.include_router(scim_api.router, prefix="/scim")
    app.include_router(admin_systems.router)
    app.include_router(admin_jobs.router)
    app.include_router(admin_jobs.public)
    app.include_router(admin_schedules.router)
    app.include_router(admin_certificates.router)
    app.include_router(admin_clients.router)
    app.include_router(admin_administrators.router)
    app.include_router(admin_configuration.router)
    app.include_router(admin_sso.router)
    app.include_router(admin_notifications.router)
    app.include_router(proxy.router)
    app.include_router(realtime_routes.public)
    app.include_router(realtime_routes.admin)
    app.include_router(operator.router)
    app.include_router(admin_audit.router)
    app.include_router(admin_audit.operator)
    return app
