"""The span of each request (when tracing is on, :mod:`provisor.tracing`): named after the
route it reached, with the method, status, tenant and request id, continuing the caller's
trace (``traceparent``); the spans of the services the request calls are its children."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provisor import tracing
from provisor.web.tenancy import tenant_of

_CONTEXT_HEADERS = (b"traceparent", b"tracestate")


class TracingMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        method = scope["method"]
        headers = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in _CONTEXT_HEADERS
        }
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "provisor.tenant": tenant_of(scope),
            "provisor.request_id": scope.get("state", {}).get("request_id", ""),
        }
        with tracing.request_span(method, headers, attributes) as span:
            try:
                await self.app(scope, receive, sending)
            except BaseException:
                status = status or 500
                raise
            finally:
                if span is not None:  # None: tracing was turned off since the app was built
                    route = getattr(scope.get("route"), "path", None)  # the route's template
                    if route:
                        span.update_name(f"{method} {route}")
                        span.set_attribute("http.route", route)
                    span.set_attribute("http.response.status_code", status)
