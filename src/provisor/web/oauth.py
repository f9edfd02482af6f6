"""OAuth 2.0 token endpoint: the client credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from provisor.audit.service import TOKEN_ISSUED
from provisor.auth.clients import ScopeError
from provisor.errors import AuthenticationError, TooManyRequestsError
from provisor.web import openapi
from provisor.web.access import note_actor
from provisor.web.auth import (
    basic_credentials,
    check_secret,
    client_address,
    counted,
    services,
)
from provisor.web.request_ids import request_id_of

router = APIRouter(tags=[openapi.OAUTH])

_ERROR = {
    "application/json": {
        "schema": {
            "type": "object",
            "description": "An OAuth 2.0 error (RFC 6749 §5.2)",
            "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "error_description": {"type": "string"},
            },
        }
    }
}
_TOKEN = {
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"type": "string"},
                "expires_in": {"type": "integer"},
                "scope": {"type": "string"},
            },
        }
    }
}

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(
    status: int,
    error: str,
    description: str,
    *,
    basic: bool = False,
    retry_after: int | None = None,
) -> Response:
    headers = dict(_NO_STORE)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = (
            'Basic realm="provisor"' if basic else 'Bearer realm="provisor"'
        )
    body = orjson.dumps({"error": error, "error_description": description})
    return Response(body, status, headers=headers, media_type="application/json")


MAX_TOKEN_REQUEST_BYTES = 8192  # a client credentials request is a few hundred bytes
MAX_TOKEN_PARAMETERS = 16


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    """The request body, read no further than MAX_TOKEN_REQUEST_BYTES: anyone may call this
    route, so what it reads and parses before authenticating stays small."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_TOKEN_REQUEST_BYTES:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_TOKEN_REQUEST_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _form(request: Request) -> dict[str, str] | None:
    raw = await _body(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media == "application/json":
            data: Any = orjson.loads(raw) if raw else {}
            if not isinstance(data, dict) or len(data) > MAX_TOKEN_PARAMETERS:
                return None
            return {str(k): str(v) for k, v in data.items()}
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(raw),
            max_num_fields=MAX_TOKEN_PARAMETERS,
        )
    except (ValueError, UnicodeDecodeError, orjson.JSONDecodeError):
        return None
    names = [name for name, _ in pairs]
    if len(names) != len(set(names)):
        return None  # RFC 6749 §3.2: parameters must not be repeated
    return dict(pairs)


def _refused(exc: Exception, *, basic: bool) -> Response:
    """The OAuth answer to a failed client authentication, or to a caller that must wait."""
    if isinstance(exc, TooManyRequestsError):
        return _oauth_error(
            exc.status, "temporarily_unavailable", exc.message, retry_after=exc.retry_after
        )
    return _oauth_error(401, "invalid_client", str(exc), basic=basic)


@router.post(
    "/oauth2/token",
    summary="Get a bearer token with client credentials",
    responses={
        200: {"description": "A bearer token", "content": _TOKEN},
        400: {
            "description": "invalid_request, unsupported_grant_type or invalid_scope: "
            "error_description says what is wrong",
            "content": _ERROR,
        },
        401: {
            "description": "invalid_client: no client credentials, or wrong ones",
            "content": _ERROR,
        },
        413: {
            "description": "invalid_request: the request is larger than 8 KiB",
            "content": _ERROR,
        },
        429: {
            "description": "temporarily_unavailable: too many failed authentications",
            "content": _ERROR,
        },
    },
    response_class=Response,
)
async def token(request: Request) -> Response:
    try:
        form = await _form(request)
    except _TooLarge:
        return _oauth_error(
            413, "invalid_request", f"The request is larger than {MAX_TOKEN_REQUEST_BYTES} bytes."
        )
    if form is None:
        return _oauth_error(
            400, "invalid_request", "Send application/x-www-form-urlencoded parameters, each once."
        )
    header = request.headers.get("authorization", "")
    scheme, _, value = header.strip().partition(" ")
    basic = scheme.lower() == "basic" and bool(value)
    in_body = "client_id" in form or "client_secret" in form
    if basic and in_body:
        return _oauth_error(
            400, "invalid_request", "Authenticate either with HTTP Basic or in the body, not both."
        )
    if basic:
        try:
            client_id, secret = basic_credentials(value.strip())
        except AuthenticationError as exc:
            return _refused(await counted(request, exc, "basic"), basic=True)
    elif in_body:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    else:
        missing = AuthenticationError("Client authentication is required.")
        return _refused(await counted(request, missing), basic=True)
    grant = form.get("grant_type")
    if not grant:
        return _oauth_error(400, "invalid_request", "grant_type is required.")
    if grant != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", "Only the client_credentials grant is supported."
        )
    clients = services(request).clients
    try:
        principal = await check_secret(request, client_id, secret)
    except (AuthenticationError, TooManyRequestsError) as exc:
        return _refused(exc, basic=basic)
    actor, client = principal.actor(), principal.client_id
    note_actor(request.scope, actor, client_id=client, method=principal.method)  # access line
    try:
        issued = clients.issue_token(principal, form.get("scope"))
    except ScopeError as exc:
        return _oauth_error(400, "invalid_scope", str(exc))
    await run_in_threadpool(
        services(request).audit.signin_event,
        principal.tenant,
        principal.actor(),
        TOKEN_ISSUED,
        {"method": principal.method, "scope": sorted(issued.scope)},
        address=client_address(request),
        request_id=request_id_of(request.scope),
    )
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": " ".join(sorted(issued.scope)),
    }
    return Response(orjson.dumps(body), 200, headers=_NO_STORE, media_type="application/json")
