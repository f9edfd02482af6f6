"""Single sign-on with an external OpenID Connect provider, for the console's administrators.

The authorization code flow with PKCE (S256), a state and a nonce, through Authlib: its
discovery metadata checks, grant URI, client authentication, PKCE challenge and ID token
claim rules, and its JOSE library (joserfc) for the signature. The console keeps the flow's
:class:`LoginState` in a cookie sealed with AES-GCM (:func:`seal`, :func:`open_sealed`).

Every HTTP call goes through a transport the composition root lends (the outbound policy's:
the issuer is an administrator's input, so SSRF rules apply), with timeouts, no redirects and
a bounded answer. Discovery documents and key sets are cached per issuer for
``CACHE_SECONDS``; an ID token signed with a key the cached set lacks fetches the set again
once. Every failure is an :class:`AuthenticationError` whose message the login page can
show: it never holds a token, a code or the client secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import orjson
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.errors import ClaimError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from provisor.admins.model import Role
from provisor.errors import AuthenticationError, ProvisorError

# Asymmetric signatures only: never "none", never a MAC keyed with the client secret.
ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
AUTH_METHODS = ("client_secret_basic", "client_secret_post")  # in the order preferred
LEEWAY = 60  # seconds of clock skew allowed on exp, iat and nbf
STATE_MAX_AGE = 600  # seconds a sign-in may take, from the redirect to the callback
CACHE_SECONDS = 600.0  # how long a discovery document and a key set are reused
MAX_CACHED = 256  # issuers (and key sets) cached at once; the oldest goes first
MAX_RESPONSE_BYTES = 512 * 1024
MAX_KEYS = 64
MAX_SEALED = 2048  # characters of a sealed state
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
SEAL_VERSION = "v1"
SEAL_CONTEXT = b"provisor console sso login state v1"
DEFAULT_SCOPES = "openid profile email"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Provider:
    """A tenant's identity provider and how its claim maps to console roles."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    role_claim: str = "groups"  # a claim name, or a dotted path to a nested one
    administrator_values: tuple[str, ...] = ()
    viewer_values: tuple[str, ...] = ()
    scopes: str = DEFAULT_SCOPES


@dataclass(frozen=True, slots=True)
class LoginState:
    """What the console remembers between the redirect to the provider and the callback."""

    state: str
    nonce: str = field(repr=False)
    code_verifier: str = field(repr=False)
    created: float  # seconds since the epoch

    @classmethod
    def new(cls, now: float | None = None) -> LoginState:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters (RFC 7636: 43 to 128)
            created=time.time() if now is None else now,
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed in, as the provider's ID token says."""

    subject: str
    issuer: str
    name: str
    email: str | None
    role: Role | None
    claims: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What provisor uses of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]  # of ID token signatures, those provisor accepts
    auth_method: str  # how the client authenticates at the token endpoint


# -- problems of the settings -----------------------------------------------------------------


def issuer_problem(issuer: str) -> str | None:
    """Why ``issuer`` cannot be an issuer, or None: an https URL (http only on loopback)
    without query, fragment or user info (OpenID Connect Discovery §2)."""
    try:
        parts = urlsplit(issuer)
        host = parts.hostname
    except ValueError:
        return f"{issuer[:200]!r} is not a URL"
    if parts.scheme not in ("https", "http") or not host:
        return f"{issuer[:200]!r} is not an https URL"
    if parts.scheme == "http" and not _loopback(host):
        return f"the issuer must use https ({issuer[:200]!r} uses http)"
    if parts.query or parts.fragment or "#" in issuer:
        return "the issuer may have no query or fragment"
    if parts.username is not None or parts.password is not None:
        return "the issuer may hold no user name or password"
    return None


def provider_problems(provider: Provider) -> list[str]:
    """Everything wrong with a provider's settings (empty when it can be used)."""
    problems = []
    problem = issuer_problem(provider.issuer)
    if problem is not None:
        problems.append(problem)
    if not provider.client_id.strip():
        problems.append("the client id is empty")
    if not provider.client_secret:
        problems.append("the client secret is empty")
    if not provider.role_claim.strip() or any(not p for p in provider.role_claim.split(".")):
        problems.append(f"{provider.role_claim!r} is not a claim name or a dotted path")
    if not any(v.strip() for v in provider.administrator_values + provider.viewer_values):
        problems.append("no claim value maps to a role: give administrator or viewer values")
    if "openid" not in provider.scopes.split():
        problems.append("the scopes must include openid")
    return problems


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the sealed login state -------------------------------------------------------------------

_ALTERED = (
    "The sign-in could not be verified (its cookie is missing or was altered): start it again."
)


