"""Single sign-on with OpenID Connect (provisor.admins.oidc) against providers on loopback.

A real provider (oidc-provider-mock, built on Authlib and Flask) runs the whole code flow:
the browser's part is followed with httpx, submitting the provider's form for a subject
whose ``groups`` claim maps to a role. A forged provider (a small WSGI app serving discovery,
keys and a token endpoint whose ID token the test writes) is the "second provider" that
signs what a real one should not: another issuer or audience, no signature, expired...
"""

from __future__ import annotations

import base64
import hashlib
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio.to_thread
import httpx
import orjson
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey
from werkzeug.wrappers import Request, Response

from provisor.admins.model import Role
from provisor.admins.oidc import (
    MAX_RESPONSE_BYTES,
    LoginState,
    OidcClient,
    Provider,
    open_sealed,
    provider_problems,
    role_of,
    seal,
)
from provisor.connectors.outbound import DEFAULT, GuardedTransport, OutboundPolicy
from provisor.errors import AuthenticationError
from tests.oidc_provider import (
    ADMINS,
    VIEWERS,
    callback_params,
    consent,
    mock_provider,
    serving,
)

pytestmark = pytest.mark.anyio

REDIRECT = "http://127.0.0.1:9/console/login/sso/callback"


def guarded(policy: OutboundPolicy = DEFAULT) -> Callable[[], httpx.AsyncBaseTransport]:
    """The transport the composition root lends: the outbound policy on every connection."""
    return lambda: GuardedTransport(
        policy, verify=ssl.create_default_context(), limits=httpx.Limits(max_connections=4)
    )


def provider(issuer: str, **changes: Any) -> Provider:
    values: dict[str, Any] = {
        "issuer": issuer,
        "client_id": "provisor-console",
        "client_secret": "s3cret:with/odd chars",
        "role_claim": "groups",
        "administrator_values": (ADMINS,),
        "viewer_values": (VIEWERS,),
    }
    return Provider(**(values | changes))


# -- the real provider --------------------------------------------------------------------------


@pytest.fixture
def mock_issuer() -> Iterator[str]:
    with mock_provider() as issuer:
        yield issuer


async def authorize(url: str, subject: str | None) -> dict[str, str]:
    """The browser's part; the callback's query parameters."""
    location = await anyio.to_thread.run_sync(consent, url, subject)
    assert location.startswith(REDIRECT + "?")
    return callback_params(location)


async def test_the_code_flow_maps_the_groups_claim_to_roles(mock_issuer: str) -> None:
    client = OidcClient(guarded())
    settings = provider(mock_issuer)
    for subject, role, name, email in (
        ("alice", Role.ADMINISTRATOR, "alice", "a@x.org"),  # a list holding the value
        ("victor", Role.VIEWER, "v@x.org", "v@x.org"),  # a string; no username: the email
        ("mallory", None, "mallory", None),  # no value maps: no console role
    ):
        url, state = await client.authorization_url(settings, REDIRECT)
        query = dict(parse_qsl(urlsplit(url).query))
        assert query["response_type"] == "code" and query["client_id"] == "provisor-console"
        assert query["state"] == state.state and query["nonce"] == state.nonce
        assert query["redirect_uri"] == REDIRECT and query["scope"] == "openid profile email"
        assert query["code_challenge_method"] == "S256"
        digest = hashlib.sha256(state.code_verifier.encode()).digest()
        assert query["code_challenge"] == base64.urlsafe_b64encode(digest).decode().rstrip("=")
        params = await authorize(url, subject)
        identity = await client.finish(settings, REDIRECT, state, params)
        assert (identity.subject, identity.issuer) == (subject, mock_issuer)
        assert (identity.role, identity.name, identity.email) == (role, name, email)
        assert identity.claims["nonce"] == state.nonce
        assert "s3cret" not in repr(settings) and state.nonce not in repr(state)


