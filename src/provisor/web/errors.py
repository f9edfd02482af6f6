"""Errors as HTTP responses: SCIM error bodies under the SCIM APIs, RFC 7807 elsewhere.

The one place where exceptions meet status codes. No traceback ever reaches a client.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import Match

from provisor.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    InputError,
    InvalidDocumentError,
    InvalidTransformationError,
    MasterKeyError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    ProvisorError,
    StorageError,
    TooManyRequestsError,
)
from provisor.scim.errors import MethodNotAllowedError, SCIMError, error_body
from provisor.web.paths import route_path
from provisor.web.validation import describe, known_fields

log = structlog.get_logger("provisor.web")

SCIM_PREFIXES = ("/scim", "/ipsproxy")
SCIM_MEDIA_TYPE = "application/scim+json"
PROBLEM_MEDIA_TYPE = "application/problem+json"
WWW_AUTHENTICATE = 'Basic realm="provisor", Bearer realm="provisor"'

_STATUS: list[tuple[type[ProvisorError], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (PreconditionFailedError, 412),
    (ConflictError, 409),
    (InvalidTransformationError, 400),
    (InputError, 400),
    (MasterKeyError, 500),
    (ConfigError, 400),
    (StorageError, 503),
]


def status_of(exc: ProvisorError) -> int:
    """The HTTP status of a service's error."""
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def is_scim(path: str) -> bool:
    return path.startswith(SCIM_PREFIXES)


def scim_error(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = error_body(status, detail, scim_type)
    return Response(orjson.dumps(body), status, headers=headers, media_type=SCIM_MEDIA_TYPE)


def problem(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    title: str | None = None,
    **extra: Any,
) -> Response:
    body = {
        "type": "about:blank",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def error_response(
    path: str,
    status: int,
    detail: str,
    scim_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if status == 401:
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE, **(headers or {})}
    if is_scim(path):
        return scim_error(status, detail, scim_type, headers)
    return problem(status, detail, headers)


async def _scim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SCIMError)
    headers = {"Allow": ", ".join(exc.allow)} if isinstance(exc, MethodNotAllowedError) else None
    if not is_scim(route_path(request.scope)):
        return problem(exc.status, exc.message, headers)
    return scim_error(exc.status, exc.message, exc.scim_type, headers)


async def _provisor_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProvisorError)
    if isinstance(exc, TooManyRequestsError):
        retry = {"Retry-After": str(exc.retry_after)}
        return error_response(route_path(request.scope), exc.status, exc.message, None, retry)
    status = status_of(exc)
    if status >= 500:
        log.error("request failed", path=route_path(request.scope), error=exc.message)
    if isinstance(exc, InvalidTransformationError | InvalidDocumentError) and not is_scim(
        route_path(request.scope)
    ):
        return problem(status, exc.message, problems=exc.problems)
    if isinstance(exc, MasterKeyError) and not is_scim(route_path(request.scope)):
        return problem(status, exc.message, title="The master key does not match the data")
    return error_response(route_path(request.scope), status, exc.message)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    content_type = request.headers.get("content-type", "")
    problems = describe(errors, body=exc.body, content_type=content_type)
    if any(err.get("type") == "extra_forbidden" for err in errors):
        fields = known_fields(_body_model(request))
        if fields:
            problems.append(f"The fields it takes are {', '.join(fields)}.")
    detail = " ".join(problems)
    if is_scim(route_path(request.scope)):
        syntax = any(err.get("type") == "json_invalid" for err in errors)
        return scim_error(400, detail, "invalidSyntax" if syntax else "invalidValue")
    return problem(400, detail, problems=problems)


def _body_model(request: Request) -> Any:
    """The type of the body the request's route takes (None when it takes none)."""
    field = getattr(request.scope.get("route"), "body_field", None)
    return getattr(getattr(field, "field_info", None), "annotation", None)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No such endpoint: {request.method} {route_path(request.scope)}"
    allowed = _allowed_methods(request) if exc.status_code == 405 else []
    path = route_path(request.scope)
    if allowed and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed on {path}: use {', '.join(allowed)}."
    response = error_response(path, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    if exc.status_code == 405:  # every method of every route of the path, not only the first
        response.headers["Allow"] = ", ".join(allowed)
    return response


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route of the request's path answers (routers may nest: ask each)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection while sending its request: nothing to answer."""
    log.info("client disconnected", path=route_path(request.scope), method=request.method)
    return Response(status_code=400)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error", path=route_path(request.scope), method=request.method)
    return error_response(route_path(request.scope), 500, "Internal server error.")


def install(app: FastAPI) -> None:
    app.add_exception_handler(SCIMError, _scim_error)
    app.add_exception_handler(ProvisorError, _provisor_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