def seal(key: bytes, state: LoginState) -> str:
    """The login state encrypted and authenticated with ``key`` (16, 24 or 32 bytes)."""
    payload = orjson.dumps([state.state, state.nonce, state.code_verifier, state.created])
    iv = secrets.token_bytes(12)
    sealed = iv + AESGCM(key).encrypt(iv, payload, SEAL_CONTEXT)
    return f"{SEAL_VERSION}.{base64.urlsafe_b64encode(sealed).decode('ascii').rstrip('=')}"


def open_sealed(
    key: bytes, token: str, max_age: float = STATE_MAX_AGE, *, now: float | None = None
) -> LoginState:
    """The login state :func:`seal` made, or AuthenticationError when it was altered, sealed
    with another key or version, or is older than ``max_age`` seconds."""
    version, _, body = token.partition(".")
    if version != SEAL_VERSION or not body or len(token) > MAX_SEALED:
        raise AuthenticationError(_ALTERED)
    try:
        sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        payload = AESGCM(key).decrypt(sealed[:12], sealed[12:], SEAL_CONTEXT)
        state, nonce, verifier, created = orjson.loads(payload)
    except (binascii.Error, ValueError, InvalidTag, orjson.JSONDecodeError, TypeError) as exc:
        raise AuthenticationError(_ALTERED) from exc
    if not all(isinstance(v, str) for v in (state, nonce, verifier)) or not isinstance(
        created, int | float
    ):
        raise AuthenticationError(_ALTERED)
    age = (time.time() if now is None else now) - created
    if age > max_age or age < -LEEWAY:
        raise AuthenticationError(
            f"The sign-in took longer than {max_age / 60:g} minutes: start it again."
        )
    return LoginState(state, nonce, verifier, float(created))


# -- the client -------------------------------------------------------------------------------


