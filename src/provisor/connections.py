"""Guarding the HTTP server's connections against slow and idle clients (slowloris, slow body).

uvicorn closes a keep-alive connection that stays idle, but not one that trickles its request
line and headers, or its body, one byte at a time, nor a fresh connection that sends nothing:
each holds a file descriptor for ever. :class:`GuardedProtocol` (httptools' HTTP/1.1 with
timers) closes a connection whose headers are not complete in ``header_timeout`` seconds, and
one whose body, after ``body_grace`` seconds, arrives slower than ``body_min_rate`` bytes a
second on average. A worker keeps at most ``max_connections`` open: a new connection beyond
it closes the oldest one that is still sending its request (or idle between requests); when
every connection is busy in the application, the new one gets 503 and is closed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from provisor.settings import Settings

log = structlog.get_logger("provisor.connections")

_HEADERS, _BODY, _APP = "headers", "body", "app"  # what the connection is waiting for
_BODY_CHECK_SECONDS = 1.0
_BUSY_TEXT = b"Too many connections; retry later.\n"
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_BUSY_TEXT), _BUSY_TEXT)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    header_timeout: float = 10.0
    body_grace: float = 10.0
    body_min_rate: int = 1024
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.http_header_timeout_seconds,
            body_grace=settings.http_body_grace_seconds,
            body_min_rate=settings.http_body_min_bytes_per_second,
            max_connections=settings.http_max_connections,
        )


class GuardedProtocol(HttpToolsProtocol):
    """httptools' HTTP/1.1 protocol that closes slow connections (see the module)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._timer: asyncio.TimerHandle | None = None
        self._wait_for_headers()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._phase, self._since, self._received = _BODY, self.loop.time(), 0
        self._arm(_BODY_CHECK_SECONDS)

    def on_body(self, body: bytes) -> None:
        self._received += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._phase = _APP
        self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle.response_complete:
            self._wait_for_headers()  # the next request (uvicorn closes the idle ones)

    # -- timers ------------------------------------------------------------------------------

    def _wait_for_headers(self) -> None:
        self._phase, self._since, self._received = _HEADERS, self.loop.time(), 0
        self._arm(self.limits.header_timeout)

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._timer = self.loop.call_later(delay, self._check)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        elapsed = self.loop.time() - self._since
        if self._phase == _HEADERS:
            if elapsed >= self.limits.header_timeout:
                self._close("the request headers took too long")
            else:
                self._arm(self.limits.header_timeout - elapsed)
        elif self._phase == _BODY:
            slow = self._received < self.limits.body_min_rate * elapsed
            if elapsed >= self.limits.body_grace and slow and not self.flow.read_paused:
                self._close("the request body arrives too slowly")
            else:
                self._arm(_BODY_CHECK_SECONDS)

    def _close(self, reason: str) -> None:
        log.debug("connection closed", client=self.client, reason=reason)
        self._disarm()
        self.transport.close()

    def _make_room(self) -> None:
        """Close the oldest connection that is still sending a request, or this one."""
        waiting = [
            conn
            for conn in self.connections
            if isinstance(conn, GuardedProtocol)
            and conn is not self
            and conn._phase != _APP
            and not conn.transport.is_closing()
        ]
        if waiting:
            min(waiting, key=lambda conn: conn._since)._close("too many connections")
            return
        log.warning(
            "connection refused: every connection is busy", limit=self.limits.max_connections
        )
        self.transport.write(_BUSY)
        self._close("too many connections")


def connection_options(settings: Settings, base: Any = None) -> dict[str, Any]:
    """uvicorn options that guard connections: the protocol class (built on ``base``, e.g. the
    HTTPS protocol, when given) and the keep-alive timeout."""
    guarded: type[GuardedProtocol] = type(
        "GuardedProtocol",
        (GuardedProtocol,) if base is None else (GuardedProtocol, base),
        {"limits": ConnectionLimits.from_settings(settings)},
    )
    return {"http": guarded, "timeout_keep_alive": settings.http_keep_alive_seconds}
