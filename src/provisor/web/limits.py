"""Refusing requests the service will not process: bodies larger than the configured limit
(HTTP 413, before reading them), text no database can store (NUL) in a URL, and bodies with
such text or JSON nested deeper than a limit (HTTP 400, in the protocol's error format)."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import Query
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor.scim.limits import MAX_INDEX
from provisor.text import unstorable
from provisor.web.errors import error_response
from provisor.web.paths import route_path

# How many items a listing of the admin API skips: a number every database takes.
Offset = Annotated[int, Query(ge=0, le=MAX_INDEX)]


class BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answers 413 when Content-Length, or the bytes actually received, pass ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                break
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"The request body is larger than {self.max_bytes} bytes."
        response = error_response(route_path(scope), 413, detail, "tooLarge")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


# \u0000 in a JSON text, unless its backslash is itself escaped ("\\u0000" is six characters).
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")
_FORM_NUL = re.compile(rb"%00")
_BYTE_ORDER_MARKS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest deeper than ``limit`` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if not isinstance(current, dict | list):
            continue  # a scalar body
        children = current.values() if isinstance(current, dict) else current
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class URLTextMiddleware:
    """Answers 400 to a request with NUL in its path or query string: such a URL names no
    resource, and no database could look it up. (Bodies are checked after authentication,
    by ``body_problem`` in the route guard.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            if unstorable(scope["path"]) or _FORM_NUL.search(query) or b"\x00" in query:
                response = error_response(
                    route_path(scope), 400, "The URL contains a NUL character.", "invalidValue"
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def body_problem(content_type: str, body: bytes, max_depth: int) -> str | None:
    """What makes a request body unfit for any handler: NUL or a lone surrogate in a JSON or
    form body, JSON that is not UTF-8 (RFC 8259: no byte-order mark, no UTF-16/32, which
    other parsers would accept), or JSON nested deeper than ``max_depth``; None when it is
    fit (or not JSON: the handler explains what is wrong with it)."""
    content_type = content_type.lower()
    if "form-urlencoded" in content_type:
        return "The form contains a NUL character." if _FORM_NUL.search(body) else None
    looks_json = body.lstrip().startswith((b"{", b"["))
    if content_type and "json" not in content_type and not looks_json:
        return None  # no content type: FastAPI reads the body as JSON
    if body.startswith(_BYTE_ORDER_MARKS) or b"\x00" in body:
        return "The JSON body must be UTF-8 (RFC 8259): no byte-order mark, no UTF-16 or UTF-32."
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "surrogate" in str(exc):
            return "The JSON body contains a lone surrogate character."
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            return "The JSON body must be UTF-8 (RFC 8259)."
        return None  # a syntax error: the handler explains it
    if _JSON_NUL.search(body):
        return "The JSON body contains a NUL character (\\u0000)."
    if json_depth_exceeds(parsed, max_depth):
        return f"The JSON body nests deeper than the limit of {max_depth} levels."
    return None
