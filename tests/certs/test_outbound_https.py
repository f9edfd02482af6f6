"""Jobs to an HTTPS SCIM server that demands a client certificate issued by the tenant CA.

The server is scim2-server (an independent SCIM 2.0 implementation, in memory) behind uvicorn
with ``ssl_cert_reqs=CERT_REQUIRED`` and the tenant CA as its only client CA. It records the
SHA-256 fingerprint of the certificate each request came with (provisor's
``CertificateProtocol`` hands it to the app), and can answer 403 unless that fingerprint is
allowed. provisor trusts the server's certificate (of a test CA) through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider

from provisor.certs.x509 import fingerprint, load_certificate
from provisor.context import Context
from provisor.errors import InputError
from provisor.jobs.model import Job, JobStatus
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.systems.model import System, SystemChanges
from provisor.tls_server import CertificateProtocol
from tests.connectors.scim_peers import PKI, make_pki, serve_asgi
from tests.jobs.conftest import add_users, lid_source, run_job, stats, system

NAMES = ("ann", "bob", "cid")
TARGET = "HTTPS SCIM"
NO_CERTIFICATE = "no active outbound certificate"


@pytest.fixture
def services(sqlite_settings: Settings) -> Iterator[Services]:
    """Services on SQLite (the tenant CA and the outbound certificates live in it)."""
    opened = Services.open(sqlite_settings)
    migrate.upgrade(opened.db)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> PKI:
    """The server's certificate (of a test CA), which provisor trusts via SSL_CERT_FILE."""
    folder = tmp_path / "pki"
    folder.mkdir()
    made = make_pki(folder)
    monkeypatch.setenv("SSL_CERT_FILE", str(made.ca))
    return made


@dataclass
class Peer:
    """scim2-server over HTTPS with client certificates required."""

    url: str
    storage: InMemoryStorage
    presented: list[str | None]  # per request: the client certificate's fingerprint
    allowed: set[str] | None  # fingerprints let through (None: every one the handshake took)

    def users(self) -> set[str]:
        """The userNames of the users the server stored."""
        return {
            str(getattr(r, "user_name", None))
            for r in self.storage.resources
            if r.meta is not None and r.meta.resource_type == "User"
        }


