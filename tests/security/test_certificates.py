"""Issue 13, item 11: a certificate is one identity, deletion revokes it, and a back-end that
refuses provisor's client certificate is a clear connector error.

Real TLS on loopback: provisor's HTTPS server (``serve_https``, the options of ``provisor
serve``) for callers, and a threaded ``ssl`` server that requires a client certificate for
back-ends. Revocation runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from provisor.certs.x509 import PrivateKey, describe, load_certificate, pem
from provisor.connectors.base import ConnectorConfig, Role
from provisor.connectors.http import HTTPClient
from provisor.connectors.tls import TLSFailed
from provisor.context import Context
from provisor.errors import AuthenticationError
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.systems.model import NewSystem
from tests.certs.conftest import self_signed
from tests.certs.test_inbound_tls import REALTIME, USER, serve_https
from tests.conftest import LiveServer, serve
from tests.connectors.scim_peers import PKI, make_pki

CTX = Context.system("tests")  # the service calls a test makes directly


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """Services on SQLite, then on PostgreSQL (EC keys keep the tests quick)."""
    found = Services.open(settings.model_copy(update={"cert_key_type": "EC-P256"}))
    migrate.upgrade(found.db)
    try:
        yield found
    finally:
        found.close()


def _source(services: Services, name: str = "HR") -> str:
    new = NewSystem(name=name, type="Local Identity Directory", role=Role.SOURCE)
    return services.systems.create(
        Context.administrator("test"),
        new,
    ).id


def _ca(pki: PKI) -> tuple[x509.Certificate, PrivateKey]:
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    return x509.load_pem_x509_certificate(pki.ca.read_bytes()), key  # type: ignore[return-value]


# -- (a) subject and issuer are one identity ------------------------------------------------------


def test_a_partner_ca_cannot_mint_the_subject_of_a_self_signed_certificate(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """The technical user's attached certificate is self-signed ``CN=idm-host``; the
    ``--client-ca`` partner CA issues its own ``CN=idm-host``: it must not log in as that
    user (main: 200). A renewal by the partner CA of a certificate it issued still works."""
    (tmp_path / "partner").mkdir()
    partner = make_pki(tmp_path / "partner")
    settings = sqlite_settings.model_copy(update={"tls_client_ca": partner.ca})
    with serve_https(settings, tmp_path) as https:
        services = https.services
        source = _source(services)
        caller, _ = services.clients.create(CTX, "idm", ["realtime_api"])
        attached, attached_key = self_signed("idm-host")
        services.certificates.import_inbound(
            Context.system("test"), pem(attached), client=caller.id
        )
        with https.client(https.identity(attached, attached_key, "attached")) as mtls:
            assert mtls.get(REALTIME.format(source)).status_code == 200

        minted, minted_key = self_signed("idm-host", issuer=_ca(partner))
        with https.client(https.identity(minted, minted_key, "minted")) as mtls:
            answer = mtls.get(REALTIME.format(source))
        assert answer.status_code == 401, answer.text
        assert "not known" in answer.text

        # what the subject rule is for: the partner CA renews a certificate it issued
        partners, _ = services.clients.create(CTX, "partner", ["realtime_api"])
        issued, _ = self_signed("partner-app", issuer=_ca(partner))
        services.certificates.import_inbound(
            Context.system("test"), pem(issued), client=partners.id
        )
        renewed, renewed_key = self_signed("partner-app", issuer=_ca(partner))
        with https.client(https.identity(renewed, renewed_key, "renewed")) as mtls:
            assert mtls.get(REALTIME.format(source)).status_code == 200


def test_a_ca_named_like_the_attached_certificate_does_not_pass_for_it(
    services: Services,
) -> None:
    """Binding by names alone is not enough: a partner CA whose own subject is ``CN=idm-host``
    issues ``CN=idm-host`` with issuer ``CN=idm-host``, the very names of the self-signed
    attached certificate. The signature tells them apart."""
    certs = services.certificates
    caller, _ = services.clients.create(CTX, "idm", ["realtime_api"])
    attached, _ = self_signed("idm-host")
    certs.import_inbound(Context.system("test"), pem(attached), client=caller.id)
    twin_ca = self_signed("idm-host")
    certs.options = dataclasses.replace(certs.options, client_cas=(twin_ca[0],))
    minted, _ = self_signed("idm-host", issuer=twin_ca)
    assert (minted.subject, minted.issuer) == (attached.subject, attached.issuer)
    with pytest.raises(AuthenticationError, match="not known"):
        certs.authenticate("default", minted)


# -- (b) deletion revokes -------------------------------------------------------------------------


def test_deleting_a_generated_certificate_revokes_it(services: Services) -> None:
    """Generate A with CN "IAS", then B with the same CN, delete A: A is refused at once
    (main: A authenticates, vouched for by B's subject and the same CA). SQLite and
    PostgreSQL."""
    certs = services.certificates
    caller, _ = services.clients.create(CTX, "ias", ["realtime_api"])
    a, a_p12 = certs.generate_inbound(CTX, caller.id, "IAS", "p12-password")
    b, b_p12 = certs.generate_inbound(CTX, caller.id, "IAS", "p12-password")
    a_cert = pkcs12.load_key_and_certificates(a_p12, b"p12-password")[1]
    b_cert = pkcs12.load_key_and_certificates(b_p12, b"p12-password")[1]
    assert a_cert is not None and b_cert is not None
    assert (a.details.subject, a.details.issuer) == (b.details.subject, b.details.issuer)
    assert certs.authenticate("default", a_cert).client_id == caller.id

    certs.delete_inbound(Context.system("test"), a.details.fingerprint)
    with pytest.raises(AuthenticationError, match="revoked"):
        certs.authenticate("default", a_cert)
    assert certs.authenticate("default", b_cert).client_id == caller.id


def test_deleting_a_partner_certificate_revokes_it_despite_a_namesake(
    services: Services,
) -> None:
    """Two certificates of one subject from the ``--client-ca`` CA are attached; deleting one
    revokes it, though the other would vouch for its subject. Attaching it again on purpose
    lifts the revocation."""
    certs = services.certificates
    partner = self_signed("partner CA")
    certs.options = dataclasses.replace(certs.options, client_cas=(partner[0],))
    caller, _ = services.clients.create(CTX, "idm", ["realtime_api"])
    one, _ = self_signed("idm-prod", issuer=partner)
    two, _ = self_signed("idm-prod", issuer=partner)
    first = certs.import_inbound(Context.system("test"), pem(one), client=caller.id)
    certs.import_inbound(Context.system("test"), pem(two), client=caller.id)
    certs.delete_inbound(Context.system("test"), first.details.fingerprint)
    with pytest.raises(AuthenticationError, match="revoked"):
        certs.authenticate("default", one)
    assert certs.authenticate("default", two).client_id == caller.id
    certs.import_inbound(Context.system("test"), pem(one), client=caller.id)
    assert certs.authenticate("default", one).client_id == caller.id


def test_deleting_the_owner_revokes_its_certificates(services: Services) -> None:
    """Deleting a technical user or a system revokes its inbound certificates: a partner
    certificate of a deleted user must not log in as a later user given a namesake from the
    same CA (the cascade of the deletion used to drop them without revoking)."""
    certs = services.certificates
    partner = self_signed("partner CA")
    certs.options = dataclasses.replace(certs.options, client_cas=(partner[0],))
    old, _ = services.clients.create(CTX, "idm-old", ["admin"])
    theirs, _ = self_signed("idm-prod", issuer=partner)
    certs.import_inbound(CTX, pem(theirs), client=old.id)
    services.clients.delete(CTX, old.id)
    new, _ = services.clients.create(CTX, "idm-new", ["realtime_api"])
    renewal, _ = self_signed("idm-prod", issuer=partner)
    certs.import_inbound(Context.system("test"), pem(renewal), client=new.id)
    with pytest.raises(AuthenticationError, match="revoked"):
        certs.authenticate("default", theirs)
    assert certs.authenticate("default", renewal).client_id == new.id
    source = _source(services)
    ias, _ = self_signed("IAS")
    certs.import_inbound(Context.system("test"), pem(ias), system=source)
    services.systems.delete(Context.system("test"), source)
    with pytest.raises(AuthenticationError, match="revoked"):
        certs.authenticate("default", ias)


def test_a_deleted_generated_certificate_is_refused_over_https(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """The same over provisor's HTTPS server, on a kept-alive connection."""
    with serve_https(sqlite_settings, tmp_path) as https:
        services = https.services
        source = _source(services)
        caller, _ = services.clients.create(CTX, "ias", ["realtime_api"])
        identities = []
        for label in ("a", "b"):
            with https.client(auth=https.admin) as admin:
                answer = admin.post(
                    f"/api/v1/clients/{caller.id}/certificates/generate",
                    json={"commonName": "IAS", "password": "p12-password"},
                )
            assert answer.status_code == 201, answer.text
            key, cert, _ = pkcs12.load_key_and_certificates(answer.content, b"p12-password")
            assert cert is not None and key is not None
            identities.append((cert, https.identity(cert, key, label)))  # type: ignore[arg-type]
        (a_cert, a), (_, b) = identities
        with https.client(a) as mtls:
            assert mtls.get(REALTIME.format(source)).status_code == 200
            fingerprint = describe(a_cert).fingerprint
            with https.client(auth=https.admin) as admin:
                gone = admin.delete(f"/api/v1/clients/{caller.id}/certificates/{fingerprint}")
                assert gone.status_code == 204, gone.text
            answer = mtls.get(REALTIME.format(source))
            assert answer.status_code == 401 and "revoked" in answer.text, answer.text
        with https.client(b) as mtls:
            assert mtls.get(REALTIME.format(source)).status_code == 200


# -- generated certificates are no back-end credentials -------------------------------------------


def test_generated_inbound_certificates_come_from_a_ca_back_ends_do_not_trust(
    services: Services,
) -> None:
    """A back-end that trusts the tenant CA (``provisor certs ca download``) for provisor's
    outbound certificates must not accept a caller's generated certificate: that caller
    holds its key (main: both come from the tenant CA)."""
    certs = services.certificates
    caller, _ = services.clients.create(CTX, "ias", ["realtime_api"])
    _, bundle = certs.generate_inbound(CTX, caller.id, "IAS", "p12-password")
    cert = pkcs12.load_key_and_certificates(bundle, b"p12-password")[1]
    assert cert is not None
    tenant_ca = load_certificate(certs.ca_pem(Context.system("test")))
    with pytest.raises(ValueError):  # names differ: not issued by the tenant CA
        cert.verify_directly_issued_by(tenant_ca)


# -- an unreadable certificate is the caller's error ----------------------------------------------


def _odd_key(cert: x509.Certificate) -> bytes:
    """``cert`` with its EC public key's algorithm changed to an OID nobody knows."""
    der = cert.public_bytes(serialization.Encoding.DER)
    ec_public_key = bytes.fromhex("06072a8648ce3d0201")  # 1.2.840.10045.2.1
    assert der.count(ec_public_key) == 1
    return der.replace(ec_public_key, bytes.fromhex("06072a8648ce3d0209"))


@pytest.fixture
def behind_proxy(sqlite_settings: Settings) -> Iterator[LiveServer]:
    settings = sqlite_settings.model_copy(
        update={"trusted_proxies": ["127.0.0.0/8"], "cert_key_type": "EC-P256"}
    )
    with serve(settings) as live:
        yield live


def test_an_unsupported_key_type_is_a_clear_error(behind_proxy: LiveServer) -> None:
    """A certificate with a public key of an unknown algorithm: 401 when presented (through
    a trusted reverse proxy), 400 when uploaded; main answers 500 to both."""
    live = behind_proxy
    source = _source(live.services)
    caller, _ = live.services.clients.create(CTX, "idm", ["realtime_api"])
    odd = _odd_key(self_signed("odd")[0])
    header = {"X-Forwarded-Client-Cert": urllib.parse.quote(pem(load_certificate(odd)))}
    answer = httpx.get(live.url + REALTIME.format(source), headers=header, timeout=30)
    assert answer.status_code == 401, answer.text
    assert "unsupported" in answer.text
    with live.client() as admin:
        answer = admin.post(
            f"/api/v1/clients/{caller.id}/certificates",
            content=odd,
            headers={"Content-Type": "application/pkix-cert"},
        )
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "unsupported" in answer.json()["detail"]


# -- (c) a back-end refusing the client certificate -----------------------------------------------


@contextmanager
def demanding_backend(pki: PKI) -> Iterator[str]:
    """An HTTPS server that requires a client certificate of ``pki``'s CA (answering
    ``{}`` to anyone it lets in); its base URL."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.load_verify_locations(str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
            try:
                tls.do_handshake()
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            except (OSError, ssl.SSLError):
                # refused: the alert went out. Close as web servers do (lingering), so that
                # the unread request does not turn the close into a reset ahead of the alert.
                try:
                    tls.shutdown(socket.SHUT_WR)  # the plain socket from here on
                    tls.settimeout(5)
                    while tls.recv(65536):
                        pass
                except OSError:
                    pass

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{port}/v2"
    finally:
        listener.close()


@pytest.fixture
def pki(tmp_path: Path) -> PKI:
    folder = tmp_path / "pki"
    folder.mkdir()
    return make_pki(folder)


def _config(url: str, **properties: str) -> ConnectorConfig:
    return ConnectorConfig(
        system_id="backend",
        system_name="Back-end",
        role=Role.TARGET,
        properties={"URL": url, "TrustAll": "true", **properties},
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_refused_client_certificate_is_a_clear_tls_failure(pki: PKI, method: str) -> None:
    """The back-end's alert (certificate required) arrives after a TLS 1.3 handshake: main
    lets the raw ``ssl.SSLError`` out of the HTTP connector (a 500 upstream)."""

    async def call(url: str) -> None:
        client = HTTPClient(_config(url))
        try:
            await client.request(method, "/Users", body={} if method == "POST" else None)
        finally:
            await client.aclose()

    with demanding_backend(pki) as url:
        with pytest.raises(TLSFailed) as refused:
            anyio.run(call, url)
    assert not refused.value.retryable
    assert "TLS handshake with https://127.0.0.1" in refused.value.message
    assert "client certificate" in refused.value.message


@pytest.fixture
def live(sqlite_settings: Settings) -> Iterator[LiveServer]:
    settings = sqlite_settings.model_copy(
        update={
            "cert_key_type": "EC-P256",
            "inbound_max_per_minute": 0,
            "inbound_throttle_per_minute": 0,
        }
    )
    with serve(settings) as server:
        yield server


def test_test_connection_and_proxy_calls_to_a_refusing_back_end(live: LiveServer, pki: PKI) -> None:
    """Test Connection reports the refusal; a proxy call answers a SCIM 502 naming it (main:
    500 for both). With its own client certificate of another CA, the same."""
    with demanding_backend(pki) as url:
        created = []
        for name, extra in (
            ("no certificate", {"User": "provisor", "Password": "secret"}),
            ("tenant certificate", {"Authentication": "ClientCertificateAuthentication"}),
        ):
            system = live.services.systems.create(
                Context.administrator("test"),
                NewSystem.model_validate(
                    {
                        "name": name,
                        "type": "scim",
                        "role": "proxy",
                        "properties": {"URL": url, "TrustAll": "true", **extra},
                    }
                ),
            )
            if extra:
                live.services.certificates.generate_outbound(Context.system("test"), system.id)
            created.append(system)
        caller = live.new_client("proxy_api")
        with live.client() as admin, live.client(caller) as proxy:
            for system in created:
                tested = admin.post(f"/api/v1/systems/{system.id}/test")
                assert tested.status_code == 200, tested.text
                result = tested.json()
                assert result["ok"] is False
                assert "TLS handshake" in result["message"], result
                answer = proxy.get(f"/ipsproxy/service/api/v1/scim/{system.id}/Users")
                assert answer.status_code == 502, answer.text
                assert "TLS handshake" in answer.json()["detail"]

        # a real-time change from a source to a target on that back-end
        source = live.services.systems.create(
            Context.administrator("test"),
            NewSystem.model_validate(
                {"name": "HR", "type": "local-identity-directory", "role": "source"}
            ),
        )
        live.services.systems.create(
            Context.administrator("test"),
            NewSystem.model_validate(
                {
                    "name": "refusing target",
                    "type": "scim",
                    "role": "target",
                    "sourceSystemIds": [source.id],
                    "properties": {"URL": url, "TrustAll": "true", "User": "u", "Password": "p"},
                }
            ),
        )
        with live.client() as admin, live.client(live.new_client("realtime_api")) as realtime:
            ada = admin.post("/scim/Users", json={"schemas": [USER], "userName": "ada"}).json()
            pushed = realtime.post(REALTIME.format(source.id), json=ada)
        assert pushed.status_code != 500, pushed.text
        assert "TLS handshake" in pushed.text, pushed.text
