"""Refusing requests the service will not process: bodies larger than the configured limit
(HTTP 413, before reading them), JSON nested deeper than a limit, and text no database can
store (NUL) in a path, query string or body (HTTP 400, in the protocol's error format)."""

from __future__ import annotations

import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor.text import unstorable
from provisor.web.errors import error_response


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
        response = error_response(scope["path"], 413, detail, "tooLarge")
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


# \u0000 in a JSON text, unless its backslash is itself escaped ("\\u0000" is six characters).
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000")
_FORM_NUL = re.compile(rb"%00")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


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


class RequestTextMiddleware:
    """Answers 400 to a request with NUL in its path or query, or a body (JSON or form)
    holding NUL, a lone surrogate, or JSON nested deeper than ``max_depth``.

    Every JSON body the service parses (SCIM, admin API, real-time, proxy) passes here, so
    no handler meets text the databases would refuse. Runs inside BodyLimitMiddleware: a
    body is buffered only up to the size limit.
    """

    def __init__(self, app: ASGIApp, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        query = scope.get("query_string", b"")
        if unstorable(path) or _FORM_NUL.search(query) or b"\x00" in query:
            await self._refuse(scope, send, "The URL contains a NUL character.", "invalidValue")
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problem = self._problem(scope, body)
        if problem is not None:
            await self._refuse(scope, send, problem, "invalidValue")
            return
        replayed = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([replayed], receive), send)

    def _problem(self, scope: Scope, body: bytes) -> str | None:
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.lower()
                break
        if b"form-urlencoded" in content_type:
            return "The form contains a NUL character." if _FORM_NUL.search(body) else None
        stripped = body.lstrip()
        if not stripped.startswith((b"{", b"[")) and b"json" not in content_type:
            return None
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            if "surrogate" in str(exc):
                return "The JSON body contains a lone surrogate character."
            return None  # the handler explains what is wrong with the JSON
        if _JSON_NUL.search(body):
            return "The JSON body contains a NUL character (\\u0000)."
        if json_depth_exceeds(parsed, self.max_depth):
            return f"The JSON body nests deeper than the limit of {self.max_depth} levels."
        return None

    @staticmethod
    async def _refuse(scope: Scope, send: Send, detail: str, scim_type: str) -> None:
        response = error_response(scope["path"], 400, detail, scim_type)

        async def no_body() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await response(scope, no_body, send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives ``messages`` first, then whatever the client sends next."""

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay
