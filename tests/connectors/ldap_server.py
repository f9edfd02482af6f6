"""A real slapd for tests: started on free loopback ports in a temporary directory.

The configuration is the tested minimal one of ``/work/shared/notes/ldap-throughput.md``
(back-mdb, ``dbnosync``), with TLS: a CA and a server certificate for ``localhost`` and
``127.0.0.1`` are generated with ``cryptography``; slapd listens on ``ldap://`` (StartTLS
allowed) and ``ldaps://``. No overlay: the connector computes ``memberOf`` from the groups.
Given a client CA, slapd also demands client certificates on TLS (see ``running_slapd``).

When slapd is not installed the fixture fails (never skips) and says to run ``scripts/test``.
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ldap  # type: ignore[import-untyped]
import ldap.modlist  # type: ignore[import-untyped]
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SUFFIX = "dc=example,dc=org"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "secret"
SCHEMAS = ("core", "cosine", "inetorgperson")
SBIN = ("/usr/sbin", "/usr/local/sbin")
# The subject of provisor's outbound certificates (CN=<tenant>-<system id>, O=provisor) as
# slapd writes it (last RDN of the certificate first): SASL EXTERNAL binds as the admin.
CLIENT_SUBJECT = "^o=provisor,cn=[^,]+$"


@dataclass(frozen=True)
class LDAPServer:
    """A running slapd: its URLs, the admin bind and the CA that signed its certificate."""

    url: str  # ldap:// (StartTLS allowed)
    ldaps_url: str
    bind_dn: str
    password: str
    suffix: str
    ca_file: Path
    directory: Path
    pid: int

    def connect(self) -> ldap.ldapobject.LDAPObject:
        """A python-ldap connection bound as the admin (for arranging and checking data)."""
        conn = ldap.initialize(self.url)
        conn.protocol_version = 3
        conn.simple_bind_s(self.bind_dn, self.password)
        return conn

    def add(
        self, entries: Iterable[tuple[str, Mapping[str, Sequence[str | bytes]]]], window: int = 32
    ) -> int:
        """Add entries fast (``window`` requests in flight on one connection); their count.
        An entry below one still in flight waits for it (slapd may reorder requests)."""
        conn = self.connect()
        pending: list[tuple[int, str]] = []
        count = 0
        try:
            for dn, attrs in entries:
                parent = dn.partition(",")[2].lower()
                if len(pending) >= window or any(p == parent for _, p in pending):
                    for msgid, _ in pending:
                        conn.result3(msgid)
                    pending.clear()
                encoded = {
                    k: [v.encode() if isinstance(v, str) else v for v in vs]
                    for k, vs in attrs.items()
                }
                msgid = conn.add_ext(dn, ldap.modlist.addModlist(encoded))
                pending.append((msgid, dn.lower()))
                count += 1
            for msgid, _ in pending:
                conn.result3(msgid)
        finally:
            conn.unbind_s()
        return count

    def entry(self, dn: str) -> dict[str, list[str]] | None:
        """An entry's user attributes as strings, or None."""
        conn = self.connect()
        try:
            found = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)")
        except ldap.NO_SUCH_OBJECT:
            return None
        finally:
            conn.unbind_s()
        return {k: [v.decode(errors="replace") for v in vs] for k, vs in found[0][1].items()}


def find_slapd() -> str:
    found = shutil.which("slapd") or next(
        (f"{d}/slapd" for d in SBIN if Path(f"{d}/slapd").exists()), None
    )
    if found is None:
        pytest.fail(
            "slapd (OpenLDAP) is not installed: run scripts/test, which installs slapd, "
            "ldap-utils, libldap2-dev and libsasl2-dev with apt-get",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_slapd(
    directory: Path, *, durable: bool = False, client_ca: Path | None = None, schema: str = ""
) -> Iterator[LDAPServer]:
    """Start slapd with its files in ``directory``; kill it on exit. Not ``durable``, slapd
    does not sync its database to disk on each write (``dbnosync``: fine for tests).

    With ``client_ca`` (a PEM file), every TLS connection (ldaps:// or StartTLS) must present
    a client certificate signed by that CA, and a SASL EXTERNAL bind with a certificate of
    provisor's subject (``CLIENT_SUBJECT``) is the admin. Plain ldap:// still takes the
    admin's simple bind (``connect``). ``schema`` (slapd.conf attributetype and objectclass
    lines) comes after the standard schemas."""
    slapd = find_slapd()
    sbin = Path(slapd).parent
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "db").mkdir()
    ca_file, cert_file, key_file = write_certificates(directory)
    trusted, client_tls = ca_file, ""
    if client_ca is not None:
        trusted = directory / "trusted.pem"  # slapd's own CA too: one file holds both
        trusted.write_bytes(ca_file.read_bytes() + client_ca.read_bytes())
        client_tls = f'TLSVerifyClient demand\nauthz-regexp "{CLIENT_SUBJECT}" "{ADMIN_DN}"\n'
    conf = directory / "slapd.conf"
    includes = "\n".join(f"include /etc/ldap/schema/{name}.schema" for name in SCHEMAS)
    if schema:
        (directory / "extra.schema").write_text(schema)
        includes += f"\ninclude {directory}/extra.schema"
    conf.write_text(
        f"""{includes}
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {directory}/slapd.pid
loglevel 0
sizelimit unlimited
TLSCACertificateFile {trusted}
TLSCertificateFile {cert_file}
TLSCertificateKeyFile {key_file}
{client_tls}

database mdb
maxsize 2147483648
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {ADMIN_PASSWORD}
directory {directory}/db
{"" if durable else "dbnosync"}
index objectClass eq
index uid eq
index cn eq
index member eq
index entryUUID eq
index modifyTimestamp eq
"""
    )
    base = directory / "base.ldif"
    base.write_text(
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n"
    )
    run_tool(str(sbin / "slaptest"), "-Q", "-u", "-f", str(conf))
    run_tool(str(sbin / "slapadd"), "-q", "-f", str(conf), "-l", str(base))
    port, tls_port = free_port(), free_port()
    url, ldaps_url = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}"
    log = (directory / "slapd.log").open("w")
    process = subprocess.Popen(
        [slapd, "-f", str(conf), "-h", f"{url}/ {ldaps_url}/", "-d", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LDAPServer(
        url=url,
        ldaps_url=ldaps_url,
        bind_dn=ADMIN_DN,
        password=ADMIN_PASSWORD,
        suffix=SUFFIX,
        ca_file=ca_file,
        directory=directory,
        pid=process.pid,
    )
    try:
        wait_until_bound(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def run_tool(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}", pytrace=False)


def wait_until_bound(server: LDAPServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60  # a safety net on a busy machine, not a measurement
    while True:
        try:
            server.connect().unbind_s()
            return
        except ldap.SERVER_DOWN:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (server.directory / "slapd.log").read_text()
                pytest.fail(f"slapd did not start:\n{log}", pytrace=False)
            time.sleep(0.02)


def write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for localhost and 127.0.0.1 signed by it (PEM files)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provisor test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = (directory / n for n in ("ca.pem", "server.pem", "key.pem"))
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


@pytest.fixture(scope="module")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LDAPServer]:
    """One slapd per test module (tests keep apart by working in their own OU)."""
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server
