"""TLS and the transport of outbound HTTP: how a system's connections are made, and what a
failed one means.

Certificates are verified against certifi (or ``SSL_CERT_FILE``/``SSL_CERT_DIR``) unless
``TrustAll=true``; ``ClientCertificateAuthentication`` presents the system's active client
certificate (mTLS), from the certificate service the hosting process lends as
``config.services["certificates"]``. Proxies come from the
environment (``HTTPS_PROXY``, ``NO_PROXY``, ...) and keep these TLS settings. Every
connection obeys the outbound policy (:mod:`.outbound`).
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import ssl
import tempfile
import urllib.request
from typing import Protocol

import certifi
import httpx
from cryptography.hazmat.primitives import serialization

from provisor.connectors.base import ConnectionFailed, ConnectorConfig, excerpt
from provisor.connectors.outbound import GuardedTransport, policy_of
from provisor.errors import ConfigError

# What a server's alert says when it refuses the client certificate, or the lack of one.
CLIENT_CERTIFICATE_ALERTS = (
    "certificate required",
    "bad certificate",
    "unknown ca",
    "certificate unknown",
    "certificate expired",
    "certificate revoked",
    "unsupported certificate",
    "access denied",
)


class TLSFailed(ConnectionFailed):
    """The TLS handshake failed: the server's certificate is not trusted, or the server
    refused the client certificate (or the lack of one). Trying again cannot help."""

    retryable = False


def where(url: httpx.URL) -> str:
    """Scheme, host and port of a URL: never its user info, path or query."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


class ClientCertificates(Protocol):
    """What the hosting process lends connectors as ``services["certificates"]``."""

    def active_pair(self, system_id: str) -> tuple[str, str] | None:
        """(certificate PEM, private key PEM) of the system's active client certificate."""


def client_certificate(
    config: ConnectorConfig, *, proxy_type: str = "ProxyType"
) -> tuple[str, str]:
    """The active client certificate of a system that uses ClientCertificateAuthentication,
    read now (so an activation counts from the next connection), or a clear ConfigError."""
    if config.get(proxy_type) == "OnPremise":
        raise ConfigError(
            f"System {config.system_name}: ClientCertificateAuthentication cannot be used with "
            f"{proxy_type}=OnPremise."
        )
    certificates: ClientCertificates | None = config.services.get("certificates")
    pair = certificates.active_pair(config.system_id) if certificates is not None else None
    if pair is None:
        raise ConfigError(
            f"System {config.system_name} uses ClientCertificateAuthentication but has no "
            "active outbound certificate: generate one for the system first."
        )
    return pair


