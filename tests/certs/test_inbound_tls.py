"""Callers proving who they are with client certificates: provisor served over HTTPS (in a
thread, and as ``provisor serve``), and behind a TLS-terminating reverse proxy."""

from __future__ import annotations

import functools
import json
import os
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from provisor.certs.store import CALLERS_CA
from provisor.certs.x509 import PrivateKey, key_pem, pem
from provisor.connectors.base import Role
from provisor.context import Context
from provisor.runtime import Services, prepare
from provisor.settings import Settings
from provisor.systems.model import NewSystem
from provisor.tls_server import server_context, uvicorn_options
from provisor.web.app import create_app
from tests.certs.conftest import self_signed
from tests.conftest import free_port
from tests.connectors.scim_peers import PKI, make_pki

CTX = Context.system("tests")  # the service calls a test makes directly

REALTIME = "/ipsproxy/service/api/v1/systems/{}/entities/user"
PROXY = "/ipsproxy/service/api/v1/scim/{}/Users"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"


@dataclass
class Served:
    url: str
    services: Services
    admin: tuple[str, str]
    pki: PKI
    folder: Path

    def identity(self, cert: x509.Certificate, key: PrivateKey, label: str) -> Path:
        """A PEM file holding a certificate and its key, as a caller keeps them."""
        path = self.folder / f"{label}.pem"
        path.write_text(pem(cert) + key_pem(key))
        return path

    def client(self, identity: Path | None = None, **kwargs: object) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca))
        if identity is not None:
            ctx.load_cert_chain(str(identity))
        return httpx.Client(base_url=self.url, verify=ctx, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def serve_https(settings: Settings, folder: Path) -> Iterator[Served]:
    """provisor over HTTPS in a thread, with the options ``provisor serve`` uses."""
    pki = make_pki(folder)
    settings = settings.model_copy(
        update={
            "tls_cert": pki.server_cert,
            "tls_key": pki.server_key,
            "cert_key_type": "EC-P256",
            "inbound_max_per_minute": 0,
            "inbound_throttle_per_minute": 0,
        }
    )
    written = prepare(settings)
    assert written is not None
    admin = json.loads(written.read_text())
    services = Services.open(settings)
    options = uvicorn_options(settings)
    options["ssl_context_factory"] = functools.partial(server_context, settings=settings)
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, services), host="127.0.0.1", port=port, log_level="warning", **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield Served(
            f"https://127.0.0.1:{port}",
            services,
            (admin["client_id"], admin["client_secret"]),
            pki,
            folder,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def https(sqlite_settings: Settings, tmp_path: Path) -> Iterator[Served]:
    with serve_https(sqlite_settings, tmp_path) as served:
        yield served


def _system(services: Services, name: str, role: Role) -> str:
    new = NewSystem(name=name, type="Local Identity Directory", role=role)
    return services.systems.create(
        Context.administrator("test"),
        new,
    ).id


def _p12_identity(served: Served, bundle: bytes, password: bytes, label: str) -> Path:
    key, cert, _ = pkcs12.load_key_and_certificates(bundle, password)
    assert cert is not None and key is not None
    return served.identity(cert, key, label)  # type: ignore[arg-type]


def test_an_administrator_logs_in_with_a_client_certificate(https: Served) -> None:
    """``provisor login --cert --key --cacert``: the admin commands then authenticate by
    certificate over HTTPS."""
    operator, _ = https.services.clients.create(CTX, "operator", ["admin"])
    cert, key = self_signed("operator.example.org")
    with https.client(auth=https.admin) as admin:
        answer = admin.post(
            f"/api/v1/clients/{operator.id}/certificates",
            content=pem(cert),
            headers={"Content-Type": "application/x-pem-file"},
        )
        assert answer.status_code == 201, answer.text
    (https.folder / "operator.crt").write_text(pem(cert))
    (https.folder / "operator.key").write_text(key_pem(key))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env["PROVISOR_CONFIG_DIR"] = str(https.folder / "config")

    def provisor(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "provisor", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=https.folder,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    provisor(
        "login",
        https.url,
        "--cert",
        "operator.crt",
        "--key",
        "operator.key",
        "--cacert",
        str(https.pki.ca),
    )
    me = json.loads(provisor("whoami", "--json").stdout)
    assert (me["name"], me["authentication"]) == ("operator", "certificate")


def test_realtime_and_proxy_calls_over_mtls(https: Served) -> None:
    services, certs = https.services, https.services.certificates
    source = _system(services, "HR", Role.SOURCE)
    proxy = _system(services, "IdM proxy", Role.PROXY)
    caller, _ = services.clients.create(CTX, "idm", ["realtime_api", "proxy_api"])

    # an uploaded certificate (self-signed, as many source applications make them)
    uploaded, uploaded_key = self_signed("idm.example.org")
    with https.client(auth=https.admin) as admin:
        answer = admin.post(
            f"/api/v1/clients/{caller.id}/certificates",
            content=pem(uploaded),
            headers={"Content-Type": "application/x-pem-file"},
        )
        assert answer.status_code == 201, answer.text
    with https.client(https.identity(uploaded, uploaded_key, "uploaded")) as mtls:
        assert mtls.get(REALTIME.format(source)).status_code == 200
        assert mtls.get(PROXY.format(proxy)).json()["totalResults"] == 0
        # a change provisioned in real time, as that user
        with https.client(auth=https.admin) as admin:
            ada = admin.post("/scim/Users", json={"schemas": [USER], "userName": "ada"}).json()
            pushed = mtls.post(REALTIME.format(source), json=ada)
            assert pushed.status_code in (200, 201), pushed.text
            [log] = admin.get("/api/v1/realtime-logs").json()["items"]
            assert log["triggeredBy"] == "idm"
        # the admin API takes certificates too, with their owner's permissions
        assert mtls.get("/api/v1/systems").status_code == 403
        assert mtls.get("/api/v1/me").json()["authentication"] == "certificate"
        # credentials, when sent, are what counts
        assert mtls.get(REALTIME.format(source), auth=("x", "y")).status_code == 401

    # a generated certificate: the .p12 comes back once
    generator, _ = services.clients.create(CTX, "ias", ["realtime_api"])
    with https.client(auth=https.admin) as admin:
        answer = admin.post(
            f"/api/v1/clients/{generator.id}/certificates/generate",
            json={"commonName": "IAS tenant", "password": "p12-password"},
        )
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/x-pkcs12"
    generated = _p12_identity(https, answer.content, b"p12-password", "generated")
    with https.client(generated) as mtls:
        assert mtls.get(REALTIME.format(source)).status_code == 200
        denied = mtls.get(PROXY.format(proxy))  # that user lacks proxy_api
        assert denied.status_code == 403

    # no certificate, no credentials
    with https.client() as anonymous:
        answer = anonymous.get(REALTIME.format(source))
        assert answer.status_code == 401
        assert "client certificate" in answer.text

    # a foreign certificate does not get past the handshake (with TLS 1.3 the client
    # learns it when it reads: the server closes the connection)
    stranger = https.identity(*self_signed("stranger"), "stranger")
    refused = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
    with https.client(stranger) as mtls, pytest.raises(refused):
        mtls.get(REALTIME.format(source))

    # expired / not yet valid, though issued by the callers CA to a known subject: 401
    ca = certs.authority(Context.system("test"), CALLERS_CA)
    subject = f"IAS tenant ({generator.id})"
    for label, days, start in (("expired", -1, -5), ("early", 9, 2)):
        cert, key = self_signed(subject, issuer=ca, days=days, start=start)
        with https.client(https.identity(cert, key, label)) as mtls:
            answer = mtls.get(REALTIME.format(source))
            assert answer.status_code == 401
            assert ("expired" if label == "expired" else "not valid before") in answer.text
    # another certificate of the same subject from the callers CA: provisor issued it, so it
    # would be attached if it were anyone's (provisor's own certificates count by fingerprint)
    other = https.identity(*self_signed(subject, issuer=ca), "other")
    with https.client(other) as mtls:
        answer = mtls.get(REALTIME.format(source))
        assert answer.status_code == 401 and "not known" in answer.text

    # revoked by deletion: 401 at once, even on a kept-alive connection
    with https.client(https.identity(uploaded, uploaded_key, "uploaded")) as mtls:
        assert mtls.get(REALTIME.format(source)).status_code == 200
        fingerprint = certs.inbound(Context.system("test"), client=caller.id)[0].details.fingerprint
        with https.client(auth=https.admin) as admin:
            gone = admin.delete(f"/api/v1/clients/{caller.id}/certificates/{fingerprint}")
            assert gone.status_code == 204
        answer = mtls.get(REALTIME.format(source))
        assert answer.status_code == 401 and "revoked" in answer.text


def test_certificates_imported_on_systems(https: Served) -> None:
    services = https.services
    proxy = _system(services, "IdM proxy", Role.PROXY)
    other = _system(services, "other proxy", Role.PROXY)
    source = _system(services, "HR", Role.SOURCE)
    cert, key = self_signed("neo caller")
    with https.client(auth=https.admin) as admin:
        answer = admin.post(
            f"/api/v1/systems/{proxy}/inbound-certificates",
            content=cert.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/pkix-cert"},
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"].startswith("cert_client_")
        listed = admin.get(f"/api/v1/systems/{proxy}/inbound-certificates").json()
        assert [c["subject"] for c in listed["certificates"]] == ["CN=neo caller"]
    with https.client(https.identity(cert, key, "neo")) as mtls:
        assert mtls.get(PROXY.format(proxy)).status_code == 200
        assert mtls.get(PROXY.format("IdM proxy")).status_code == 200  # by name too
        assert mtls.get(PROXY.format(other)).status_code == 403
        assert mtls.get(REALTIME.format(source)).status_code == 403


@pytest.fixture
def plain(sqlite_settings: Settings) -> Iterator[tuple[str, Services, tuple[str, str]]]:
    """provisor on plain HTTP behind a (pretend) TLS-terminating proxy on 127.0.0.1."""
    from tests.conftest import serve

    settings = sqlite_settings.model_copy(
        update={"trusted_proxies": ["127.0.0.0/8"], "cert_key_type": "EC-P256"}
    )
    with serve(settings) as live:
        yield live.url, live.services, live.admin


def test_client_certificate_from_a_trusted_reverse_proxy(
    plain: tuple[str, Services, tuple[str, str]],
) -> None:
    url, services, _ = plain
    source = _system(services, "HR", Role.SOURCE)
    caller, _ = services.clients.create(CTX, "idm", ["realtime_api"])
    cert, _ = self_signed("behind-proxy")
    services.certificates.import_inbound(Context.system("test"), pem(cert), client=caller.id)
    forms = {
        "nginx": urllib.parse.quote(pem(cert)),
        "apache": pem(cert).strip().replace("\n", " "),
        "envoy": f'By=spiffe://x;Hash=ab;Cert="{urllib.parse.quote(pem(cert))}";Subject=""',
        "rfc9440": ":" + "".join(pem(cert).splitlines()[1:-1]) + ":",
    }
    with httpx.Client(base_url=url, timeout=30) as client:
        for form, value in forms.items():
            answer = client.get(REALTIME.format(source), headers={"X-Forwarded-Client-Cert": value})
            assert answer.status_code == 200, (form, answer.text)
        answer = client.get(REALTIME.format(source), headers={"X-Forwarded-Client-Cert": "junk"})
        assert answer.status_code == 401 and "unreadable" in answer.text
        expired, _ = self_signed("behind-proxy", days=-1, start=-3)
        answer = client.get(
            REALTIME.format(source),
            headers={"X-Forwarded-Client-Cert": urllib.parse.quote(pem(expired))},
        )
        assert answer.status_code == 401


def test_the_header_is_ignored_from_untrusted_addresses(sqlite_settings: Settings) -> None:
    from tests.conftest import serve

    settings = sqlite_settings.model_copy(
        update={"trusted_proxies": ["10.1.2.3"], "cert_key_type": "EC-P256"}
    )
    with serve(settings) as live:
        source = _system(live.services, "HR", Role.SOURCE)
        caller, _ = live.services.clients.create(CTX, "idm", ["realtime_api"])
        cert, _ = self_signed("spoofed")
        live.services.certificates.import_inbound(
            Context.system("test"), pem(cert), client=caller.id
        )
        header = {"X-Forwarded-Client-Cert": urllib.parse.quote(pem(cert))}
        answer = httpx.get(live.url + REALTIME.format(source), headers=header)
        assert answer.status_code == 401


@pytest.mark.slow  # a provisor serve process
def test_provisor_serve_with_tls_and_a_client_ca(tmp_path: Path) -> None:
    """``provisor serve --tls-cert --tls-key --client-ca``, as a user runs it: a certificate
    of the client CA, issued to the subject attached to a technical user, authenticates."""
    pki = make_pki(tmp_path)
    data = tmp_path / "data"
    settings = Settings(data_dir=data, cert_key_type="EC-P256")
    prepare(settings)
    services = Services.open(settings)
    try:
        source = _system(services, "HR", Role.SOURCE)
        caller, _ = services.clients.create(CTX, "idm", ["realtime_api"])
        ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
        ca = x509.load_pem_x509_certificate(pki.ca.read_bytes())
        attached, _ = self_signed("idm-prod", issuer=(ca, ca_key))  # type: ignore[arg-type]
        services.certificates.import_inbound(
            Context.system("test"), pem(attached), client=caller.id
        )
    finally:
        services.close()
    # a later certificate of the client CA to the same subject (not attached itself)
    later, later_key = self_signed("idm-prod", issuer=(ca, ca_key))  # type: ignore[arg-type]
    identity = tmp_path / "later.pem"
    identity.write_text(pem(later) + key_pem(later_key))

    port = free_port()
    env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
    log = (tmp_path / "serve.log").open("w")
    command = [sys.executable, "-m", "provisor", "serve", "--port", str(port)]
    command += ["--data-dir", str(data), "--workers", "2", "--no-jobs"]
    command += ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
    command += ["--client-ca", str(pki.ca)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(identity))
    anonymous = ssl.create_default_context(cafile=str(pki.ca))
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", verify=anonymous).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "provisor serve did not start"
            time.sleep(0.2)
        for _ in range(4):  # every worker process
            with httpx.Client(base_url=url, verify=ctx) as mtls:
                assert mtls.get(REALTIME.format(source)).status_code == 200
        assert httpx.get(url + REALTIME.format(source), verify=anonymous).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


@pytest.mark.slow  # provisor serve processes
def test_serve_refuses_bad_tls_options(tmp_path: Path) -> None:
    env = dict(os.environ)  # PROVISOR_* as tests/conftest.py leaves them (cheap hashing)
    base = [sys.executable, "-m", "provisor", "serve", "--data-dir", str(tmp_path)]
    missing = subprocess.run(
        [*base, "--tls-cert", str(tmp_path / "nope.pem")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1 and "--tls-cert: no file" in missing.stderr
    alone = subprocess.run(
        [*base, "--client-ca", str(Path(__file__))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert alone.returncode == 1 and "need --tls-cert" in alone.stderr
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    broken = subprocess.run(
        [*base, "--tls-cert", str(garbage), "--tls-key", str(garbage)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert broken.returncode == 1 and "cannot be used" in broken.stderr


def test_tenant_admin_api_with_a_certificate(https: Served) -> None:
    services = https.services
    source = _system(services, "HR", Role.SOURCE)
    operator, _ = services.clients.create(CTX, "scheduler", ["tenant_admin_api"])
    cert, key = self_signed("scheduler.example.org")
    services.certificates.import_inbound(Context.system("test"), pem(cert), client=operator.id)
    public = "/ips/service/publicapi/v1"
    with https.client(https.identity(cert, key, "scheduler")) as mtls:
        started = mtls.post(f"{public}/startJob/{source}/jobs/READ")
        assert started.status_code == 202, started.text
        job = started.json()["jobId"]
        assert mtls.get(f"{public}/jobs/{job}").status_code == 200
        assert mtls.get(REALTIME.format(source)).status_code == 403  # not its permission
    with https.client() as anonymous:
        assert anonymous.get(f"{public}/jobs/{job}").status_code == 401
