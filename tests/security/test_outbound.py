"""Issue 13 item 5: outbound requests obey the outbound policy (SSRF).

Back-ends are real servers on loopback addresses (127.0.0.1, 127.0.0.2: all of 127/8 is the
loopback interface); the policy denies some of them as it would deny an internal network. No
test connects anywhere else: a denied address is refused before any connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisor.connectors.base import ConnectorConfig, ConnectorError, Role
from provisor.connectors.ldap.connector import LDAPConnector
from provisor.connectors.outbound import OutboundPolicy
from provisor.connectors.scim.connector import SCIMConnector
from provisor.errors import ConfigError
from provisor.settings import Settings
from tests.conftest import LiveServer, free_port, serve
from tests.connectors.ldap_server import LDAPServer, running_slapd
from tests.connectors.scim_peers import Scripted, listing, make_pki, serve_asgi

POLICY = "The outbound policy refuses the connection"


@dataclass
class Backend:
    """An HTTP server on a loopback address that records the paths asked and answers with
    ``status`` (and ``location``, for redirects)."""

    host: str
    status: int = 200
    location: str = ""
    paths: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def backend(host: str, status: int = 200, location: str = "") -> Iterator[Backend]:
    state = Backend(host, status, location)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            body = b'{"Resources": [], "totalResults": 0}'
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def config(
    properties: dict[str, str], policy: OutboundPolicy | None, **services: object
) -> ConnectorConfig:
    if policy is not None:
        services["outbound"] = policy
    return ConnectorConfig("sys-1", "Test system", Role.SOURCE, properties, services)


async def scim_test(url: str, policy: OutboundPolicy | None = None) -> str:
    async with SCIMConnector(config({"URL": url}, policy)) as connector:
        return await connector.test_connection()


# -- on save ---------------------------------------------------------------------------------------


def test_metadata_and_denied_urls_are_refused_on_save(server: LiveServer) -> None:
    with server.client(path="/api/v1") as api:
        for key, url in (
            ("URL", "http://169.254.169.254/latest/meta-data/"),
            ("URL", "http://[::ffff:169.254.169.254]/"),  # the same, IPv4-mapped
            ("URL", "http://metadata.google.internal/computeMetadata/v1/"),
            ("URL", "http://0xa9fea9fe/"),  # 169.254.169.254 in hexadecimal
            ("OAuth2TokenServiceURL", "http://[fd00:ec2::254]/token"),
        ):
            body = {"name": "Metadata", "type": "scim", "role": "target", "properties": {}}
            body["properties"] = {"URL": "http://127.0.0.1:9/scim", key: url}
            answer = api.post("/systems", json=body)
            assert answer.status_code == 400, (url, answer.text)
            assert answer.headers["content-type"].startswith("application/problem+json")
            detail = answer.json()["detail"]
            assert f"{key}: the outbound policy refuses it" in detail, detail
        ldap_body = {
            "name": "Directory",
            "type": "ldap",
            "role": "target",
            "properties": {"ldap.url": "ldap://169.254.169.254:389", "ldap.user.path": "o=x"},
        }
        answer = api.post("/systems", json=ldap_body)
        assert answer.status_code == 400 and "ldap.url: the outbound policy" in answer.text

        good = {"name": "Good", "type": "scim", "role": "target"}
        good["properties"] = {"URL": "http://127.0.0.1:9/scim"}  # type: ignore[assignment]
        created = api.post("/systems", json=good).raise_for_status().json()
        moved = api.patch(
            f"/systems/{created['id']}/properties",
            json={"properties": {"URL": "http://169.254.169.254/"}},
        )
        assert moved.status_code == 400 and "URL: the outbound policy" in moved.text
        assert api.get(f"/systems/{created['id']}").json()["properties"]["URL"].endswith(":9/scim")


# -- at run time -----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_metadata_address_is_refused_at_run_time_before_connecting() -> None:
    for url in (
        "http://169.254.169.254/",
        "http://[::ffff:a9fe:a9fe]/",  # IPv4-mapped
        "http://[2002:a9fe:a9fe::1]/",  # 6to4
        "http://[64:ff9b::a9fe:a9fe]/",  # NAT64
        "http://2852039166/",  # the legacy decimal form of 169.254.169.254
        "http://0.0.0.0:80/",
    ):
        with pytest.raises(ConnectorError, match=POLICY) as refused:
            await scim_test(url)
        assert refused.value.retryable is False


@pytest.mark.anyio
async def test_denied_address_is_refused_and_never_reached() -> None:
    with backend("127.0.0.2") as internal:
        policy = OutboundPolicy.of(deny=["127.0.0.2"])
        with pytest.raises(ConnectorError, match=rf"{POLICY}: 127.0.0.2 is denied"):
            await scim_test(internal.url, policy)
        with pytest.raises(ConnectorError, match=POLICY):  # IPv4-mapped IPv6: the same address
            await scim_test(f"http://[::ffff:127.0.0.2]:{internal.port}", policy)
        assert internal.paths == []
        await scim_test(internal.url)  # the default policy lets loopback through
        assert internal.paths


@pytest.mark.anyio
async def test_a_name_is_checked_after_resolution() -> None:
    """``localhost`` is not denied as a name, but it resolves to denied addresses."""
    with backend("127.0.0.1") as internal:
        policy = OutboundPolicy.of(deny=["127.0.0.0/8", "::1"])
        with pytest.raises(ConnectorError, match=rf"{POLICY}: localhost is at .*, denied"):
            await scim_test(f"http://localhost:{internal.port}", policy)
        private = OutboundPolicy.of(deny_private=True)
        with pytest.raises(ConnectorError, match="a private or loopback address"):
            await scim_test(f"http://localhost:{internal.port}", private)
        assert internal.paths == []


@pytest.mark.anyio
async def test_a_redirect_to_a_denied_address_is_not_followed() -> None:
    """A guard, not a regression: redirects were never followed, and must not be."""
    with backend("127.0.0.2") as internal:
        target = f"{internal.url}/latest/meta-data"
        with backend("127.0.0.1", status=302, location=target) as public:
            policy = OutboundPolicy.of(deny=["127.0.0.2"])
            with pytest.raises(ConnectorError, match="redirects"):
                await scim_test(public.url, policy)
            assert public.paths and internal.paths == []


@pytest.mark.anyio
async def test_allow_list_mode() -> None:
    with backend("127.0.0.1") as allowed, backend("127.0.0.2") as other:
        policy = OutboundPolicy.of(allow=["127.0.0.1/32"])
        await scim_test(allowed.url, policy)
        assert allowed.paths
        with pytest.raises(ConnectorError, match="not in PROVISOR_OUTBOUND_ALLOW"):
            await scim_test(other.url, policy)
        by_name = OutboundPolicy.of(allow=["*.example.org"])
        with pytest.raises(ConnectorError, match="not in PROVISOR_OUTBOUND_ALLOW"):
            await scim_test(other.url, by_name)
        assert other.paths == []


def test_settings_build_the_policy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PROVISOR_OUTBOUND_DENY", "10.1.0.0/16, *.corp.example, 192.0.2.7")
    monkeypatch.setenv("PROVISOR_OUTBOUND_ALLOW", "api.example.org")
    monkeypatch.setenv("PROVISOR_OUTBOUND_DENY_PRIVATE", "true")
    policy = Settings(data_dir=tmp_path).outbound_policy
    assert policy.deny_private and policy.allowed_names == {"api.example.org"}
    assert policy.url_problem("https://x.corp.example/") is not None
    assert policy.url_problem("https://api.example.org/scim") is None
    assert policy.url_problem("https://[::ffff:10.1.2.3]/") is not None
    monkeypatch.setenv("PROVISOR_OUTBOUND_DENY", "not a host!")
    with pytest.raises(ValueError, match="neither an address"):
        Settings(data_dir=tmp_path)


# -- Test Connection -------------------------------------------------------------------------------


def test_test_connection_cannot_tell_open_from_closed_ports(settings: Settings) -> None:
    denied = settings.model_copy(update={"outbound_deny": ["127.0.0.1", "::1"]})
    with serve(denied) as live, backend("127.0.0.1") as open_port:
        closed = free_port()
        messages = []
        with live.client(path="/api/v1") as api:
            for name, port in (("Open", open_port.port), ("Closed", closed)):
                body = {"name": name, "type": "scim", "role": "source"}
                body["properties"] = {  # type: ignore[assignment]
                    "URL": f"http://localhost:{port}/scim",
                    "Authentication": "NoAuthentication",
                }
                system = api.post("/systems", json=body).raise_for_status().json()
                result = api.post(f"/systems/{system['id']}/test").raise_for_status().json()
                assert result["ok"] is False
                messages.append(result["message"])
        assert messages[0] == messages[1] and POLICY in messages[0], messages
        assert open_port.paths == []


# -- LDAP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


async def ldap_test(slapd: LDAPServer, url: str, policy: OutboundPolicy | None, **more: str) -> str:
    properties = {
        "ldap.url": url,
        "ldap.user": slapd.bind_dn,
        "ldap.password": slapd.password,
        "ldap.user.path": slapd.suffix,
        **more,
    }
    files = config(properties, policy, data_dir=slapd.ca_file.parent)  # the CA file lies there
    async with LDAPConnector(files) as connector:
        return await connector.test_connection()


@pytest.mark.anyio
async def test_ldap_url_to_a_denied_address_is_refused(slapd: LDAPServer) -> None:
    port = slapd.url.rsplit(":", 1)[1]
    deny = OutboundPolicy.of(deny=["127.0.0.0/8", "::1"])
    for url in (slapd.url, f"ldap://localhost:{port}", f"ldap://[::ffff:127.0.0.1]:{port}"):
        with pytest.raises(ConnectorError, match=POLICY) as refused:
            await ldap_test(slapd, url, deny)
        assert refused.value.retryable is False
    with pytest.raises(ConnectorError, match=POLICY):  # TLS verifying the name: checked too
        await ldap_test(
            slapd,
            slapd.ldaps_url.replace("127.0.0.1", "localhost"),
            deny,
            **{"ldap.tls.ca.file": str(slapd.ca_file)},
        )
    with pytest.raises(ConnectorError, match=POLICY):
        await ldap_test(slapd, "ldap://169.254.169.254:389", None)
    with pytest.raises(ConfigError, match=r"ldap\.url: one URL"):  # libldap would try each
        await ldap_test(slapd, f"{slapd.url} ldap://169.254.169.254:389", None)
    # allowed: plain (libldap is given the checked address) and TLS (the name, then checked)
    assert "Bound as" in await ldap_test(slapd, f"ldap://localhost:{port}", None)
    assert "Bound as" in await ldap_test(
        slapd,
        slapd.url,
        OutboundPolicy.of(allow=["127.0.0.1"]),
        **{"ldap.ssl.mode": "starttls", "ldap.tls.ca.file": str(slapd.ca_file)},
    )


@pytest.mark.anyio
async def test_tls_still_verifies_the_name_connected_by_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection goes to the checked address, but the certificate is checked for the
    URL's name (``localhost`` here), as before."""
    pki = make_pki(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    app = Scripted()
    app.script("/scim/Users", listing([]))
    tls = {"ssl_certfile": str(pki.server_cert), "ssl_keyfile": str(pki.server_key)}
    with serve_asgi(app, **tls) as port:
        assert "0 users" in await scim_test(f"https://localhost:{port}/scim")
        assert app.requests[-1][2]["host"] == f"localhost:{port}"
        with pytest.raises(ConnectorError, match=POLICY):
            await scim_test(
                f"https://localhost:{port}/scim", OutboundPolicy.of(deny=["::1", "127.0.0.1"])
            )


@pytest.mark.anyio
async def test_through_a_proxy_an_allow_list_admits_only_listed_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy resolves names itself: with an allow list, only listed names (or allowed
    addresses) are sent to it."""
    with backend("127.0.0.1") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        policy = OutboundPolicy.of(allow=["api.example.org", "127.0.0.1"])
        with pytest.raises(ConnectorError, match=r"other\.example\.org is not in PROVISOR_OUT"):
            await scim_test("http://other.example.org/scim", policy)
        assert proxy.paths == []
        await scim_test("http://api.example.org/scim", policy)
        assert [p.split("?")[0] for p in proxy.paths] == ["http://api.example.org/scim/Users"]


FULLWIDTH = ("\uff11\uff16\uff19", "\uff12\uff15\uff14", "\uff11\uff16\uff19", "\uff12\uff15\uff14")


def test_urls_the_client_cannot_use_are_refused_on_save(server: LiveServer) -> None:
    """Review findings: a URL httpx cannot parse (full-width digits, a bad IDNA label) was
    saved and then answered 500 at Test Connection and on the proxy; a password in a URL
    was stored, shown and exported in clear."""
    with server.client(path="/api/v1") as api:
        for url, why in (
            ("http://" + ".".join(FULLWIDTH) + "/", "cannot be used"),
            ("http://xn--169-.example/scim", "cannot be used"),
            ("http://user:PLAINPW@127.0.0.1:9/scim", "no user name or password"),
        ):
            body = {"name": "Odd", "type": "scim", "role": "target", "properties": {"URL": url}}
            answer = api.post("/systems", json=body)
            assert answer.status_code == 400, (url, answer.text)
            assert "URL: " in answer.json()["detail"] and why in answer.json()["detail"]
            assert "PLAINPW" not in answer.text