def present(ctx: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """Load a client certificate and its key into a context. ``ssl`` reads only files: it
    gets the key encrypted with a one-time password, in a private file deleted at once, so
    the key never rests on disk in clear."""
    password = secrets.token_bytes(32)
    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    sealed = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    with tempfile.NamedTemporaryFile(prefix="provisor-cert-", suffix=".pem") as handle:
        handle.write(cert_pem.encode("ascii") + sealed)
        handle.flush()
        ctx.load_cert_chain(handle.name, password=password)


def _trust_files() -> tuple[str, str, tuple[int, int] | None]:
    """What a verifying context trusts: ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (httpx reads
    them) and the file's size and modification time, so a changed file makes a new context."""
    file, folder = os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", "")
    try:
        found = os.stat(file or certifi.where())
    except OSError:
        return file, folder, None
    return file, folder, (found.st_size, found.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _shared_context(verify: bool, trust: tuple[str, str, tuple[int, int] | None]) -> ssl.SSLContext:
    return httpx.create_ssl_context(verify=verify)


def ssl_context(config: ConnectorConfig) -> ssl.SSLContext:
    """The TLS settings of a system: server verification unless TrustAll, and the active
    client certificate for ClientCertificateAuthentication.

    Without a client certificate the context holds no secret, only what is trusted: one per
    process (loading the trusted certificates costs ~70 ms of CPU, once per connector before)."""
    verify = not config.flag("TrustAll")
    if config.get("Authentication") != "ClientCertificateAuthentication":
        return _shared_context(verify, _trust_files())
    ctx = httpx.create_ssl_context(verify=verify)
    cert, key = client_certificate(config)
    try:
        present(ctx, cert, key)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigError(
            f"System {config.system_name}: its client certificate cannot be loaded "
            f"({type(exc).__name__}: {getattr(exc, 'strerror', None) or exc})."
        ) from exc
    return ctx


def _env_proxy(url: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, NO_PROXY, ...) names for a URL, if any."""
    target = httpx.URL(url)
    proxy = urllib.request.getproxies().get(target.scheme)
    if not proxy or urllib.request.proxy_bypass(target.host):
        return None
    return proxy


def pooled_transport(
    config: ConnectorConfig, url: str, *, max_connections: int
) -> httpx.AsyncHTTPTransport:
    """The transport of a system's client: its TLS settings, a pool, the environment's proxy,
    and the outbound policy on every connection."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return GuardedTransport(
        policy_of(config.services), verify=ssl_context(config), limits=limits, proxy=_env_proxy(url)
    )


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def connection_error(exc: httpx.TransportError, timeouts: httpx.Timeout) -> ConnectionFailed:
    """A clear ConnectionFailed for what went wrong on the wire."""
    url = exc.request.url
    target = where(url)
    causes = _chain(exc)
    refused = [cause for cause in causes if isinstance(cause, ssl.SSLError)]
    if refused:
        unverified = [c for c in refused if isinstance(c, ssl.SSLCertVerificationError)]
        return tls_failed((unverified or refused)[0], target)
    for cause in causes:
        if isinstance(cause, socket.gaierror):
            return ConnectionFailed(f"Cannot resolve the host of {target}: {cause.strerror}")
        if isinstance(cause, ConnectionRefusedError):
            return ConnectionFailed(f"Connection to {target} refused: nothing listens there")
    if isinstance(exc, httpx.ConnectTimeout):
        return ConnectionFailed(f"No connection to {target} within {timeouts.connect:g} s")
    if isinstance(exc, httpx.ReadTimeout):
        return ConnectionFailed(f"No answer from {target} within {timeouts.read:g} s")
    if isinstance(exc, httpx.WriteTimeout):
        return ConnectionFailed(f"Sending the request to {target} timed out")
    if isinstance(exc, httpx.PoolTimeout):
        return ConnectionFailed(f"No free connection to {target} (pool exhausted)")
    hint = ""
    if url.scheme == "https" and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        hint = " (over TLS: the server may require a client certificate or refuse this one)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return ConnectionFailed(f"{target} closed the connection without an HTTP answer{hint}")
    text = excerpt(str(exc)) or type(exc).__name__
    return ConnectionFailed(f"Connection to {target} failed: {text}{hint}")


def tls_failed(exc: ssl.SSLError, target: str) -> TLSFailed:
    """A clear TLSFailed for an ``ssl`` error with ``target`` (scheme, host and port): what
    the server said (an alert) or what we found wrong with its certificate, and a hint."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "certificate verify failed"
        return TLSFailed(
            f"TLS handshake with {target} failed: certificate verify failed: {reason} "
            "(the server's certificate is not trusted; TrustAll=true skips the check, "
            "for tests only)"
        )
    reason = (exc.reason or str(exc)).replace("_", " ").lower()
    hint = ""
    if any(alert in reason for alert in CLIENT_CERTIFICATE_ALERTS):
        hint = " (the server requires a valid client certificate)"
    elif "wrong version number" in reason or "record layer failure" in reason:
        hint = " (is the server speaking plain HTTP?)"
    return TLSFailed(f"TLS handshake with {target} failed: {reason}{hint}")


def never_sent(exc: httpx.TransportError) -> bool:
    """Whether the request cannot have reached the server (safe to retry any method)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    if isinstance(exc, httpx.ConnectError):
        return not any(isinstance(c, ssl.SSLError) for c in _chain(exc))
    return False
