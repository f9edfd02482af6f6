"""Who is calling: HTTP Basic (client id + secret) or an OAuth 2.0 bearer token."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from provisor.auth.permissions import Permission, Principal
from provisor.errors import AuthenticationError, PermissionDeniedError
from provisor.runtime import Services


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


def require(principal: Principal, *any_of: Permission) -> None:
    """Raise PermissionDeniedError (HTTP 403) unless the principal holds one of ``any_of``."""
    if not principal.allows(*any_of):
        needed = " or ".join(p.value for p in any_of) if any_of else "admin"
        raise PermissionDeniedError(f"This operation needs the permission {needed} (or admin).")
