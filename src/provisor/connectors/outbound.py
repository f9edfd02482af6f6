"""The outbound policy: which hosts and addresses connectors may connect to (SSRF guard).

Always denied: link-local addresses (169.254.0.0/16, fe80::/10), cloud metadata services
(addresses and names), unspecified, multicast, broadcast and reserved addresses, also when a
v4 address hides in a v6 one (mapped, compatible, 6to4, NAT64, Teredo). Operators add
``PROVISOR_OUTBOUND_DENY`` (addresses, networks, host names), deny private networks and
loopback with ``PROVISOR_OUTBOUND_DENY_PRIVATE``, or allow only ``PROVISOR_OUTBOUND_ALLOW``.
A denial always wins over an allowance.

A destination is checked twice: its host as written (when a system is saved, and before
anything is sent), and every address its name resolves to, right before connecting, when
the connection then goes to the checked address itself (:class:`GuardedBackend` for HTTP,
:func:`resolve` for LDAP), so a name cannot resolve to another address in between.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore
import httpx
import idna

from provisor.connectors.base import ConnectorError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_net = ipaddress.ip_network
ALWAYS_DENIED: tuple[Network, ...] = (
    _net("0.0.0.0/8"),  # "this network", unspecified
    _net("169.254.0.0/16"),  # link-local, with 169.254.169.254 (AWS, GCP, Azure, OCI metadata)
    _net("100.100.100.200/32"),  # Alibaba Cloud metadata
    _net("168.63.129.16/32"),  # Azure WireServer
    _net("224.0.0.0/4"),  # multicast
    _net("240.0.0.0/4"),  # reserved, with the broadcast 255.255.255.255
    _net("::/128"),  # unspecified
    _net("fe80::/10"),  # link-local
    _net("fd00:ec2::254/128"),  # AWS metadata over IPv6
    _net("ff00::/8"),  # multicast
)
METADATA_NAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
PRIVATE: tuple[Network, ...] = (
    _net("10.0.0.0/8"),
    _net("172.16.0.0/12"),
    _net("192.168.0.0/16"),
    _net("100.64.0.0/10"),  # carrier-grade NAT
    _net("127.0.0.0/8"),  # loopback
    _net("fc00::/7"),  # unique local
    _net("::1/128"),  # loopback
)
NAT64 = _net("64:ff9b::/96")
LEGACY_DIGITS = frozenset("0123456789abcdefx.")
COMPATIBLE = _net("::/96")  # deprecated IPv4-compatible addresses ::a.b.c.d


class OutboundRefused(ConnectorError):
    """The outbound policy forbids the destination: no connection was attempted."""


def _name(host: str) -> str:
    return host.strip().rstrip(".").lower()


def _literal(host: str) -> Address | None:
    """The address a host is written as, also in the legacy IPv4 forms resolvers accept
    (``127.1``, ``2852039166``, ``0xa9fea9fe``), or None for a name."""
    text = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if text and all(c in LEGACY_DIGITS for c in text.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            pass
    return None


def _embedded(address: Address) -> list[Address]:
    """The address and every IPv4 address hidden in it."""
    found: list[Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
        if address in NAT64 or (address in COMPATIBLE and int(address) > 1):
            found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def parse_entries(entries: Iterable[str]) -> tuple[tuple[Network, ...], frozenset[str]]:
    """Networks (an address is a /32 or /128) and host names (``*.example.org`` for every
    name below example.org); ValueError for an entry that is neither."""
    networks: list[Network] = []
    names: set[str] = set()
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        name = _name(text)
        label = name.removeprefix("*.")
        if (
            not label
            or not all(part and len(part) < 64 for part in label.split("."))
            or any(not (c.isalnum() or c in "-_") for c in label.replace(".", ""))
        ):
            raise ValueError(f"{entry!r} is neither an address, a network (CIDR) nor a host name")
        names.add(name)
    return tuple(networks), frozenset(names)


def _at(host: str, address: Address) -> str:
    return f"{host} is" if host == str(address) else f"{host} is at {address},"


def _named(name: str, names: frozenset[str]) -> bool:
    if name in names:
        return True
    parts = name.split(".")
    return any(f"*.{'.'.join(parts[i:])}" in names for i in range(1, len(parts)))


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where connectors may connect; the default denies only what is always denied."""

    denied: tuple[Network, ...] = ()
    denied_names: frozenset[str] = frozenset()
    deny_private: bool = False
    allowed: tuple[Network, ...] = ()
    allowed_names: frozenset[str] = frozenset()
    _all_denied: tuple[Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = ALWAYS_DENIED + self.denied + (PRIVATE if self.deny_private else ())
        object.__setattr__(self, "_all_denied", networks)

    @classmethod
    def of(
        cls, *, deny: Sequence[str] = (), allow: Sequence[str] = (), deny_private: bool = False
    ) -> OutboundPolicy:
        """The policy of the settings' lists (ValueError for an entry that is not valid)."""
        denied, denied_names = parse_entries(deny)
        allowed, allowed_names = parse_entries(allow)
        return cls(denied, denied_names, deny_private, allowed, allowed_names)

    @property
    def allow_listed(self) -> bool:
        return bool(self.allowed or self.allowed_names)

    def host_problem(self, host: str, *, resolved: bool = True) -> str | None:
        """Why the host as written is refused, or None. ``resolved``: its addresses will be
        checked too (else, with an allow list, a name must be listed: through a proxy)."""
        name = _name(host)
        if not name:
            return "the URL has no host"
        address = _literal(name)
        if address is None:
            if name in METADATA_NAMES:
                return f"{name} is a cloud metadata service"
            if _named(name, self.denied_names):
                return f"{name} is denied by PROVISOR_OUTBOUND_DENY"
            if not resolved and self.allow_listed and not _named(name, self.allowed_names):
                return f"{name} is not in PROVISOR_OUTBOUND_ALLOW"
            return None
        return self.address_problem(name, address)

    def address_problem(self, host: str, address: Address) -> str | None:
        """Why connecting to ``address`` (for the host ``host``) is refused, or None."""
        for candidate in _embedded(address):
            for network in self._all_denied:
                if candidate.version == network.version and candidate in network:
                    return f"{_at(host, address)} {self._why(network)}"
        if self.allow_listed and not _named(_name(host), self.allowed_names):
            if not any(
                c.version == n.version and c in n for c in _embedded(address) for n in self.allowed
            ):
                return f"{_at(host, address)} not in PROVISOR_OUTBOUND_ALLOW"
        return None

    def url_problem(self, url: str) -> str | None:
        """Why a URL's host as written is refused, or None (also for a URL without a host:
        the property checks report that)."""
        try:
            host = urlsplit(url.strip()).hostname
        except ValueError:
            return None
        return self.host_problem(host) if host else None

    def check_host(self, host: str, *, resolved: bool = True) -> None:
        problem = self.host_problem(host, resolved=resolved)
        if problem is not None:
            raise refused(problem)

    def check_addresses(self, host: str, addresses: Sequence[str]) -> None:
        """Refuse the host when any of its addresses is refused (or it has none)."""
        if not addresses:
            raise refused(f"{host} resolves to no address")
        for text in addresses:
            address = _literal(text)
            problem = (
                f"{host} resolves to {text!r}, not an address"
                if address is None
                else self.address_problem(host, address)
            )
            if problem is not None:
                raise refused(problem)

    def _why(self, network: Network) -> str:
        if network in self.denied:
            return "denied by PROVISOR_OUTBOUND_DENY"
        if network in PRIVATE and network not in ALWAYS_DENIED:
            return "a private or loopback address (PROVISOR_OUTBOUND_DENY_PRIVATE)"
        return "a link-local, cloud metadata or special-purpose address (always denied)"


DEFAULT = OutboundPolicy()


def refused(problem: str) -> OutboundRefused:
    return OutboundRefused(f"The outbound policy refuses the connection: {problem}.")


def policy_of(services: Mapping[str, Any]) -> OutboundPolicy:
    """The policy the hosting process lends connectors as ``services["outbound"]``, or the
    default."""
    policy = services.get("outbound")
    return policy if isinstance(policy, OutboundPolicy) else DEFAULT


def _unique(infos: Iterable[tuple[Any, ...]]) -> list[str]:
    seen: list[str] = []
    for info in infos:
        text = str(info[4][0])
        if text not in seen:
            seen.append(text)
    return seen


def resolve(policy: OutboundPolicy, host: str, port: int) -> list[str]:
    """The checked addresses of a host (blocking); OutboundRefused when any is refused,
    ``socket.gaierror`` when the name does not resolve."""
    policy.check_host(host)
    literal = _literal(host)
    if literal is not None:
        return [str(literal)]
    addresses = _unique(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    policy.check_addresses(host, addresses)
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network with the policy: a host is resolved, every address checked, and
    the connection made to a checked address (TLS still verifies the host's name)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.network = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.policy.check_host(host)
        literal = _literal(host)
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                with anyio.fail_after(timeout):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
            except socket.gaierror as exc:
                raise httpcore.ConnectError(str(exc)) from exc
            addresses = _unique(infos)
            self.policy.check_addresses(host, addresses)
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, the next when one fails
            try:
                return await self.network.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def sleep(self, seconds: float) -> None:
        await self.network.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the policy: each request's host is checked before anything is
    sent (through a proxy, which resolves names itself, that is the check), and a direct
    connection goes through :class:`GuardedBackend`."""

    def __init__(
        self,
        policy: OutboundPolicy,
        *,
        verify: ssl.SSLContext,
        limits: httpx.Limits,
        proxy: str | None = None,
    ) -> None:
        super().__init__(verify=verify, limits=limits, proxy=proxy)
        self.policy = policy
        self.direct = proxy is None
        if self.direct:
            self._pool = httpcore.AsyncConnectionPool(
                ssl_context=verify,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=GuardedBackend(policy),
            )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.policy.check_host(request.url.host, resolved=self.direct)
        return await super().handle_async_request(request)


def unusable_url(url: str) -> str | None:
    """Why the HTTP client cannot use ``url`` as written, or None: it must parse (IDNA host
    names too), and it may hold no user name or password (they belong in the credential
    properties, where they are encrypted, not in a URL that is shown and exported)."""
    try:
        parsed = httpx.URL(url.strip())
        if "xn--" in parsed.host:
            idna.decode(parsed.host)  # what resolving it will do
    except (httpx.InvalidURL, idna.IDNAError) as exc:
        return f"the URL cannot be used ({exc})"
    if parsed.userinfo:
        return "a URL may hold no user name or password: use the User and Password properties"
    return None
