"""Who is calling and may they: every route authenticates the caller (HTTP Basic with a
client id and secret, an OAuth 2.0 bearer token, or a client certificate), then checks its
permission, then (under /ipsproxy/) admits it to the tenant's budget, all before the request
body is read or validated.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from cryptography import x509
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.audit.service import AUTHENTICATION_FAILURE, claimed
from provisor.auth.attempts import retry_after
from provisor.auth.permissions import Principal
from provisor.certs.x509 import from_header, load_certificate
from provisor.context import ActorKind, Context, Permission, permissions_of
from provisor.errors import (
    AuthenticationError,
    ConfigError,
    NotFoundError,
    TooManyRequestsError,
)
from provisor.metrics import instruments as metrics
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.web.access import note_actor
from provisor.web.errors import error_response
from provisor.web.limits import body_problem
from provisor.web.paths import route_path
from provisor.web.proxies import Proxies
from provisor.web.ratelimit import PREFIX, spend
from provisor.web.request_ids import request_id_of
from provisor.web.tenancy import tenant_of


def services(request: Request) -> Services:
    """The application's services (built by the composition root, :mod:`provisor.runtime`)."""
    return request.app.state.services  # type: ignore[no-any-return]


async def _services(request: Request) -> Services:
    # async: FastAPI would run a plain function in the thread pool, a hop per request
    return services(request)


ServicesDep = Annotated[Services, Depends(_services)]


