"""Outbound HTTP for the connectors of HTTP systems: one pooled client per connector.

``HTTPClient`` is built from a system's connection properties (spec §2.2) and sends every
request of one connector:

- TLS (:mod:`.tls`): certificates are verified unless ``TrustAll=true``;
  ``ClientCertificateAuthentication`` presents the system's client certificate (mTLS).
- Authentication (:mod:`.oauth`): HTTP Basic (``User``/``Password``), or, when
  ``OAuth2TokenServiceURL`` is set, an OAuth 2.0 client credentials token, cached and renewed.
- ``ips.http.header.<Name>`` headers on every request (never ``Authorization`` when
  credentials are configured); a CSRF token fetched before the first write when
  ``<prefix>.api.csrf.protection=enabled``.
- Rate limits: 429/503 with ``Retry-After`` (seconds or an HTTP date) are waited out and
  retried up to 3 times when the wait is at most 60 s; otherwise ``RateLimited``.
- Connection failures are retried for idempotent methods, and for any method only when the
  request cannot have reached the server (the connection was never established). A failed
  TLS handshake (an untrusted server, or a server refusing the client certificate, also when
  its alert arrives after the handshake as with TLS 1.3) is ``TLSFailed``: never retried.
- Errors become :mod:`provisor.connectors.base` errors with a message fit for a job log:
  never a credential, never a header.
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import orjson
import structlog

from provisor.connectors.base import (
    AuthenticationFailed,
    BackendError,
    ConnectorConfig,
    ConnectorError,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    RateLimited,
    excerpt,
)
from provisor.connectors.oauth import OAuth2ClientCredentials, authentication, error_detail
from provisor.connectors.outbound import unusable_url
from provisor.connectors.tls import (
    connection_error,
    never_sent,
    pooled_transport,
    tls_failed,
    where,
)
from provisor.errors import ConfigError

__all__ = [  # with the names the connectors import from here, though defined elsewhere
    "HTTPClient",
    "OAuth2ClientCredentials",
    "retry_after",
    "setting",
    "status_error",
    "where",
]

log = structlog.get_logger("provisor.connectors.http")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
RATE_LIMIT_RETRIES = 3  # waits of a 429/503 with Retry-After, per request
RATE_LIMIT_MAX_WAIT = 60.0  # seconds; a longer Retry-After is raised as RateLimited
CONNECTION_RETRY_DELAYS = (0.1, 0.5)  # seconds before each retry of a failed connection
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
HEADER_PREFIX = "ips.http.header."
CSRF_HEADER = "X-CSRF-Token"


def setting(config: ConnectorConfig, prefixes: Sequence[str], name: str) -> str | None:
    """``<prefix>.<name>`` for the first prefix that has it: the system's own prefix is
    given first, so ``ias.X`` wins over the legacy ``scim.X`` (spec §2.1)."""
    for prefix in prefixes:
        value = config.get(f"{prefix}.{name}")
        if value is not None:
            return value
    return None


def status_error(status: int, what: str, detail: str = "") -> ConnectorError:
    """The connector error of an HTTP status; ``what`` names the request ("POST /Users")."""
    said = f": {excerpt(detail)}" if detail else ""
    if status in (401, 403):
        reason = "rejected the credentials" if status == 401 else "denied access"
        return AuthenticationFailed(f"{what}: the back-end {reason} (HTTP {status}){said}")
    if status == 404:
        return EntityNotFound(f"{what}: not found (HTTP 404){said}")
    if status in (409, 412):
        return EntityConflict(f"{what}: conflict (HTTP {status}){said}")
    if status in (400, 413, 422):
        return InvalidEntity(f"{what}: refused as invalid (HTTP {status}){said}")
    if status == 429:
        return RateLimited(f"{what}: too many requests (HTTP 429){said}")
    if status >= 500:
        return BackendError(
            f"{what}: the back-end failed (HTTP {status}){said}", retryable=status != 501
        )
    return ConnectorError(f"{what}: HTTP {status}{said}")


def retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


# -- the client -----------------------------------------------------------------------------------


class HTTPClient:
    """Every request of one connector, through one pooled ``httpx.AsyncClient``.

    ``request`` returns the response of a successful request (2xx) and raises a
    ``ConnectorError`` for everything else; ``json`` also decodes the body.
    """

    def __init__(
        self,
        config: ConnectorConfig,
        *,
        base_url: str | None = None,
        prefixes: Sequence[str] = (),
        content_type: str = "application/json",
        accept: str = "application/json",
        csrf_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout | None = None,
        max_connections: int = 32,
    ) -> None:
        self.config = config
        self.prefixes = tuple(prefixes)
        url = base_url or config.get("URL")
        if not url:
            raise ConfigError(f"System {config.system_name} has no URL.")
        problem = unusable_url(url)
        if problem is not None:  # saved before the check on save, or a CSRF/token URL
            raise ConfigError(f"System {config.system_name}: {problem}.")
        self.base_url = url
        self.content_type = content_type
        self.auth, self.auth_description = authentication(config)
        self.timeout = timeout or httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        headers = {"Accept": accept}
        for key, value in config.properties.items():
            if key.startswith(HEADER_PREFIX) and value:
                name = key[len(HEADER_PREFIX) :]
                if name.lower() == "authorization" and self.auth is not None:
                    continue  # never override configured credentials (spec §2.2)
                headers[name] = value
        if transport is None:
            transport = pooled_transport(config, url, max_connections=max_connections)
        # trust_env=False: no .netrc credentials, and proxies only through the transport
        # above, which keeps the system's TLS settings (httpx's own would not).
        self.client = httpx.AsyncClient(
            base_url=url,
            auth=self.auth,
            headers=headers,
            timeout=self.timeout,
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )
        csrf = setting(config, self.prefixes, "api.csrf.protection")
        self.csrf_url: str | None = None
        if csrf is not None and csrf.lower() == "enabled":
            path = setting(config, self.prefixes, "csrf.token.path") or config.get(
                "csrf.token.path"
            )
            self.csrf_url = url.rstrip("/") + path if path else (csrf_url or url)
        self._csrf_token: str | None = None
        self._csrf_lock = anyio.Lock()

    async def aclose(self) -> None:
        await self.client.aclose()

    # -- requests ---------------------------------------------------------------------------

    async def json(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> Any:
        """The decoded JSON body of a successful request; None for an empty body (204)."""
        response = await self.request(
            method, url, params=params, body=body, headers=headers, limit=limit
        )
        return self.decode(response)

    def decode(self, response: httpx.Response) -> Any:
        if not response.content.strip():
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("Content-Type", "no content type").split(";")[0]
            raise BackendError(
                f"{self._what(response.request)}: the back-end answered {kind}, not JSON "
                f"(HTTP {response.status_code}, {len(response.content)} bytes)"
            ) from None

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        limit: int | None = None,
    ) -> httpx.Response:
        """The response of a successful request (2xx); with ``limit``, a body of more bytes
        (decoded) is a BackendError."""
        method = method.upper()
        sent = dict(headers or {})
        content: bytes | None = None
        if body is not None:
            content = orjson.dumps(body)
            sent.setdefault("Content-Type", self.content_type)
        csrf_retried = False
        waits = 0
        failures = 0
        while True:
            if self.csrf_url is not None and method not in ("GET", "HEAD", "OPTIONS"):
                sent[CSRF_HEADER] = await self._csrf()
            try:
                request = self.client.build_request(
                    method, url, params=params, content=content, headers=sent
                )
                response = await self._send(request, limit)
            except httpx.TransportError as exc:
                error = connection_error(exc, self.timeout)
                safe = method in IDEMPOTENT or never_sent(exc)
                final = not error.retryable or error.message.startswith("Cannot resolve")
                if safe and not final and failures < len(CONNECTION_RETRY_DELAYS):
                    log.info("connection retry", system=self.config.system_id, error=error.message)
                    await anyio.sleep(CONNECTION_RETRY_DELAYS[failures])
                    failures += 1
                    continue
                raise error from exc
            except ssl.SSLError as exc:  # an alert read after the handshake: httpcore lets it by
                raise tls_failed(exc, where(self.client.build_request(method, url).url)) from exc
            except (httpx.InvalidURL, UnicodeError) as exc:  # UnicodeError: an IDNA host name
                raise ConfigError(f"System {self.config.system_name}: invalid URL: {exc}") from exc
            except httpx.HTTPError as exc:  # e.g. a body that cannot be decoded
                raise BackendError(f"{method} {httpx.URL(url).path}: {excerpt(str(exc))}") from exc
            status = response.status_code
            if status < 300:
                return response
            if status < 400:  # e.g. to a logon page: the URL or the credentials are wrong
                target = httpx.URL(response.headers.get("Location", ""))
                to = f" to {where(target)}{target.path}" if target.is_absolute_url else ""
                raise ConnectorError(
                    f"{self._what(response.request)}: the back-end redirects (HTTP {status})"
                    f"{to}; check the URL"
                )
            if (
                status == 403
                and self.csrf_url is not None
                and not csrf_retried
                and response.headers.get(CSRF_HEADER, "").lower() == "required"
            ):
                self._csrf_token = None  # expired: fetch a new one, once
                csrf_retried = True
                continue
            if status in (429, 503):
                wait = retry_after(response)
                if wait is not None and wait <= RATE_LIMIT_MAX_WAIT and waits < RATE_LIMIT_RETRIES:
                    log.info(
                        "rate limited",
                        system=self.config.system_id,
                        status=status,
                        wait=wait,
                    )
                    await anyio.sleep(wait)
                    waits += 1
                    continue
                if wait is not None or status == 429:
                    raise RateLimited(
                        f"{self._what(response.request)}: the back-end asks to slow down "
                        f"(HTTP {status}"
                        + (f", retry after {wait:.0f} s)" if wait is not None else ")"),
                        retry_after=wait,
                    )
            raise status_error(status, self._what(response.request), error_detail(response))

    async def _send(self, request: httpx.Request, limit: int | None) -> httpx.Response:
        """Send a request; with ``limit``, read at most that many bytes of the (decoded) body."""
        if limit is None:
            return await self.client.send(request)
        response = await self.client.send(request, stream=True)
        body = bytearray()
        try:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise BackendError(
                        f"{self._what(request)}: the answer is larger than {limit:,} bytes"
                    )
        finally:
            await response.aclose()
        headers = [  # the body is decoded already: no encoding to undo again
            (k, v)
            for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=request
        )

    async def _csrf(self) -> str:
        token = self._csrf_token
        if token is not None:
            return token
        async with self._csrf_lock:
            if self._csrf_token is None:
                assert self.csrf_url is not None
                response = await self.request("GET", self.csrf_url, headers={CSRF_HEADER: "Fetch"})
                token = response.headers.get(CSRF_HEADER)
                if not token or token.lower() == "required":
                    raise BackendError(
                        f"GET {httpx.URL(self.csrf_url).path}: no {CSRF_HEADER} in the answer; "
                        "check csrf.token.path"
                    )
                self._csrf_token = token
            return self._csrf_token

    @staticmethod
    def _what(request: httpx.Request) -> str:
        return f"{request.method} {request.url.path}"