class OidcClient:
    """The relying party: starts sign-ins and finishes them into an :class:`Identity`.

    ``transport`` makes the transport of each sign-in's HTTP client (the composition root's
    applies the outbound policy and verifies TLS); ``clock`` is monotonic, for the caches.
    """

    def __init__(
        self,
        transport: Callable[[], httpx.AsyncBaseTransport],
        *,
        timeout: httpx.Timeout = TIMEOUT,
        cache_seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._discoveries: OrderedDict[str, tuple[float, Discovery]] = OrderedDict()
        self._key_sets: OrderedDict[str, tuple[float, KeySet]] = OrderedDict()

    async def discover(self, issuer: str, *, fresh: bool = False) -> Discovery:
        """The provider's discovery document, cached unless ``fresh`` ("Test discovery")."""
        async with self._client() as client:
            return await self._discovery(client, issuer, fresh=fresh)

    async def authorization_url(
        self, provider: Provider, redirect_uri: str, *, now: float | None = None
    ) -> tuple[str, LoginState]:
        """Where to send the browser to sign in, and the state to keep until the callback."""
        discovery = await self.discover(provider.issuer)
        login = LoginState.new(now)
        url = prepare_grant_uri(
            discovery.authorization_endpoint,
            client_id=provider.client_id,
            response_type="code",
            redirect_uri=redirect_uri,
            scope=provider.scopes,
            state=login.state,
            nonce=login.nonce,
            code_challenge=create_s256_code_challenge(login.code_verifier),
            code_challenge_method="S256",
        )
        return str(url), login

    async def finish(
        self,
        provider: Provider,
        redirect_uri: str,
        state: LoginState,
        params: Mapping[str, str],
        *,
        now: float | None = None,
    ) -> Identity:
        """The identity of the callback's parameters: the state checked, the code exchanged,
        the ID token verified and its role claim mapped."""
        matches = hmac.compare_digest(params.get("state", "").encode(), state.state.encode())
        if "error" in params:
            # Some providers send their error without the state: its code is shown then, not
            # its description (anyone could have written that into the link).
            said = _said(params) if matches else _code(params["error"])
            raise AuthenticationError(f"The identity provider refused the sign-in: {said}.")
        if not matches:
            raise AuthenticationError(
                "The sign-in's state does not match this browser's: start the sign-in again."
            )
        code = params.get("code")
        if not code:
            raise AuthenticationError("The identity provider sent no authorization code.")
        async with self._client() as client:
            discovery = await self._discovery(client, provider.issuer)
            tokens = await self._exchange(client, discovery, provider, redirect_uri, state, code)
            id_token = tokens.get("id_token")
            if not isinstance(id_token, str) or not id_token:
                raise AuthenticationError(
                    "The identity provider's token response has no ID token: is the openid "
                    "scope allowed for this client?"
                )
            claims = await self._verify(
                client, discovery, provider, id_token, state.nonce, tokens, now
            )
        return identity(provider, claims)

    # -- HTTP -------------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        # trust_env=False: no .netrc, no environment proxies around the transport's policy.
        return httpx.AsyncClient(
            transport=self.transport(),
            timeout=self.timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"Accept": "application/json"},
        )

    async def _json(
        self, client: httpx.AsyncClient, what: str, method: str, url: str, **kwargs: Any
    ) -> tuple[int, dict[str, Any]]:
        """The status and JSON object of a response (an empty object for a body that is
        none); AuthenticationError when the provider cannot be reached or says nonsense."""
        target = _where(url)
        body = bytearray()
        try:
            async with client.stream(method, url, **kwargs) as response:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise AuthenticationError(
                            f"{what}: {target} answered more than {MAX_RESPONSE_BYTES // 1024} KiB."
                        )
                status = response.status_code
        except httpx.TimeoutException as exc:
            raise AuthenticationError(
                f"{what}: the identity provider at {target} did not answer in time."
            ) from exc
        except httpx.ConnectError as exc:
            raise AuthenticationError(
                f"{what}: the identity provider at {target} cannot be reached (no connection)."
            ) from exc
        except httpx.HTTPError as exc:
            raise AuthenticationError(
                f"{what}: the exchange with the identity provider at {target} failed "
                f"({type(exc).__name__})."
            ) from exc
        except AuthenticationError:
            raise
        except ProvisorError as exc:  # the outbound policy refused the destination
            raise AuthenticationError(f"{what}: {exc.message}") from exc
        try:
            data = orjson.loads(body) if body.strip() else {}
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise AuthenticationError(
                f"{what}: {target} answered HTTP {status} without a JSON object."
            )
        return status, data

    async def _discovery(
        self, client: httpx.AsyncClient, issuer: str, *, fresh: bool = False
    ) -> Discovery:
        cached = None if fresh else self._cached(self._discoveries, issuer)
        if cached is not None:
            return cached
        problem = issuer_problem(issuer)
        if problem is not None:
            raise AuthenticationError(f"Single sign-on is not usable: {problem}.")
        what = f"Discovery of {issuer}"
        status, data = await self._json(
            client, what, "GET", issuer.rstrip("/") + "/.well-known/openid-configuration"
        )
        if status != 200:
            raise AuthenticationError(f"{what}: the provider answered HTTP {status}.")
        if data.get("issuer") != issuer:
            raise AuthenticationError(
                f"{what}: the provider names its issuer {str(data.get('issuer'))[:200]!r}; "
                "set the issuer exactly so."
            )
        try:
            OpenIDProviderMetadata(data).validate()
        except (ValueError, TypeError, KeyError) as exc:
            raise AuthenticationError(f"{what}: the discovery document is invalid: {exc}") from exc
        if "code" not in data.get("response_types_supported", ()):
            raise AuthenticationError(f"{what}: the provider does not offer the code flow.")
        # Authlib's checks require RS256 among them: the intersection is never empty
        offered = data["id_token_signing_alg_values_supported"]
        algorithms = tuple(a for a in ALGORITHMS if a in offered)
        methods = data.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        method = next((m for m in AUTH_METHODS if m in methods), None)
        if method is None:
            raise AuthenticationError(
                f"{what}: the provider's token endpoint accepts neither client_secret_basic "
                "nor client_secret_post."
            )
        discovery = Discovery(
            issuer=issuer,
            authorization_endpoint=str(data["authorization_endpoint"]),
            token_endpoint=str(data["token_endpoint"]),
            jwks_uri=str(data["jwks_uri"]),
            algorithms=algorithms,
            auth_method=method,
        )
        self._keep(self._discoveries, issuer, discovery)
        return discovery

    async def _keys(
        self, client: httpx.AsyncClient, discovery: Discovery, *, fresh: bool = False
    ) -> KeySet:
        cached = None if fresh else self._cached(self._key_sets, discovery.jwks_uri)
        if cached is not None:
            return cached
        what = f"The signing keys of {discovery.issuer}"
        status, data = await self._json(client, what, "GET", discovery.jwks_uri)
        keys = data.get("keys")
        if status != 200 or not isinstance(keys, list):
            raise AuthenticationError(f"{what}: {discovery.jwks_uri} answered no key set.")
        if len(keys) > MAX_KEYS:
            raise AuthenticationError(f"{what}: more than {MAX_KEYS} keys.")
        signing = [k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig"]
        try:
            key_set = KeySet.import_key_set({"keys": signing})
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise AuthenticationError(f"{what}: the key set cannot be read ({exc}).") from exc
        self._keep(self._key_sets, discovery.jwks_uri, key_set)
        return key_set

    def _cached(self, cache: OrderedDict[str, tuple[float, T]], key: str) -> T | None:
        entry = cache.get(key)
        if entry is None or self.clock() - entry[0] >= self.cache_seconds:
            return None
        return entry[1]

    def _keep(self, cache: OrderedDict[str, tuple[float, T]], key: str, value: T) -> None:
        cache[key] = (self.clock(), value)
        cache.move_to_end(key)
        while len(cache) > MAX_CACHED:
            cache.popitem(last=False)

    # -- the code and the ID token ------------------------------------------------------------

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        discovery: Discovery,
        provider: Provider,
        redirect_uri: str,
        state: LoginState,
        code: str,
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": state.code_verifier,
        }
        headers = {}
        if discovery.auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: each form-encoded before the Basic encoding
            pair = f"{quote(provider.client_id, safe='')}:{quote(provider.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": provider.client_id, "client_secret": provider.client_secret}
        what = f"The token request to {discovery.issuer}"
        status, data = await self._json(
            client, what, "POST", discovery.token_endpoint, data=form, headers=headers
        )
        if status != 200:
            if "error" in data:
                raise AuthenticationError(
                    f"The identity provider refused the authorization code: {_said(data)}."
                )
            raise AuthenticationError(f"{what}: the provider answered HTTP {status}.")
        return data

    async def _verify(
        self,
        client: httpx.AsyncClient,
        discovery: Discovery,
        provider: Provider,
        id_token: str,
        nonce: str,
        tokens: Mapping[str, Any],
        now: float | None,
    ) -> dict[str, Any]:
        keys = await self._keys(client, discovery)
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=list(discovery.algorithms))
            except InvalidKeyIdError:  # the provider rolled its keys: read them again, once
                keys = await self._keys(client, discovery, fresh=True)
                token = jwt.decode(id_token, keys, algorithms=list(discovery.algorithms))
        except InvalidKeyIdError as exc:
            raise AuthenticationError(
                "The ID token is signed with a key the identity provider does not publish."
            ) from exc
        except (JoseError, ValueError) as exc:
            raise AuthenticationError(
                f"The ID token's signature cannot be verified ({_jose(exc)})."
            ) from exc
        access_token = tokens.get("access_token")
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": discovery.issuer},
                "aud": {"essential": True, "value": provider.client_id},
                "sub": {"essential": True},
            },
            params={
                "nonce": nonce,
                "client_id": provider.client_id,
                "access_token": access_token if isinstance(access_token, str) else None,
            },
        )
        try:
            claims.validate(now=int(time.time() if now is None else now), leeway=LEEWAY)
        except JoseError as exc:
            raise AuthenticationError(f"The ID token is not valid: {_jose(exc)}.") from exc
        return dict(claims)


