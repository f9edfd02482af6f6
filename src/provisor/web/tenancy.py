"""Which tenant a request addresses: a host name ``<tenant>.<PROVISOR_TENANT_DOMAIN>`` (as SAP's
tenant hosts) or a path prefix ``/t/<tenant>/...`` (without wildcard DNS); else the default
tenant, whose URLs are those of a single-tenant installation. ``/operator/...`` and
``/metrics`` at the installation's own address are the installation scope, where the
operators manage tenants and its metrics are read.

The routes below the prefix are the same for every tenant (``/scim``, ``/ipsproxy/...``,
``/ips/service/publicapi/...``, ``/api/v1``): the prefix becomes the ASGI ``root_path``, so
routing, ``request.base_url`` and every URL provisor writes into a response carry it. An
unknown or disabled tenant is a 404 before anything else is read.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from provisor.context import DEFAULT_TENANT, INSTALLATION
from provisor.tenants.service import TenantService
from provisor.web.access import note_tenant
from provisor.web.errors import error_response
from provisor.web.paths import route_path

TENANT_KEY = "provisor.tenant"
PREFIX_KEY = "provisor.tenant_prefix"  # "/t/<tenant>" when the path named the tenant
HOST_KEY = "provisor.tenant_host"  # True when the host name named the tenant
PATH_PREFIX = "/t/"
OPERATOR_PATHS = ("/operator/", "/operator")
# The installation's own paths besides /operator/...: its metrics (provisor.web.metrics).
INSTALLATION_PATHS = frozenset({"/operator", "/metrics"})


def tenant_of(scope: Scope) -> str:
    """The tenant the request addresses (set by :class:`TenantMiddleware`)."""
    return scope.get(TENANT_KEY, DEFAULT_TENANT)  # type: ignore[no-any-return]


def tenant_prefix(scope: Scope) -> str:
    """``/t/<tenant>`` when the request's path named its tenant, else ``""``."""
    return scope.get(PREFIX_KEY, "")  # type: ignore[no-any-return]


def public_root(scope: Scope, configured: str | None, request_root: str) -> str:
    """The tenant's root URL for links in responses, without a trailing slash: the
    configured base URL (``PROVISOR_BASE_URL``) with the tenant's path prefix, or the
    request's own root (``request_root``: ``str(request.base_url)``) when no base URL is
    configured or the host name named the tenant."""
    if configured and not scope.get(HOST_KEY):
        return configured.rstrip("/") + tenant_prefix(scope)
    return request_root.rstrip("/")


def _host(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == b"host":
            host: str = value.decode("latin-1").strip().lower()
            if host.startswith("["):  # an IPv6 literal is no tenant host
                return ""
            return host.rsplit(":", 1)[0].rstrip(".")
    return ""


class TenantMiddleware:
    """Finds the tenant a request addresses and refuses an unknown or disabled one."""

    def __init__(self, app: ASGIApp, tenants: TenantService, domain: str = "") -> None:
        self.app = app
        self.tenants = tenants
        self.domain = domain.strip().lower().strip(".")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)  # below a root path the server itself may have
        tenant = self._by_host(scope)
        if tenant is not None:
            scope[HOST_KEY] = True
        elif path.startswith(PATH_PREFIX):
            tenant, _, _ = path[len(PATH_PREFIX) :].partition("/")
            prefix = PATH_PREFIX + tenant
            scope = dict(scope)
            scope["root_path"] = scope.get("root_path", "") + prefix
            scope[PREFIX_KEY] = prefix
        elif path.startswith(OPERATOR_PATHS[0]) or path in INSTALLATION_PATHS:
            scope[TENANT_KEY] = INSTALLATION  # only here: no host or prefix names it
            note_tenant(scope, INSTALLATION)
            await self.app(scope, receive, send)
            return
        else:
            tenant = DEFAULT_TENANT
        if not await self._enabled(tenant):  # the installation scope is no tenant: 404
            response = error_response(
                route_path(scope), 404, "No tenant at this address: check the URL."
            )
            await response(scope, receive, send)
            return
        scope[TENANT_KEY] = tenant
        note_tenant(scope, tenant)  # in the state, shared with the scope of outer middleware
        await self.app(scope, receive, send)

    def _by_host(self, scope: Scope) -> str | None:
        if not self.domain:
            return None
        host = _host(scope)
        suffix = "." + self.domain
        if not host.endswith(suffix):
            return None
        label = host[: -len(suffix)]
        return label if label and "." not in label else None

    async def _enabled(self, name: str) -> bool:
        cached = self.tenants.cached(name)
        found = (
            cached[0] if cached is not None else await run_in_threadpool(self.tenants.resolve, name)
        )
        return found is not None and found.enabled