async def test_the_state_must_match_and_a_denial_reads_clearly(mock_issuer: str) -> None:
    client = OidcClient(guarded())
    settings = provider(mock_issuer)
    url, state = await client.authorization_url(settings, REDIRECT)
    params = await authorize(url, "alice")
    with pytest.raises(AuthenticationError, match="state does not match"):
        await client.finish(settings, REDIRECT, state, params | {"state": "forged"})
    with pytest.raises(AuthenticationError, match="state does not match"):
        await client.finish(settings, REDIRECT, LoginState.new(), params)
    assert (await client.finish(settings, REDIRECT, state, params)).role is Role.ADMINISTRATOR

    url, state = await client.authorization_url(settings, REDIRECT)
    denied = await authorize(url, None)
    with pytest.raises(AuthenticationError, match="refused the sign-in: access_denied"):
        await client.finish(settings, REDIRECT, state, denied)
    with pytest.raises(AuthenticationError, match="no authorization code"):
        await client.finish(settings, REDIRECT, state, {"state": state.state})


async def test_a_code_is_used_once_and_only_with_its_own_nonce(mock_issuer: str) -> None:
    client = OidcClient(guarded())
    settings = provider(mock_issuer)
    url, first = await client.authorization_url(settings, REDIRECT)
    params = await authorize(url, "alice")
    # Another sign-in (another browser) cannot finish with the first one's code: the ID
    # token's nonce is the first sign-in's.
    _, second = await client.authorization_url(settings, REDIRECT)
    with pytest.raises(AuthenticationError, match=r"ID token is not valid.*nonce"):
        await client.finish(settings, REDIRECT, second, params | {"state": second.state})
    # That attempt spent the code: replaying it is refused by the provider.
    with pytest.raises(AuthenticationError, match="refused the authorization code: invalid_grant"):
        await client.finish(settings, REDIRECT, first, params)


async def test_a_code_of_one_provider_is_refused_by_another(mock_issuer: str) -> None:
    import oidc_provider_mock

    client = OidcClient(guarded())
    url, state = await client.authorization_url(provider(mock_issuer), REDIRECT)
    params = await authorize(url, "alice")
    with serving(oidc_provider_mock.app()) as other:
        with pytest.raises(AuthenticationError, match="refused the authorization code"):
            await client.finish(provider(other), REDIRECT, state, params)


async def test_an_unreachable_or_refused_provider_reads_clearly(mock_issuer: str) -> None:
    with serving(Response("gone", status=404)) as url:
        closed = url  # nothing listens there once the block ends
    client = OidcClient(guarded())
    with pytest.raises(AuthenticationError, match=f"{closed} cannot be reached"):
        await client.authorization_url(provider(closed), REDIRECT)
    private = OidcClient(guarded(OutboundPolicy(deny_private=True)))
    with pytest.raises(AuthenticationError, match="outbound policy refuses the connection"):
        await private.authorization_url(provider(mock_issuer), REDIRECT)
    with pytest.raises(AuthenticationError, match="must use https"):
        await client.authorization_url(provider("http://idp.example.org"), REDIRECT)


# -- the forged provider ------------------------------------------------------------------------