def basic_credentials(header: str) -> tuple[str, str]:
    """(client id, secret) from the value of an ``Authorization: Basic`` header."""
    try:
        decoded = base64.b64decode(header, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationError("Malformed Basic credentials.") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise AuthenticationError("Malformed Basic credentials.")
    return client_id, secret


def client_address(request: Request) -> str:
    """The caller's address: the peer, or, when the peer is a trusted reverse proxy
    (``trusted_proxies``), the last address before the trusted ones in X-Forwarded-For."""
    return proxies_of(services(request).settings).client(request.scope)


def over_https(request: Request) -> bool:
    """Whether the browser reached provisor over HTTPS: the request's own scheme, or, from a
    trusted reverse proxy (``trusted_proxies``), its ``X-Forwarded-Proto``."""
    if request.url.scheme == "https":
        return True
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return forwarded == "https" and _trusted(peer, services(request).settings)


def too_many(seconds: float) -> TooManyRequestsError:
    wait = retry_after(seconds)
    return TooManyRequestsError(
        f"Too many failed or missing authentications from this address or for this client id: "
        f"retry after {wait} s.",
        retry_after=wait,
    )


async def check_secret(request: Request, client_id: str, secret: str) -> Principal:
    """The principal of a client id and secret. A secret already proven costs no Argon2 and
    is served whatever the budgets; any other is checked in the bounded pool, unless the
    caller's address or the client id must wait first (TooManyRequestsError). A failure is
    counted and raises AuthenticationError."""
    found = services(request)
    tenant = tenant_of(request.scope)
    if found.clients.cached(tenant, client_id):  # no database read: no thread needed
        proven = found.clients.quick_secret(tenant, client_id, secret)
    else:
        proven = await run_in_threadpool(found.clients.proven_secret, tenant, client_id, secret)
    if proven is not None:
        return proven
    address = client_address(request)
    wait = found.attempts.blocked(address, client_id)
    if wait:
        raise too_many(wait)
    try:
        principal = await found.secret_checks.run(
            found.clients.authenticate_secret, tenant, client_id, secret
        )
    except AuthenticationError as exc:
        metrics.failed_login("client", "secret")
        wait = found.attempts.failed(address, client_id, tenant=tenant)
        if wait:
            raise too_many(wait) from None
        await audit_failure(request, client_id, "secret", exc.message)
        raise
    found.attempts.succeeded(client_id)
    return principal


async def audit_failure(request: Request, client_id: str, method: str, reason: str) -> None:
    """Record a failed authentication of a technical user in the tenant's audit log: called
    only for failures the budget admitted (so failures cannot flood the log), in the thread
    pool."""
    await run_in_threadpool(
        services(request).audit.signin_event,
        tenant_of(request.scope),
        claimed(ActorKind.CLIENT, client_id or "(unknown)"),
        AUTHENTICATION_FAILURE,
        {"method": method, "reason": reason[:200]},
        address=client_address(request),
        request_id=request_id_of(request.scope),
    )


METHODS = frozenset({"basic", "bearer", "certificate"})  # the failed logins' metric reasons


async def counted(
    request: Request, failure: AuthenticationError, method: str | None = None
) -> Exception:
    """The failure to raise once counted against the caller's address (and in the metrics'
    failed logins): itself, or TooManyRequestsError when the address has spent its budget. A
    failure of presented credentials (``method``: how) that the budget admitted is audited;
    missing ones are not."""
    metrics.failed_login(
        "client", "missing" if method is None else method if method in METHODS else "malformed"
    )
    wait = services(request).attempts.failed(
        client_address(request), tenant=tenant_of(request.scope)
    )
    if wait:
        return too_many(wait)
    if method is not None:
        await audit_failure(request, "", method, failure.message)
    return failure


async def authenticate(request: Request) -> Principal:
    """The principal of the request, or AuthenticationError (HTTP 401)."""
    header = request.headers.get("authorization")
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    try:
        if scheme.lower() != "basic" or not value:
            return await _token(request, scheme, value)
        client_id, secret = basic_credentials(value)
    except AuthenticationError as exc:
        method = (scheme.lower() or None) if header else None
        raise await counted(request, exc, method and method[:16]) from None
    return await check_secret(request, client_id, secret)


async def _token(request: Request, scheme: str, value: str) -> Principal:
    if not scheme:
        raise AuthenticationError("Authentication required: HTTP Basic or a bearer token.")
    if scheme.lower() != "bearer" or not value:
        raise AuthenticationError("Unsupported authentication scheme: use Basic or Bearer.")
    clients = services(request).clients
    claims = clients.verify_token(value)
    tenant = tenant_of(request.scope)
    if clients.cached(tenant, claims.client_id):
        return clients.token_principal(tenant, claims)
    return await run_in_threadpool(clients.token_principal, tenant, claims)


def presented_certificate(request: Request) -> x509.Certificate | None:
    """The client certificate of the request: the one the TLS handshake accepted (ASGI TLS
    extension), else the configured header when the request comes from a trusted proxy."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        return load_certificate(chain[0])
    settings = services(request).settings
    header = request.headers.get(settings.client_cert_header)
    peer = request.client.host if request.client else ""
    if not header or not settings.trusted_proxies or not _trusted(peer, settings):
        return None
    try:
        return from_header(header)
    except ConfigError as exc:
        raise AuthenticationError(
            f"The client certificate from the reverse proxy is unreadable: {exc.message}"
        ) from None


def _trusted(host: str, settings: Settings) -> bool:
    return proxies_of(settings).trusts(host)


@functools.lru_cache(maxsize=8)
def _proxies(networks: tuple[str, ...]) -> Proxies:
    return Proxies(networks)


def proxies_of(settings: Settings) -> Proxies:
    """The trusted reverse proxies of ``settings`` (parsed once)."""
    return _proxies(tuple(settings.trusted_proxies))


async def authenticate_caller(request: Request) -> Principal:
    """The principal of a call: credentials when the request carries an Authorization
    header, else its client certificate."""
    if request.headers.get("authorization"):
        return await authenticate(request)
    try:
        principal = await _certificate(request)
    except AuthenticationError as exc:
        tls = request.scope.get("extensions", {}).get("tls") or {}
        presented = bool(tls.get("client_cert_chain"))
        method = "certificate" if presented or _proxied_certificate(request) else None
        raise await counted(request, exc, method) from None
    return principal


def _proxied_certificate(request: Request) -> bool:
    return bool(request.headers.get(services(request).settings.client_cert_header))


async def _certificate(request: Request) -> Principal:
    cert = presented_certificate(request)
    if cert is None:
        raise AuthenticationError(
            "Authentication required: HTTP Basic, a bearer token or a client certificate."
        )
    return await run_in_threadpool(
        services(request).certificates.authenticate, tenant_of(request.scope), cert
    )


async def _confined(request: Request, ctx: Context) -> None:
    """The services' rule for a caller confined to one system (a certificate attached to a
    system: ``Context.require_system``), applied before the request is read, as the
    permissions are: another system's API, an unknown system or a route of no system is
    refused (403)."""
    wanted = request.path_params.get("system_id")
    system_id = ""
    if wanted is not None:
        try:
            found = await run_in_threadpool(services(request).systems.get, ctx, str(wanted))
            system_id = found.id
        except NotFoundError:
            pass
    ctx.require_system(system_id)


# -- the guard of every route ----------------------------------------------------------------------


class Guard:
    """Who may call a route: a principal holding one of ``any_of`` (``admin`` holds all;
    none named: ``admin`` only), authenticated by a secret, a token or a client
    certificate. Declared as a route dependency; a ``GuardedRoute``
    runs it before FastAPI reads the body, and the dependency then returns its principal."""

    def __init__(self, *any_of: Permission) -> None:
        self.any_of = any_of

    async def admit(self, request: Request) -> Principal:
        principal = await authenticate_caller(request)
        ctx = Context(
            principal.actor(),
            principal.tenant,
            request_id_of(request.scope),
            client_address(request),
        )
        # authenticated: the access line names it
        note_actor(request.scope, ctx.actor, client_id=principal.client_id, method=principal.method)
        if ctx.actor.system is not None:
            await _confined(request, ctx)
        path = route_path(request.scope)
        ctx.require(*self.any_of, action=f"call {request.method} {path}")
        if path.startswith(PREFIX):
            await spend(services(request).inbound.get(ctx))
        request.state.principal = principal
        request.state.context = ctx
        return principal

    async def __call__(self, request: Request) -> Principal:
        principal: Principal | None = getattr(request.state, "principal", None)
        if principal is None:  # a route that is not a GuardedRoute
            principal = await self.admit(request)
        return principal


BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class GuardedRoute(APIRoute):
    """A route whose guards (``Guard`` dependencies) run first: authenticate, authorise and,
    under /ipsproxy/, admit to the tenant's budget; only then does FastAPI read, parse and
    validate the request."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        guards = [d.dependency for d in self.dependencies if isinstance(d.dependency, Guard)]
        reads_body = bool((self.methods or set()) & BODY_METHODS)

        async def guarded(request: Request) -> Response:
            for guard in guards:
                await guard.admit(request)
            if reads_body:  # only now: the caller may send it (Starlette keeps it for the handler)
                depth = services(request).settings.json_max_depth
                content_type = request.headers.get("content-type", "")
                problem = body_problem(content_type, await request.body(), depth)
                if problem is not None:
                    return error_response(route_path(request.scope), 400, problem, "invalidValue")
            return await handler(request)

        return guarded


async def current_principal(request: Request) -> Principal:
    """The principal a guard admitted (a route without a guard has none: 401)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise AuthenticationError("Authentication required.")
    return principal


def context_of(request: Request) -> Context:
    """The context of the request's service calls, made by the guard that admitted the
    caller: its actor, the tenant the request addressed, the request id. The hot SCIM routes
    read it here rather than through ``ContextDep``: a dependency costs a resolution per
    request."""
    ctx: Context | None = getattr(request.state, "context", None)
    if ctx is None:  # a route without a guard has none: 401
        raise AuthenticationError("Authentication required.")
    return ctx


async def current_context(request: Request) -> Context:
    return context_of(request)


ContextDep = Annotated[Context, Depends(current_context)]


def guard(operation: Callable[..., Any]) -> Any:
    """The route dependency that admits callers of a service ``operation``: the permissions
    it declares (``@requires``), checked before the request is read. The web layer decides
    nothing: the service declares, and checks again when called."""
    return Depends(Guard(*permissions_of(operation)))