# -- the identity -----------------------------------------------------------------------------


def claim_values(claims: Mapping[str, Any], path: str) -> list[str]:
    """The strings of a claim: a claim named ``path`` itself (URL-like names have dots), else
    the dotted path through nested objects; a string is one value, a list its strings."""
    value: Any = claims.get(path)
    if value is None and "." in path:
        value = claims
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def role_of(provider: Provider, claims: Mapping[str, Any]) -> Role | None:
    """Administrator when the claim holds an administrator value, else viewer when it holds a
    viewer value, else None (no console access)."""
    values = set(claim_values(claims, provider.role_claim))
    if values & set(provider.administrator_values):
        return Role.ADMINISTRATOR
    if values & set(provider.viewer_values):
        return Role.VIEWER
    return None


def identity(provider: Provider, claims: Mapping[str, Any]) -> Identity:
    """The identity of a verified ID token's claims."""
    subject = str(claims["sub"])
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    username = claims.get("preferred_username")
    name = username if isinstance(username, str) and username else email or subject
    return Identity(
        subject=subject,
        issuer=str(claims["iss"]),
        name=name,
        email=email,
        role=role_of(provider, claims),
        claims=claims,
    )


def _code(error: object) -> str:
    """An OAuth error code (RFC 6749 §4.1.2.1: ASCII), without any other character."""
    return "".join(c for c in str(error)[:64] if c.isascii() and (c.isalnum() or c in "_.-"))


def _said(data: Mapping[str, Any]) -> str:
    """An OAuth error and its description, clipped: the provider's words, never a token."""
    error = _code(data.get("error", ""))
    description = data.get("error_description")
    return f"{error} ({str(description)[:300]})" if description else error


def _jose(exc: JoseError | ValueError) -> str:
    if isinstance(exc, ClaimError):
        said = str(exc.description)
        return (said if f"'{exc.claim}'" in said else f"claim '{exc.claim}': {said}")[:200]
    return str(getattr(exc, "description", None) or exc)[:200]


def _where(url: str) -> str:
    """Scheme, host and port of a URL: never its path or query."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "the identity provider"
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"