class Forged:
    """An OpenID provider whose ID tokens the test writes, signed with its published key."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "one"})
        self.published: list[Any] = [self.key]
        self.issuer = ""
        self.discovery: dict[str, Any] = {}
        self.claims: dict[str, Any] = {}
        self.header: dict[str, Any] = {"alg": "RS256", "kid": "one"}
        self.signer: Any = None  # another key to sign with
        self.raw_token: str | None = None
        self.jwks_body: bytes | None = None
        self.hits: dict[str, int] = {}
        self.token_requests: list[tuple[dict[str, str], str | None]] = []

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        if request.path == "/.well-known/openid-configuration":
            body = {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            } | self.discovery
            response = Response(orjson.dumps(body), mimetype="application/json")
        elif request.path == "/jwks":
            keys = KeySet(list(self.published)).as_dict()
            response = Response(self.jwks_body or orjson.dumps(keys), mimetype="application/json")
        elif request.path == "/token":
            self.token_requests.append((dict(request.form), request.headers.get("Authorization")))
            body = {"access_token": "at", "token_type": "Bearer", "id_token": self.id_token()}
            response = Response(orjson.dumps(body), mimetype="application/json")
        else:
            response = Response("not here", status=404)
        return response(environ, start_response)

    def id_token(self) -> str:
        if self.raw_token is not None:
            return self.raw_token
        return jwt.encode(
            self.header, self.claims, self.signer or self.key, algorithms=["RS256", "HS256"]
        )


@pytest.fixture
def forged() -> Iterator[Forged]:
    app = Forged()
    with serving(app) as url:
        app.issuer = url
        yield app


def claims_for(forged: Forged, state: LoginState, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": forged.issuer,
        "sub": "bob",
        "aud": "provisor-console",
        "iat": now,
        "exp": now + 300,
        "nonce": state.nonce,
        "roles": {"console": [ADMINS]},
    }
    return {k: v for k, v in (claims | changes).items() if v is not None}


async def finish(client: OidcClient, forged: Forged, **changes: Any):
    state = LoginState.new()
    forged.claims = claims_for(forged, state, **changes)
    settings = provider(forged.issuer, role_claim="roles.console")
    return await client.finish(settings, REDIRECT, state, {"state": state.state, "code": "c"})


async def test_a_valid_forged_token_passes_with_basic_client_authentication(
    forged: Forged,
) -> None:
    client = OidcClient(guarded())
    identity = await finish(client, forged)
    assert (identity.subject, identity.role, identity.name) == ("bob", Role.ADMINISTRATOR, "bob")
    form, authorization = forged.token_requests[-1]
    assert form["grant_type"] == "authorization_code" and form["code"] == "c"
    assert form["redirect_uri"] == REDIRECT and len(form["code_verifier"]) >= 43
    assert "client_secret" not in form and authorization is not None
    pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
    assert pair == "provisor-console:s3cret%3Awith%2Fodd%20chars"  # RFC 6749 §2.3.1

    forged.discovery = {"token_endpoint_auth_methods_supported": ["client_secret_post"]}
    post = OidcClient(guarded())  # a new client: the first one cached the discovery
    await finish(post, forged)
    form, authorization = forged.token_requests[-1]
    assert authorization is None and form["client_secret"] == "s3cret:with/odd chars"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://another.example.org"}, "not valid.*iss"),
        ({"aud": "another-client"}, "not valid.*aud"),
        ({"aud": ["another-client", "provisor-console"]}, "not valid.*azp"),  # no azp
        (
            {"aud": ["another-client", "provisor-console"], "azp": "another-client"},
            "not valid.*azp",
        ),
        ({"exp": int(time.time()) - 3600}, "not valid.*exp"),
        ({"iat": int(time.time()) + 3600}, "not valid.*iat"),
        ({"nonce": "replayed"}, "not valid.*nonce"),
        ({"nonce": None}, "not valid.*nonce"),
        ({"sub": None}, "not valid.*sub"),
    ],
)
async def test_forged_claims_are_refused(forged: Forged, changes: dict, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        await finish(OidcClient(guarded()), forged, **changes)


async def test_several_audiences_pass_with_the_client_as_authorized_party(forged: Forged) -> None:
    audiences = ["another-client", "provisor-console"]
    identity = await finish(OidcClient(guarded()), forged, aud=audiences, azp="provisor-console")
    assert identity.role is Role.ADMINISTRATOR


async def test_unsigned_and_wrongly_signed_tokens_are_refused(forged: Forged) -> None:
    client = OidcClient(guarded())
    state = LoginState.new()
    claims = claims_for(forged, state)

    def encoded(part: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(part)).decode().rstrip("=")

    forged.raw_token = f"{encoded({'alg': 'none'})}.{encoded(claims)}."
    settings = provider(forged.issuer)
    params = {"state": state.state, "code": "c"}
    with pytest.raises(AuthenticationError, match="signature cannot be verified"):
        await client.finish(settings, REDIRECT, state, params)
    forged.raw_token = None
    forged.claims = claims
    # a MAC (HS256) instead of a signature
    forged.header = {"alg": "HS256", "kid": "one"}
    forged.signer = OctKey.generate_key(256)
    with pytest.raises(AuthenticationError, match="signature cannot be verified"):
        await client.finish(settings, REDIRECT, state, params)
    # RS256 by a key the provider does not publish, under the published kid
    forged.header = {"alg": "RS256", "kid": "one"}
    forged.signer = RSAKey.generate_key(2048, parameters={"kid": "one"})
    with pytest.raises(AuthenticationError, match="signature cannot be verified"):
        await client.finish(settings, REDIRECT, state, params)
    # under a kid it never publishes: the key set is read again once, then refused
    before = forged.hits["/jwks"]
    forged.header = {"alg": "RS256", "kid": "unknown"}
    with pytest.raises(AuthenticationError, match="key the identity provider does not publish"):
        await client.finish(settings, REDIRECT, state, params)
    assert forged.hits["/jwks"] == before + 1


async def test_discovery_and_keys_are_cached_and_read_again_on_a_new_key(forged: Forged) -> None:
    now = [1000.0]
    client = OidcClient(guarded(), clock=lambda: now[0])
    await finish(client, forged)
    await client.authorization_url(provider(forged.issuer), REDIRECT)
    assert forged.hits["/.well-known/openid-configuration"] == 1 and forged.hits["/jwks"] == 1
    # the provider rolls its key: a token under the new kid reads the key set again
    forged.key = RSAKey.generate_key(2048, parameters={"kid": "two"})
    forged.published = [forged.key]
    forged.header = {"alg": "RS256", "kid": "two"}
    assert (await finish(client, forged)).subject == "bob"
    assert forged.hits["/jwks"] == 2
    await client.discover(forged.issuer, fresh=True)  # "Test discovery" reads it anew
    assert forged.hits["/.well-known/openid-configuration"] == 2
    now[0] += 601  # past the cache's time: discovery is read again
    await client.discover(forged.issuer)
    assert forged.hits["/.well-known/openid-configuration"] == 3


@pytest.mark.parametrize(
    ("discovery", "message"),
    [
        ({"issuer": "https://elsewhere.example.org"}, "names its issuer 'https://elsewhere"),
        ({"id_token_signing_alg_values_supported": ["HS256", "none"]}, "RS256.* MUST be included"),
        ({"token_endpoint_auth_methods_supported": ["tls_client_auth"]}, "neither client_sec"),
        ({"response_types_supported": ["id_token"]}, "does not offer the code flow"),
        ({"jwks_uri": None}, "discovery document is invalid"),
    ],
)
async def test_unusable_discovery_documents(forged: Forged, discovery: dict, message: str) -> None:
    forged.discovery = discovery
    with pytest.raises(AuthenticationError, match=message):
        await OidcClient(guarded()).discover(forged.issuer)


async def test_answers_are_bounded_and_redirects_not_followed(forged: Forged) -> None:
    forged.jwks_body = b'{"keys": [' + b" " * MAX_RESPONSE_BYTES + b"]}"
    with pytest.raises(AuthenticationError, match="answered more than 512 KiB"):
        await finish(OidcClient(guarded()), forged)
    redirect = Response("", status=302, headers={"Location": forged.issuer})
    with serving(redirect) as url:
        with pytest.raises(AuthenticationError, match="answered HTTP 302"):
            await OidcClient(guarded()).discover(url)


# -- the sealed state and the settings ----------------------------------------------------------


def test_a_sealed_state_opens_only_intact_with_its_key_within_ten_minutes() -> None:
    key = bytes(range(32))
    state = LoginState.new(now=5000.0)
    token = seal(key, state)
    assert token.startswith("v1.") and state.code_verifier not in token
    assert open_sealed(key, token, now=5000.0 + 599) == state
    assert seal(key, state) != token  # a fresh IV each time
    broken = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (broken, "v2" + token[2:], token + "x", "", "v1.", seal(bytes(32), state)):
        with pytest.raises(AuthenticationError, match="missing or was altered"):
            open_sealed(key, bad, now=5000.0)
    with pytest.raises(AuthenticationError, match="longer than 10 minutes"):
        open_sealed(key, token, now=5000.0 + 601)


def test_role_claims_by_name_path_and_type() -> None:
    settings = provider("https://idp.example.org", role_claim="realm_access.roles")
    assert role_of(settings, {"realm_access": {"roles": ["x", VIEWERS]}}) is Role.VIEWER
    assert role_of(settings, {"realm_access": {"roles": [VIEWERS, ADMINS]}}) is Role.ADMINISTRATOR
    assert role_of(settings, {"realm_access": ["x"]}) is None
    assert role_of(settings, {"realm_access": {"roles": [{"name": ADMINS}]}}) is None
    named = provider("https://idp.example.org", role_claim="https://example.org/roles")
    assert role_of(named, {"https://example.org/roles": ADMINS}) is Role.ADMINISTRATOR


def test_provider_problems() -> None:
    assert provider_problems(provider("https://idp.example.org")) == []
    assert provider_problems(provider("http://127.0.0.1:8080/realms/x")) == []
    problems = provider_problems(
        provider(
            "http://idp.example.org/?q#f",
            client_id=" ",
            client_secret="",
            role_claim="a..b",
            administrator_values=(),
            viewer_values=(),
            scopes="profile",
        )
    )
    assert len(problems) == 6, problems
