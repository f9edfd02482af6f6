"""Authentication of outbound HTTP, and OAuth 2.0 client credentials tokens.

``authentication`` picks a system's: none, HTTP Basic (``User``/``Password``), a client
certificate (presented by :mod:`.tls`), or, when ``OAuth2TokenServiceURL`` is set, an OAuth
2.0 client credentials token (client id ``User`` or ``client_id``, secret ``Password``, scope
``OAuth2TokenScope``; ``AuthType`` Basic or Form), cached until shortly before it expires
and fetched again once when the back-end answers 401.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import AsyncGenerator, Generator

import anyio
import httpx
import orjson

from provisor.connectors.base import AuthenticationFailed, BackendError, ConnectorConfig, excerpt
from provisor.connectors.tls import where
from provisor.errors import ConfigError

TOKEN_EARLY_REFRESH = 60.0  # seconds before expiry when a cached token is renewed


class OAuth2ClientCredentials(httpx.Auth):
    """Bearer tokens from a token service (RFC 6749 §4.4), cached and renewed.

    The token request goes through the connector's own client, so it uses the same TLS
    settings (OAuth with a client certificate sends only ``client_id``).
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        secret: str | None,
        *,
        scope: str | None = None,
        in_form: bool = False,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = secret
        self.scope = scope
        self.in_form = in_form or secret is None
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = anyio.Lock()
        self.fetched = 0  # tokens obtained, for tests and diagnostics

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("OAuth2ClientCredentials works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = self._cached()
        if token is None:
            async with self._lock:
                token = self._cached()
                if token is None:
                    answer = yield self._token_request()
                    await answer.aread()
                    token = self._store(answer)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:  # refresh once: the token may have been revoked or expired
            if self._token == token:
                self._token = None
            fresh = self._cached()
            if fresh is None:
                answer = yield self._token_request()
                await answer.aread()
                fresh = self._store(answer)
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request

    def invalidate(self) -> None:
        self._token = None

    def _cached(self) -> str | None:
        if self._token is not None and time.monotonic() < self._renew_at:
            return self._token
        return None

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if self.in_form:
            form["client_id"] = self.client_id
            if self._secret is not None:
                form["client_secret"] = self._secret
        else:
            pair = f"{self.client_id}:{self._secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def _store(self, response: httpx.Response) -> str:
        url = where(response.request.url) + response.request.url.path
        if response.status_code in (400, 401, 403):
            detail = error_detail(response)
            raise AuthenticationFailed(
                f"The token service {url} refused the client credentials "
                f"(HTTP {response.status_code}{': ' + detail if detail else ''})."
            )
        if response.status_code >= 400:
            raise BackendError(
                f"The token service {url} failed: HTTP {response.status_code}.",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        try:
            body = orjson.loads(response.content)
            token = body["access_token"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise BackendError(
                f"The token service {url} answered without an access_token in JSON."
            ) from None
        if not isinstance(token, str) or not token:
            raise BackendError(f"The token service {url} answered an empty access_token.")
        lifetime = body.get("expires_in")
        try:
            seconds = float(lifetime) if lifetime is not None else math.inf
        except (TypeError, ValueError):
            seconds = math.inf
        early = min(TOKEN_EARLY_REFRESH, seconds / 10)
        self._token = token
        self._renew_at = time.monotonic() + max(0.0, seconds - early)
        self.fetched += 1
        return token


def authentication(config: ConnectorConfig) -> tuple[httpx.Auth | None, str]:
    """The httpx authentication of a system and a short description of it (no secret)."""
    method = config.get("Authentication")
    user, password = config.get("User"), config.get("Password")
    token_url = config.get("OAuth2TokenServiceURL")
    if method is None:  # unset: what the credentials present imply
        method = "BasicAuthentication" if user else "NoAuthentication"
    if method == "NoAuthentication":
        return None, "no authentication"
    if method == "ClientCertificateAuthentication":
        client_id = config.get("client_id")
        if token_url and client_id:
            auth = OAuth2ClientCredentials(
                token_url, client_id, None, scope=config.get("OAuth2TokenScope"), in_form=True
            )
            return auth, f"OAuth 2.0 with a client certificate (client {client_id})"
        return None, "client certificate"
    if method != "BasicAuthentication":
        raise ConfigError(
            f"System {config.system_name}: Authentication must be NoAuthentication, "
            f"BasicAuthentication or ClientCertificateAuthentication, not {method!r}."
        )
    if not user:
        raise ConfigError(f"System {config.system_name}: BasicAuthentication needs a User.")
    if token_url:
        auth_type = config.get("AuthType", "Basic")
        if auth_type not in ("Basic", "Form"):
            raise ConfigError(
                f"System {config.system_name}: AuthType must be Basic or Form, not {auth_type!r}."
            )
        auth = OAuth2ClientCredentials(
            token_url,
            user,
            password or "",
            scope=config.get("OAuth2TokenScope"),
            in_form=auth_type == "Form",
        )
        return auth, f"OAuth 2.0 client credentials (client {user})"
    return httpx.BasicAuth(user, password or ""), f"HTTP Basic (user {user})"


def error_detail(response: httpx.Response) -> str:
    """What the back-end said went wrong: SCIM ``detail``/``scimType``, OAuth
    ``error_description``, or a JSON ``message``; empty when the body is not JSON."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = []
    for key in ("scimType", "error"):
        if isinstance(body.get(key), str):
            parts.append(body[key])
    for key in ("detail", "error_description", "message", "title"):
        value = body.get(key)
        if isinstance(value, str) and value:
            parts.append(value)
            break
    if not parts and isinstance(body.get("error"), dict):  # {"error": {"message": ...}}
        message = body["error"].get("message")
        if isinstance(message, str):
            parts.append(message)
    return excerpt(": ".join(parts))