@dataclass
class Gate:
    """An ASGI app in front of another: records the client certificate of every request and
    answers 403 to one whose fingerprint is not allowed."""

    inner: Any
    presented: list[str | None] = field(default_factory=list)
    allowed: set[str] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
            found = fingerprint(load_certificate(chain[0])) if chain else None
            self.presented.append(found)
            if self.allowed is not None and found not in self.allowed:
                body = json.dumps(
                    {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": "403",
                        "detail": "This client certificate is not allowed here.",
                    }
                ).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 403,
                        "headers": [
                            (b"content-type", b"application/scim+json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.inner(scope, receive, send)


@contextmanager
def https_scim(
    pki: PKI, services: Services, tmp_path: Path, allowed: set[str] | None = None
) -> Iterator[Peer]:
    """scim2-server on https://127.0.0.1:<port>/v2, trusting only the tenant CA's clients."""
    client_ca = tmp_path / "tenant-ca.pem"
    client_ca.write_text(services.certificates.ca_pem(Context.system("test")), encoding="ascii")
    provider = load_default_provider()
    storage = InMemoryStorage()
    scim = ASGIApplication(
        AsyncInMemoryStorage(storage), provider, ScimService(provider, secret="s" * 32)
    )
    gate = Gate(scim, allowed=allowed)
    tls = {
        "ssl_certfile": str(pki.server_cert),
        "ssl_keyfile": str(pki.server_key),
        "ssl_ca_certs": str(client_ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "http": CertificateProtocol,
    }
    with serve_asgi(gate, **tls) as port:
        yield Peer(
            url=f"https://127.0.0.1:{port}/v2",
            storage=storage,
            presented=gate.presented,
            allowed=gate.allowed,
        )


def https_target(services: Services, peer: Peer, **properties: str) -> System:
    """LID (with users ann, bob, cid) and a SCIM System target on the peer that presents
    its client certificate; no SAP custom extension, which scim2-server lacks."""
    add_users(services, *NAMES)
    source = lid_source(services)
    target = system(
        services,
        name=TARGET,
        type="scim",
        role="target",
        sourceSystemIds=[source.id],
        properties={
            "URL": peer.url,
            "Authentication": "ClientCertificateAuthentication",
            "ips.failed.request.retry.attempts.interval": "1",
            **properties,
        },
    )
    write = json.loads(
        services.systems.transformation(Context.system("test"), TARGET, "write").text
    )
    custom = "$['urn:sap:cloud:scim:schemas:extension:custom:2.0:User']"
    write["user"]["mappings"].append({"type": "remove", "targetPath": custom})
    services.systems.save_transformation(
        Context.administrator("t"),
        TARGET,
        "write",
        write,
        description="for scim2-server",
    )
    return target


def reasons(services: Services, job: Job) -> list[str]:
    return [
        str(row.reason)
        for row in services.jobs.entity_logs(Context.administrator("test"), job.id)[0]
    ]


def failed_cleanly(services: Services, job: Job, message: str) -> None:
    """The job ended with an error that names the cause, in its error or its entity logs."""
    assert job.status is JobStatus.FINISHED_WITH_ERROR, job.status
    assert job.ended is not None
    logged = [job.error or "", *reasons(services, job)]
    assert any(message in text for text in logged), logged


def test_no_certificate_then_one(services: Services, pki: PKI, tmp_path: Path) -> None:
    """(a) Without an outbound certificate the job fails with a clear message and the
    server sees nothing; (b) once one is generated every user arrives over mTLS."""
    with https_scim(pki, services, tmp_path) as peer:
        target = https_target(services, peer)

        first = run_job(services, "LID")
        failed_cleanly(services, first, NO_CERTIFICATE)
        assert stats(first, TARGET)["failed"] == len(NAMES)  # that target only
        assert any(TARGET in reason for reason in reasons(services, first))
        assert peer.presented == [], "no request reaches the server"
        assert peer.users() == set()

        made = services.certificates.generate_outbound(Context.system("test"), target.id)
        assert made.active
        second = run_job(services, "LID")
        assert second.status is JobStatus.SUCCESS, (second.error, reasons(services, second))
        assert stats(second, TARGET)["created"] == len(NAMES)
        assert peer.users() == set(NAMES)
        assert peer.presented and set(peer.presented) == {made.details.fingerprint}


def test_activation_switches_the_presented_certificate(
    services: Services, pki: PKI, tmp_path: Path
) -> None:
    """(c) A job presents the active certificate; after activating the other one the next
    job presents that one, with the same Services and the same server."""
    with https_scim(pki, services, tmp_path) as peer:
        target = https_target(services, peer)
        one = services.certificates.generate_outbound(Context.system("test"), target.id)
        two = services.certificates.generate_outbound(Context.system("test"), target.id)
        assert (one.active, two.active) == (True, False)

        first = run_job(services, "LID")
        assert first.status is JobStatus.SUCCESS, (first.error, reasons(services, first))
        assert peer.users() == set(NAMES)
        assert peer.presented and set(peer.presented) == {one.details.fingerprint}

        # Unchanged users send nothing: a new user in each job makes it talk to the server.
        services.certificates.activate(Context.system("test"), target.id, two.details.fingerprint)
        add_users(services, "dee")
        seen = len(peer.presented)
        second = run_job(services, "LID")
        assert second.status is JobStatus.SUCCESS, (second.error, reasons(services, second))
        assert stats(second, TARGET)["created"] == 1
        assert len(peer.presented) > seen, "the second job talked to the server"
        assert set(peer.presented[seen:]) == {two.details.fingerprint}
        assert peer.users() == {*NAMES, "dee"}

        # And back: activation counts from the next connection every time.
        services.certificates.activate(Context.system("test"), target.id, one.details.fingerprint)
        add_users(services, "eve")
        seen = len(peer.presented)
        third = run_job(services, "LID")
        assert third.status is JobStatus.SUCCESS, (third.error, reasons(services, third))
        assert len(peer.presented) > seen, "the third job talked to the server"
        assert set(peer.presented[seen:]) == {one.details.fingerprint}
        assert peer.users() == {*NAMES, "dee", "eve"}


def test_a_server_that_allows_one_certificate(services: Services, pki: PKI, tmp_path: Path) -> None:
    """(c) The server lets only the second certificate through: the job fails cleanly while
    the first is active, and succeeds once the second one is activated."""
    allowed: set[str] = set()
    with https_scim(pki, services, tmp_path, allowed=allowed) as peer:
        target = https_target(services, peer)
        one = services.certificates.generate_outbound(Context.system("test"), target.id)
        two = services.certificates.generate_outbound(Context.system("test"), target.id)
        allowed.add(two.details.fingerprint)

        refused = run_job(services, "LID")
        assert refused.status is JobStatus.FINISHED_WITH_ERROR, refused.status
        assert TARGET in (refused.error or ""), refused.error
        logged = " ".join([refused.error or "", *reasons(services, refused)])
        assert "403" in logged or "not allowed" in logged, logged
        assert peer.presented and set(peer.presented) == {one.details.fingerprint}
        assert peer.users() == set()

        services.certificates.activate(Context.system("test"), target.id, two.details.fingerprint)
        seen = len(peer.presented)
        accepted = run_job(services, "LID")
        assert accepted.status is JobStatus.SUCCESS, (accepted.error, reasons(services, accepted))
        assert stats(accepted, TARGET)["created"] == len(NAMES)
        assert set(peer.presented[seen:]) == {two.details.fingerprint}
        assert peer.users() == set(NAMES)


def test_on_premise_refuses_client_certificates(
    services: Services, pki: PKI, tmp_path: Path
) -> None:
    """(d) ProxyType=OnPremise with ClientCertificateAuthentication is refused when the
    system is saved, whichever comes second; nothing reaches the server."""
    refused = "ClientCertificateAuthentication cannot be used with ProxyType=OnPremise"
    with https_scim(pki, services, tmp_path) as peer:
        target = https_target(services, peer)
        with pytest.raises(InputError, match=refused):
            system(
                services,
                name="on premise",
                type="scim",
                role="target",
                properties={
                    "URL": peer.url,
                    "Authentication": "ClientCertificateAuthentication",
                    "ProxyType": "OnPremise",
                },
            )
        services.certificates.generate_outbound(Context.system("test"), target.id)
        change = SystemChanges(properties={"ProxyType": "OnPremise"})
        with pytest.raises(InputError, match=refused):
            services.systems.update(
                Context.administrator("t"),
                target.id,
                change,
            )
        assert (
            services.systems.get(Context.system("test"), target.id).properties.get("ProxyType")
            != "OnPremise"
        )
        assert peer.presented == []


def test_a_target_without_its_certificate_does_not_stop_the_others(
    services: Services, pki: PKI, tmp_path: Path
) -> None:
    """A target whose connector cannot be built fails alone: the source's other targets
    are provisioned in the same job."""
    from tests.jobs.test_pipeline import csv_target, rows

    with https_scim(pki, services, tmp_path) as peer:
        https_target(services, peer)  # no certificate generated
        source = services.systems.get(Context.system("test"), "LID")
        csv_target(services, source.id, tmp_path)
        job = run_job(services, "LID")
        assert job.status is JobStatus.FINISHED_WITH_ERROR
        assert stats(job, TARGET)["failed"] == len(NAMES)
        assert stats(job, "CSV")["created"] == len(NAMES)
        assert set(rows(tmp_path / "users.csv")) == set(NAMES)
        assert peer.users() == set()


class TokenService:
    """An OAuth token endpoint that authenticates clients by their certificate (mTLS, no
    secret) and a SCIM list that wants the token it issued."""

    token = "issued-to-the-certificate"

    def __init__(self) -> None:
        self.token_requests: list[tuple[str | None, dict[str, list[str]]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        chain = scope.get("extensions", {}).get("tls", {}).get("client_cert_chain") or []
        presented = fingerprint(load_certificate(chain[0])) if chain else None
        headers = dict(scope["headers"])
        if scope["path"] == "/oauth/token":
            form = urllib.parse.parse_qs(body.decode())
            self.token_requests.append((presented, form))
            ok = presented is not None and b"authorization" not in headers
            answer = {"access_token": self.token, "token_type": "bearer", "expires_in": 600}
            await _reply(send, 200 if ok else 401, answer if ok else {"error": "invalid_client"})
        elif headers.get(b"authorization") == f"Bearer {self.token}".encode():
            listing = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": 0,
                "Resources": [],
            }
            await _reply(send, 200, listing)
        else:
            await _reply(send, 401, {"detail": "a bearer token is needed"})


async def _reply(send: Any, status: int, data: Any) -> None:
    body = json.dumps(data).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_oauth_with_the_client_certificate(services: Services, pki: PKI, tmp_path: Path) -> None:
    """OAuth certificate authentication: the token is fetched over mTLS with client_id and
    no secret, then sent as a bearer token."""
    client_ca = tmp_path / "tenant-ca.pem"
    client_ca.write_text(services.certificates.ca_pem(Context.system("test")), encoding="ascii")
    app = TokenService()
    tls = {
        "ssl_certfile": str(pki.server_cert),
        "ssl_keyfile": str(pki.server_key),
        "ssl_ca_certs": str(client_ca),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "http": CertificateProtocol,
    }
    with serve_asgi(app, **tls) as port:
        base = f"https://127.0.0.1:{port}"
        target = system(
            services,
            name="Business Network",
            type="scim",
            role="target",
            properties={
                "URL": f"{base}/scim",
                "Authentication": "ClientCertificateAuthentication",
                "OAuth2TokenServiceURL": f"{base}/oauth/token",
                "client_id": "sap-ips",
            },
        )
        made = services.certificates.generate_outbound(Context.system("test"), target.id)
        tested = asyncio.run(services.systems.test_connection(Context.system("test"), target.id))
        assert tested.ok, tested.message
        [(presented, form)] = app.token_requests
        assert presented == made.details.fingerprint
        assert form["client_id"] == ["sap-ips"] and "client_secret" not in form
