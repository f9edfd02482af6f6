"""Issue 13, items 1, 2 and 4(c): anonymous callers do not spend the tenant's budget, failed
authentications have a budget of their own, unknown client ids cost as much as known ones,
and bearer tokens die with the secret they were issued for."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from provisor.auth import passwords
from provisor.auth.clients import MAX_SECRETS
from provisor.context import Context
from provisor.errors import AuthenticationError
from provisor.settings import Settings
from tests.conftest import LiveServer, serve
from tests.jobs.conftest import lid_source

CTX = Context.system("tests")  # the service calls a test makes directly

REALTIME = "/ipsproxy/service/api/v1/systems"
PROXY = "/ipsproxy/service/api/v1/scim/whatever/Users"


@pytest.fixture
def behind_proxy(sqlite_settings: Settings) -> Iterator[LiveServer]:
    """A server behind a trusted reverse proxy (loopback), so that tests can speak from
    several client addresses with X-Forwarded-For."""
    with serve(sqlite_settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})) as live:
        yield live


def test_anonymous_callers_do_not_spend_the_tenant_budget(behind_proxy: LiveServer) -> None:
    """Item 1: 250 anonymous proxy calls (more than the tenant's 200 a minute), then a
    real-time client from another address is served."""
    source = lid_source(behind_proxy.services)
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    with httpx.Client(base_url=behind_proxy.url, headers=attacker, timeout=60) as anonymous:
        answers = [anonymous.get(PROXY).status_code for _ in range(250)]
    assert set(answers) <= {401, 429}
    assert answers[:30] == [401] * 30, "the address's budget of failures: 30 a minute"
    assert answers[-1] == 429
    realtime = behind_proxy.new_client("realtime_api")
    with behind_proxy.client(auth=realtime, headers={"X-Forwarded-For": "198.51.100.1"}) as api:
        answer = api.get(f"{REALTIME}/{source.id}/entities/user")
        assert answer.status_code == 200, answer.text


def test_failed_authentication_has_a_budget_per_address(behind_proxy: LiveServer) -> None:
    """Item 1 and 2: past 30 failures a minute from one address, 429 with Retry-After in
    each protocol's format; another address is not affected; the forwarded address counts
    only from a trusted proxy."""
    admin = behind_proxy.client(headers={"X-Forwarded-For": "192.0.2.1"})
    assert admin.get("/scim/Users").status_code == 200
    spoofed = {"X-Forwarded-For": "192.0.2.1", "Authorization": "Bearer nonsense"}
    with httpx.Client(base_url=behind_proxy.url, headers=spoofed, timeout=60) as client:
        assert [client.get("/scim/Users").status_code for _ in range(30)] == [401] * 30
        scim = client.get("/scim/Users")
        assert scim.status_code == 429
        assert scim.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
        assert 1 <= int(scim.headers["retry-after"]) <= 60
        problem = client.get("/api/v1/systems")
        assert problem.status_code == 429
        assert problem.headers["content-type"] == "application/problem+json"
        assert problem.json()["status"] == 429 and "retry-after" in problem.headers
        oauth = client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic !!!"},
        )
        assert oauth.status_code == 429
        assert oauth.json()["error"] == "temporarily_unavailable"
        assert int(oauth.headers["retry-after"]) >= 1
        elsewhere = client.get("/scim/Users", headers={"X-Forwarded-For": "192.0.2.2"})
        assert elsewhere.status_code == 401, "another address has its own budget"
        assert admin.get("/scim/Users").status_code == 200, "a proven secret is served"
    admin.close()
    assert behind_proxy.services.attempts.failures >= 32
    assert behind_proxy.services.attempts.throttled >= 3


def test_forwarded_address_is_ignored_from_an_untrusted_peer(sqlite_server: LiveServer) -> None:
    limited = sqlite_server.services.attempts
    limited.per_minute, limited._rate = 2, 2 / 60  # a small budget for this test
    with httpx.Client(base_url=sqlite_server.url, timeout=60) as client:
        codes = [
            client.get("/scim/Users", headers={"X-Forwarded-For": f"192.0.2.{n}"}).status_code
            for n in range(3)
        ]
    assert codes == [401, 401, 429], "every request came from 127.0.0.1"


def test_a_client_id_backs_off_after_five_failures(sqlite_server: LiveServer) -> None:
    """Item 2: five wrong secrets for one client id, then it must wait (429, Retry-After),
    whatever the secret; after the wait its right secret works."""
    client_id, secret = sqlite_server.new_client("manage_users")
    with httpx.Client(base_url=sqlite_server.url, timeout=60) as client:
        for n in range(5):
            wrong = client.get("/scim/Users", auth=(client_id, f"wrong-{n}"))
            assert wrong.status_code == 401
        waiting = client.get("/scim/Users", auth=(client_id, secret))
        assert waiting.status_code == 429
        assert int(waiting.headers["retry-after"]) == 1
        time.sleep(1.1)
        assert client.get("/scim/Users", auth=(client_id, secret)).status_code == 200
        assert client.get("/scim/Users", auth=(client_id, "wrong")).status_code == 401, (
            "a success forgives the failures"
        )


def test_unknown_client_ids_cost_as_much_as_known_ones(
    sqlite_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 2: a wrong secret is checked against as many Argon2 hashes, with the same
    parameters, whether the client id exists or not (so time tells nothing)."""
    checked: list[str] = []
    real = passwords.verify_secret

    def counting(secret_hash: str, secret: str) -> bool:
        checked.append(secret_hash.split("$")[3])  # the Argon2 parameters
        return real(secret_hash, secret)

    monkeypatch.setattr(passwords, "verify_secret", counting)
    clients = sqlite_server.services.clients
    known, _ = sqlite_server.new_client("manage_users")
    for client_id in (known, str(uuid.uuid4()), "not-a-uuid"):
        checked.clear()
        with pytest.raises(AuthenticationError):
            clients.authenticate_secret("default", client_id, f"guess-{client_id}")
        assert len(checked) == MAX_SECRETS, client_id
        assert set(checked) == {clients.hasher.hash("x").split("$")[3]}


def test_rotating_a_secret_revokes_its_bearer_tokens(server: LiveServer) -> None:
    """Item 4(c): a token dies with the secret it was issued with (rotation without
    --keep-previous, client deletion), on both databases."""
    clients = server.services.clients
    row, creds = clients.create(CTX, f"rotating-{uuid.uuid4().hex[:6]}", ["manage_users"])
    with httpx.Client(base_url=server.url, timeout=60) as client:

        def bearer(client_id: str, secret: str) -> dict[str, str]:
            form = {"grant_type": "client_credentials"}
            answer = client.post("/oauth2/token", data=form, auth=(client_id, secret))
            return {"Authorization": f"Bearer {answer.json()['access_token']}"}

        first = bearer(creds.client_id, creds.client_secret)
        assert client.get("/scim/Users", headers=first).status_code == 200
        _, kept = clients.rotate_secret(CTX, row.id, keep_previous=True)
        assert client.get("/scim/Users", headers=first).status_code == 200, "previous kept"
        second = bearer(kept.client_id, kept.client_secret)
        _, third_creds = clients.rotate_secret(CTX, row.id)
        for old in (first, second):
            refused = client.get("/scim/Users", headers=old)
            assert refused.status_code == 401
            assert "no longer valid" in refused.json()["detail"]
        third = bearer(third_creds.client_id, third_creds.client_secret)
        assert client.get("/scim/Users", headers=third).status_code == 200
        clients.delete(CTX, row.id)
        assert client.get("/scim/Users", headers=third).status_code == 401


def test_a_client_id_with_nul_is_nobody_on_both_databases(server: LiveServer) -> None:
    """PostgreSQL refused the lookup of a client id holding NUL: an anonymous caller got 500
    (Basic header on any route, or /oauth2/token). Now it is an unknown id: 401."""
    nul_id = "a\x00b"
    basic = "Basic " + base64.b64encode(f"{nul_id}:secret".encode()).decode()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        guarded = http.get("/scim/Users", headers={"authorization": basic})
        assert guarded.status_code == 401, guarded.text
        token = http.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": nul_id, "client_secret": "s"},
        )
        assert token.status_code == 401, token.text
        assert token.json()["error"] == "invalid_client"


def test_the_token_endpoint_reads_little_before_authenticating(sqlite_server: LiveServer) -> None:
    """Review finding: anyone could post 10 MB of form fields to /oauth2/token, parsed on the
    event loop before any check (about a second of a worker each). Now 8 KiB at most."""
    with httpx.Client(base_url=sqlite_server.url, timeout=30) as http:
        form = {"content-type": "application/x-www-form-urlencoded"}
        large = http.post("/oauth2/token", content=b"a=" + b"b" * 9000, headers=form)
        assert large.status_code == 413, large.text
        assert large.json()["error"] == "invalid_request"
        many = b"&".join(b"a%d=b" % i for i in range(17))
        assert http.post("/oauth2/token", content=many, headers=form).status_code == 400
        fields = "&".join(f"f{i}=x" for i in range(900_000)).encode()
        assert http.post("/oauth2/token", content=fields, headers=form).status_code == 413
