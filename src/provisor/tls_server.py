"""HTTPS for ``provisor serve``: the server's TLS context, which asks callers for an optional
client certificate, and the HTTP protocol that hands that certificate to the application.

Which client certificates the TLS layer lets through: those issued by a tenant's callers CA
(generated inbound certificates) or by a CA of ``tls_client_ca``, and every certificate
attached to a technical user or a system of any tenant (anchors of their own, with partial
chains allowed). The handshake happens before the request names its tenant: which tenant's
identity a certificate is, if any, is the application's to decide, in the tenant the request
addresses.
Not the tenant CA: it issues the certificates provisor presents to back-ends, which are no
callers' identities. New attachments count from the next
handshake: the context's trust store is topped up during each handshake when the store's
generation moved. Validity dates are not checked here but by the application, which
answers an expired, not yet valid, unknown or deleted certificate with 401 rather than a
broken handshake. A certificate of an unknown CA never gets past the handshake.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from provisor.auth import inbound
from provisor.certs import store
from provisor.certs.x509 import pem
from provisor.context import ANY_TENANT, Context
from provisor.runtime import certificate_options
from provisor.settings import Settings
from provisor.storage.database import Database

log = structlog.get_logger("provisor.tls")

NO_CHECK_TIME = 0x200000  # X509_V_FLAG_NO_CHECK_TIME: dates are the application's to judge


class CallerTrust:
    """The CAs and attached certificates a server context trusts, kept current."""

    def __init__(self, db: Database, client_cas: str = "") -> None:
        self.db = db
        self.ctx = Context.system("tls", tenant=ANY_TENANT)  # every tenant's callers
        self.client_cas = client_cas
        self.generation: int | None = None
        self.loaded: set[str] = set()  # fingerprints of attached certificates, CAs' PEM
        self._lock = threading.Lock()

    def install(self, ctx: ssl.SSLContext) -> None:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | NO_CHECK_TIME
        if self.client_cas:
            ctx.load_verify_locations(cadata=self.client_cas)
        self.refresh(ctx)
        ctx.sni_callback = self._on_hello

    def _on_hello(self, _sock: Any, _server_name: str | None, ctx: ssl.SSLContext) -> None:
        # Called for every ClientHello (with or without SNI), before the client's certificate
        # is verified: a certificate attached a moment ago is trusted in this handshake.
        try:
            self.refresh(ctx)
        except Exception as exc:  # never break a handshake over the refresh
            log.warning("client certificate trust not refreshed", error=str(exc))

    def refresh(self, ctx: ssl.SSLContext) -> None:
        with self.db.read(self.ctx) as tx:
            generation = inbound.inbound_generation(tx)
            if generation == self.generation:
                return
            # A callers CA is made when its tenant generates its first inbound certificate,
            # which moves the generation too.
            authorities = store.certificates_of_authorities(tx, store.CALLERS_CA)
            rows = inbound.inbound_of(tx)
        with self._lock:
            fresh = {row.fingerprint: row.certificate for row in rows}
            fresh.update({pem_text: pem_text for pem_text in authorities})
            added = [pem_text for key, pem_text in fresh.items() if key not in self.loaded]
            if added:
                ctx.load_verify_locations(cadata="".join(added))
            self.loaded.update(fresh)
            self.generation = generation


def server_context(
    config: Any, default: Callable[[], ssl.SSLContext], settings: Settings | None = None
) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``: its context (server certificate and key) plus the
    trust of callers' certificates."""
    settings = settings or Settings()
    ctx = default()
    client_cas = "".join(pem(ca) for ca in certificate_options(settings).client_cas)
    db = Database(settings.sqlalchemy_url, sqlite_synchronous=settings.sqlite_synchronous)
    CallerTrust(db, client_cas).install(ctx)
    return ctx


class CertificateProtocol(HttpToolsProtocol):
    """httptools' HTTP/1.1 with the ASGI TLS extension: ``scope["extensions"]["tls"]``
    carries the client certificate the handshake accepted (``client_cert_chain``, PEM)."""

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._tls: dict[str, Any] | None = None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            der = ssl_object.getpeercert(binary_form=True)
            self._tls = {
                "tls_version": None,
                "cipher_suite": None,
                "server_cert": None,
                "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
                "client_cert_name": None,
                "client_cert_error": None,
            }

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": self._tls}  # type: ignore[dict-item]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What uvicorn needs to serve HTTPS with client certificates (nothing without
    ``tls_cert``)."""
    if settings.tls_cert is None:
        return {}
    return {
        "ssl_certfile": str(settings.tls_cert),
        "ssl_keyfile": str(settings.tls_key) if settings.tls_key else None,
        "ssl_context_factory": server_context,
        "http": CertificateProtocol,
    }
