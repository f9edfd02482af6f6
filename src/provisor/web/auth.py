"""Who is calling: HTTP Basic (client id + secret), an OAuth 2.0 bearer token, or, on the
proxy, real-time and tenant admin APIs, a client certificate (mTLS, or from a trusted
TLS-terminating reverse proxy)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Annotated, Any

from cryptography import x509
from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from provisor.auth.permissions import Permission, Principal
from provisor.certs.x509 import from_header, load_certificate
from provisor.errors import AuthenticationError, ConfigError, NotFoundError, PermissionDeniedError
from provisor.runtime import Services
from provisor.settings import Settings


def services(request: Request) -> Services:
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


async def authenticate(request: Request) -> Principal:
    """The principal of the request, or AuthenticationError (HTTP 401)."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationError("Authentication required: HTTP Basic or a bearer token.")
    scheme, _, value = header.strip().partition(" ")
    clients = services(request).clients
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        claims = clients.verify_token(value)
        if clients.cached(claims.client_id):
            return clients.token_principal(claims)
        return await run_in_threadpool(clients.token_principal, claims)
    if scheme.lower() == "basic" and value:
        client_id, secret = basic_credentials(value)
        quick = clients.quick_secret(client_id, secret)
        if quick is not None:
            return quick
        return await run_in_threadpool(clients.authenticate_secret, client_id, secret)
    raise AuthenticationError("Unsupported authentication scheme: use Basic or Bearer.")


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def presented_certificate(request: Request) -> x509.Certificate | None:
    """The client certificate of the request: the one the TLS handshake accepted (ASGI TLS
    extension), else the configured header when the request comes from a trusted proxy."""
    tls = request.scope.get("extensions", {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if chain:
        return load_certificate(chain[0])
    settings = services(request).settings
    header = request.headers.get(settings.client_cert_header)
    if not header or not settings.trusted_proxies or not _trusted(request, settings):
        return None
    try:
        return from_header(header)
    except ConfigError as exc:
        raise AuthenticationError(
            f"The client certificate from the reverse proxy is unreadable: {exc.message}"
        ) from None


def _trusted(request: Request, settings: Settings) -> bool:
    peer = request.client.host if request.client else None
    if peer is None:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(net, strict=False) for net in settings.trusted_proxies
    )


async def authenticate_caller(request: Request) -> Principal:
    """The principal of a proxy, real-time or tenant admin API call: credentials when the
    request carries an Authorization header, else its client certificate."""
    if request.headers.get("authorization"):
        return await authenticate(request)
    cert = presented_certificate(request)
    if cert is None:
        raise AuthenticationError(
            "Authentication required: HTTP Basic, a bearer token or a client certificate."
        )
    found = services(request)
    principal = await run_in_threadpool(found.certificates.authenticate, cert)
    if principal.system is not None:
        await run_in_threadpool(_same_system, found, principal, request.path_params)
    return principal


def _same_system(found: Services, principal: Principal, params: dict[str, Any]) -> None:
    wanted = params.get("system_id")
    try:
        same = wanted is not None and found.systems.get(str(wanted)).id == principal.system
    except NotFoundError:
        same = False
    if not same:
        raise PermissionDeniedError(
            f"This certificate is attached to system {principal.system}: it may call only "
            "that system's API."
        )


CallerDep = Annotated[Principal, Depends(authenticate_caller)]


def require(principal: Principal, *any_of: Permission) -> None:
    """Raise PermissionDeniedError (HTTP 403) unless the principal holds one of ``any_of``."""
    if not principal.allows(*any_of):
        needed = " or ".join(p.value for p in any_of) if any_of else "admin"
        raise PermissionDeniedError(f"This operation needs the permission {needed} (or admin).")
