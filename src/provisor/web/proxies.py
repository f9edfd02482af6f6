"""Trusted reverse proxies (``PROVISOR_TRUSTED_PROXIES``): whether the peer of a connection is
one, and the client address behind them (``X-Forwarded-For``)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope


class Proxies:
    """The addresses and networks whose forwarding headers are believed."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.networks = tuple(ipaddress.ip_network(n, strict=False) for n in networks)

    def trusts(self, host: str) -> bool:
        if not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def peer_trusted(self, scope: Scope) -> bool:
        """Whether the connection's peer is a trusted proxy."""
        return self.trusts(peer(scope))

    def client(self, scope: Scope) -> str:
        """The caller's address: the peer, or, when the peer is a trusted proxy, the last
        address before the trusted ones in ``X-Forwarded-For``."""
        host = peer(scope)
        if not self.trusts(host):
            return host
        forwarded = b",".join(v for k, v in scope.get("headers", ()) if k == b"x-forwarded-for")
        hops = [hop.strip() for hop in forwarded.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self.trusts(hop):
                return hop
        return hops[0] if hops else host


def peer(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""
