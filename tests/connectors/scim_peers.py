"""Peers for the SCIM connector tests, on loopback: scim2-server (an independent SCIM 2.0
server), uvicorn serving small ASGI apps (scripted answers, TLS, mTLS), and certificates."""

from __future__ import annotations

import datetime
import ipaddress
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider

from tests.conftest import uvicorn_thread

# -- scim2-server ---------------------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class SCIM2Server:
    url: str  # the SCIM base: resources at <url>/Users
    storage: InMemoryStorage
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) received

    def asked(self, endpoint: str) -> int:
        """How many GET requests reached ``<url>/<endpoint>``."""
        return sum(1 for m, p in self.requests if m == "GET" and p.endswith("/" + endpoint))


def _recorded(app: Any, peer: SCIM2Server, missing: tuple[str, ...]) -> Any:
    """The WSGI app recording each request; the endpoints in ``missing`` answer 404."""

    def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        peer.requests.append((environ["REQUEST_METHOD"], path))
        if path.rstrip("/").rsplit("/", 1)[-1] in missing:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not here"]
        return app(environ, start_response)

    return wrapped


@contextmanager
def scim2_server(missing: tuple[str, ...] = ()) -> Iterator[SCIM2Server]:
    """scim2-server (in memory) in a thread, its SCIM base at http://127.0.0.1:<port>/v2;
    the endpoints named in ``missing`` (e.g. ``Schemas``) answer 404."""
    provider = load_default_provider()
    storage = InMemoryStorage()
    app = WSGIApplication(storage, provider, ScimService(provider, secret="s" * 32))
    peer = SCIM2Server(url="", storage=storage)
    server = make_server(
        "127.0.0.1",
        0,
        _recorded(app, peer, missing),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    peer.url = f"http://127.0.0.1:{server.server_port}/v2"
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- uvicorn with any ASGI app --------------------------------------------------------------------


@contextmanager
def serve_asgi(app: Any, **config: Any) -> Iterator[int]:
    """Serve an ASGI app with uvicorn in a thread; its port."""
    with uvicorn_thread(app, log_level="critical", lifespan="off", **config) as port:
        yield port


Reply = tuple[int, dict[str, str], bytes]


@dataclass
class Scripted:
    """An ASGI app giving each request the next scripted reply for its path (the last
    reply repeats), and recording the requests."""

    replies: dict[str, list[Reply]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    handler: Callable[[str, str, dict[str, str], bytes], Reply | None] | None = None

    def script(self, path: str, *replies: Reply) -> None:
        self.replies[path] = list(replies)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        self.requests.append((method, path, headers, body))
        reply = self.handler(method, path, headers, body) if self.handler else None
        if reply is None:
            queue = self.replies.get(path) or [(404, {}, b"")]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
        status, extra, content = reply
        out = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        out.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})


def scim_json(value: Any) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/scim+json"}, json.dumps(value).encode()


def list_response(resources: list[dict[str, Any]], total: int | None = None) -> bytes:
    return json.dumps(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(resources) if total is None else total,
            "itemsPerPage": len(resources),
            "startIndex": 1,
            "Resources": resources,
        }
    ).encode()


def listing(resources: list[dict[str, Any]], total: int | None = None) -> Reply:
    """A 200 reply with a ListResponse."""
    return 200, {"Content-Type": "application/scim+json"}, list_response(resources, total)


# -- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PKI:
    ca: Path  # the CA certificate (PEM) that signed the others
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # a client certificate of another CA
    stranger_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(folder: Path) -> PKI:
    def pem(cert: x509.Certificate, name: str) -> Path:
        path = folder / name
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def key_file(key: ec.EllipticCurvePrivateKey, name: str) -> Path:
        path = folder / name
        _write_key(key, path)
        return path

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("provisor test CA", ca_key, "provisor test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, "provisor test CA", ca_key, server=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("provisor-test-system", client_key, "provisor test CA", ca_key)
    other_key = ec.generate_private_key(ec.SECP256R1())
    stranger_key = ec.generate_private_key(ec.SECP256R1())
    stranger = _certificate("stranger", stranger_key, "another CA", other_key)
    return PKI(
        ca=pem(ca, "ca.pem"),
        ca_key=key_file(ca_key, "ca.key"),
        server_cert=pem(server, "server.pem"),
        server_key=key_file(server_key, "server.key"),
        client_cert=pem(client, "client.pem"),
        client_key=key_file(client_key, "client.key"),
        stranger_cert=pem(stranger, "stranger.pem"),
        stranger_key=key_file(stranger_key, "stranger.key"),
    )
