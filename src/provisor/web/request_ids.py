"""Request ids: every request gets one, returned in the response's ``X-Request-ID`` and
carried by the request's context into services, logs and audit entries.

The caller's ``X-Request-ID`` (when it is a sane token) is taken only from a trusted reverse
proxy (``PROVISOR_TRUSTED_PROXIES``), which passes on its own request's id; any other caller
gets a new id, so that nobody can give their requests the id of someone else's in the logs
and the audit log."""

from __future__ import annotations

import re

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor.context import new_request_id
from provisor.web.proxies import Proxies

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")


def request_id_of(scope: Scope) -> str:
    """The request's id (set by the middleware; a new one outside it)."""
    state = scope.setdefault("state", {})
    found: str | None = state.get("request_id")
    if found is None:
        found = state["request_id"] = new_request_id()
    return found


class RequestIdMiddleware:
    """Gives every HTTP request its id and echoes it in the response."""

    def __init__(self, app: ASGIApp, proxies: Proxies | None = None) -> None:
        self.app = app
        self.proxies = proxies or Proxies()

    def _given(self, scope: Scope) -> str | None:
        if not self.proxies.peer_trusted(scope):
            return None
        given = next((v for k, v in scope["headers"] if k == HEADER), b"")
        return given.decode() if _SANE.fullmatch(given) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = self._given(scope) or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        encoded = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":  # no route sets the header itself
                message["headers"] = [*message.get("headers", ()), (HEADER, encoded)]
            await send(message)

        # Each request runs in a task of its own, whose context dies with it (the thread pool
        # copies it): binding without unbinding keeps the id on the request's log lines only.
        structlog.contextvars.bind_contextvars(request_id=rid)
        await self.app(scope, receive, send_with_id)
