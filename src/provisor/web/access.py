"""Access lines: one JSON log line per request, written when its response is sent
(``PROVISOR_ACCESS_LOG``, ``provisor serve --access-log``).

A line holds the method, the path (never the query string, whose values may be secrets or
personal data), the status, the duration, the bytes of the response body, the client
address, the tenant and who called: the technical user or administrator that the API's guard
(:mod:`provisor.web.auth`) or the console's route class noted with :func:`note_actor` (a
technical user's name and client id, or an administrator's name, and how it authenticated). The
request id comes with every line (bound by :mod:`provisor.web.request_ids`)."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor.context import Actor
from provisor.web.proxies import Proxies

log = structlog.get_logger("provisor.access")

ACTOR = "actor"  # the request state's key of the authenticated caller: (actor, client id, how)
TENANT = "tenant"  # the request state's key of the tenant the request addressed


def note_actor(
    scope: Scope, actor: Actor, *, client_id: str | None = None, method: str = "session"
) -> None:
    """Record who the request's caller is, for its access line: the actor, a technical
    user's client id, and how it authenticated (``basic``, ``bearer``, ``certificate``, a
    console ``session``)."""
    scope.setdefault("state", {})[ACTOR] = (actor, client_id, method)


def note_tenant(scope: Scope, tenant: str) -> None:
    scope.setdefault("state", {})[TENANT] = tenant


class AccessLogMiddleware:
    """Writes each HTTP request's access line once its response is sent (or has failed)."""

    def __init__(self, app: ASGIApp, proxies: Proxies | None = None) -> None:
        self.app = app
        self.proxies = proxies or Proxies()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        size = 0

        async def counting(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        except BaseException:
            status = status or 500
            raise
        finally:
            state = scope.get("state", {})
            actor, client_id, method = state.get(ACTOR) or (None, None, None)
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                bytes=size,
                client=self.proxies.client(scope),
                tenant=state.get(TENANT),
                actor=actor.name if actor else None,
                actor_type=actor.kind.value if actor else None,
                client_id=client_id,
                auth=method,
            )
