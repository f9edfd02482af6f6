"""The proxy's back-end connectors, kept between requests: one per tenant, system version and
client certificate, so that connections (HTTP keep-alive, LDAP binds), TLS sessions and OAuth
tokens serve many calls instead of one.

Only connectors that declare themselves ``shared`` are kept (they hold no call's context and
nothing read once); the others are built for one request and closed after it, as before. A
connector is never lent to another tenant, another system or another version of the system
(its properties and credentials are the version's), nor after the system's active client
certificate changed: the certificate's digest is part of the key. A connector that is no
longer current is closed once the requests using it are done.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import structlog

from provisor.connectors.base import Connector, ConnectorError
from provisor.context import Context, PerTenant
from provisor.proxy.model import Compiled

log = structlog.get_logger("provisor.proxy")

KEPT_PER_TENANT = 64  # connectors kept per tenant (least recently used closed first)
CLIENT_CERTIFICATE = "ClientCertificateAuthentication"

Key = tuple[str, int, str]  # system id, system version, client certificate digest


@dataclass(eq=False, slots=True)
class _Kept:
    connector: Connector
    users: int = 0
    retired: bool = False


class Backends:
    """Connectors lent to proxy requests (``lend``). ``build`` makes a system version's
    connector for a call; ``certificate`` reads the PEM of a system's active client
    certificate (None without one), for systems that authenticate with it."""

    def __init__(
        self,
        build: Callable[[Context, Compiled], Connector],
        certificate: Callable[[Context, str], str | None],
        *,
        kept: int = KEPT_PER_TENANT,
    ) -> None:
        self._build = build
        self._certificate = certificate
        self._size = kept
        self._kept: PerTenant[OrderedDict[Key, _Kept]] = PerTenant(lambda _t: OrderedDict())
        self.built = 0  # connectors built (kept or not), for tests and diagnostics

    def key(self, ctx: Context, compiled: Compiled) -> Key:
        """Which connector serves a request of ``compiled``. Blocking when the system
        authenticates with a client certificate (read from the database): run it in a
        thread then (``needs_certificate``)."""
        system = compiled.system
        digest = ""
        if self.needs_certificate(compiled):
            pem = self._certificate(ctx, system.id)
            digest = "none" if pem is None else hashlib.sha256(pem.encode()).hexdigest()
        return (system.id, system.version, digest)

    @staticmethod
    def needs_certificate(compiled: Compiled) -> bool:
        return CLIENT_CERTIFICATE in compiled.properties.values()

    @asynccontextmanager
    async def lend(self, ctx: Context, compiled: Compiled, key: Key) -> AsyncIterator[Connector]:
        """The connector of ``key`` for one request: the kept one, else a new one (kept when
        it is ``shared``, else closed after the request)."""
        kept = self._kept.get(ctx)
        found = kept.get(key)
        fresh = found is None
        if found is None:
            connector = self._build(ctx, compiled)
            self.built += 1
            if not connector.shared:
                try:
                    yield connector
                finally:
                    await _close(connector)
                return
            found = kept[key] = _Kept(connector)
        else:
            kept.move_to_end(key)
        found.users += 1  # before any await: nothing closes it while it is lent
        try:
            if fresh:
                await self._make_room(kept, key)
            yield found.connector
        finally:
            found.users -= 1
            if found.retired and found.users == 0:
                await _close(found.connector)

    async def _make_room(self, kept: OrderedDict[Key, _Kept], key: Key) -> None:
        """Retire the system's other versions, then the least recently used beyond the size."""
        for other in [k for k in kept if k[0] == key[0] and k != key]:
            gone = kept.pop(other, None)  # another request may have retired it meanwhile
            if gone is not None:
                await self._retire(gone)
        while len(kept) > self._size:
            await self._retire(kept.popitem(last=False)[1])

    async def _retire(self, found: _Kept) -> None:
        found.retired = True
        if found.users == 0:
            await _close(found.connector)

    async def aclose(self) -> None:
        """Close every kept connector (at shutdown)."""
        for kept in self._kept.values():
            while kept:
                await self._retire(kept.popitem()[1])


async def _close(connector: Connector) -> None:
    try:
        await connector.aclose()
    except ConnectorError as exc:
        log.warning("closing a proxy connector failed", error=exc.message)
