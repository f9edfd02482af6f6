"""python-ldap behind a small blocking API: one connection, its TLS and bind, and errors.

A ``Session`` is one LDAP connection, connected and bound on its first operation and used by
one thread at a time (the connector's pool lends it to one task, whose calls run in threads).
A connection binds as ``ldap.user`` (simple bind) or, with ClientCertificateAuthentication,
presents the system's active client certificate in the TLS handshake and binds by SASL
EXTERNAL. Every python-ldap error leaves here as a ``ConnectorError`` with a message fit for a
job log: it names the URL, the operation and the DN, and never the password or the key.
"""

from __future__ import annotations

import os
import socket
import ssl
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ldap  # type: ignore[import-untyped]
from ldap.controls import LDAPControl, SimplePagedResultsControl  # type: ignore[import-untyped]

from provisor.connectors.base import (
    AuthenticationFailed,
    BackendError,
    ConnectionFailed,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    excerpt,
)
from provisor.connectors.ldap.options import LDAPOptions, SSLMode
from provisor.connectors.outbound import OutboundRefused, resolve
from provisor.connectors.tls import TLSFailed
from provisor.errors import ConfigError

T = TypeVar("T")
Entry = tuple[str, dict[str, list[bytes]]]

PERMISSIVE_MODIFY = "1.2.840.113556.1.4.1413"  # AD and OpenLDAP: no error for present values
STARTTLS_REQUEST = (  # LDAPMessage{1, ExtendedRequest{1.3.6.1.4.1.1466.20037}}, for diagnosis
    b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + b"1.3.6.1.4.1.1466.20037"
)
VOLATILE = "/dev/shm"  # tmpfs: the client certificate's key file never reaches a disk

# LDAP result codes whose cause is the entity sent: the server's message goes to the job log.
INVALID = (
    ldap.OBJECT_CLASS_VIOLATION,
    ldap.UNDEFINED_TYPE,
    ldap.INVALID_SYNTAX,
    ldap.CONSTRAINT_VIOLATION,
    ldap.NAMING_VIOLATION,
    ldap.INVALID_DN_SYNTAX,
    ldap.NOT_ALLOWED_ON_RDN,
    ldap.INAPPROPRIATE_MATCHING,
    ldap.NO_OBJECT_CLASS_MODS,
)
DENIED = (ldap.INSUFFICIENT_ACCESS, ldap.STRONG_AUTH_REQUIRED, ldap.CONFIDENTIALITY_REQUIRED)
TRANSIENT = (ldap.BUSY, ldap.UNAVAILABLE, ldap.ADMINLIMIT_EXCEEDED, ldap.LOOP_DETECT)
NETWORK = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT)
# What a SASL EXTERNAL bind gets when there is no certificate identity to bind as.
SASL_REFUSED = (
    ldap.AUTH_UNKNOWN,
    ldap.AUTH_METHOD_NOT_SUPPORTED,
    ldap.INAPPROPRIATE_AUTH,
    ldap.INVALID_CREDENTIALS,
)
NO_ATTRIBUTES = ["1.1"]  # RFC 4511: return no attributes


class ValueConflict(InvalidEntity):
    """A value to add is there already, or one to delete is not."""


def server_message(exc: ldap.LDAPError) -> str:
    """What the server (or libldap) said: ``Object class violation (object class ... 'cn')``."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    desc, detail = str(info.get("desc", type(exc).__name__)), str(info.get("info", "")).strip()
    if detail and detail != "(unknown error code)":
        return f"{desc} ({excerpt(detail)})"
    return desc


class Session:
    """One connection to the server, opened on first use; blocking, one thread at a time."""

    def __init__(self, options: LDAPOptions) -> None:
        self.options = options
        self.broken = False  # set when the connection can no longer be trusted
        self._conn: Any = None
        self._reused = False  # the connection served an earlier call (it may have timed out)

    # -- connection -------------------------------------------------------------------------------

    def open(self) -> None:
        if self._conn is None:
            self._conn = connect(self.options)
            self.broken = False

    def lend(self) -> None:
        """Mark the start of a call by a new borrower."""
        self._reused = self._conn is not None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.unbind_s()
            except ldap.LDAPError:
                pass

    def call(self, action: str, target: str, operation: Callable[[Any], T]) -> T:
        """Run one operation, translating errors. A connection that served an earlier call
        and turns out to be dead (the server dropped it while idle) is replaced once."""
        self.open()
        retry, self._reused = self._reused, False
        with self.errors(action, target):
            try:
                return operation(self._conn)
            except ldap.SERVER_DOWN:
                if not retry:
                    raise
            self.close()
            self.open()
            return operation(self._conn)

    @contextmanager
    def errors(self, action: str, target: str) -> Iterator[None]:
        """Translate python-ldap errors of ``action`` on ``target`` (a DN) to ConnectorErrors."""
        try:
            yield
        except ldap.LDAPError as exc:
            if isinstance(exc, NETWORK):
                self.broken = True
            raise translate(exc, self.options, action, target) from None

    # -- operations -------------------------------------------------------------------------------

    def search(
        self,
        base: str,
        filterstr: str,
        attributes: Sequence[str] | None = None,
        *,
        scope: int = ldap.SCOPE_SUBTREE,
    ) -> list[Entry]:
        """Every entry found (no paging: for lookups that find a few)."""
        timeout = self.options.read_timeout

        def run(conn: Any) -> list[Entry]:
            found = conn.search_ext_s(
                base, scope, filterstr, _attrlist(attributes), timeout=timeout
            )
            return [(dn, attrs) for dn, attrs in found if dn is not None]

        return self.call("search", base, run)

    def base(self, dn: str, attributes: Sequence[str] | None = None) -> Entry | None:
        """One entry by DN, or None when there is none."""
        try:
            found = self.search(dn, "(objectClass=*)", attributes, scope=ldap.SCOPE_BASE)
        except EntityNotFound:
            return None
        return found[0] if found else None

    def pages(
        self, base: str, filterstr: str, attributes: Sequence[str] | None, page_size: int
    ) -> Iterator[tuple[list[Entry], bool]]:
        """The entries found, one page (simple paged results) at a time, each with whether
        it is the last."""
        control = SimplePagedResultsControl(True, size=page_size, cookie="")
        timeout = self.options.read_timeout
        while True:

            def run(conn: Any) -> tuple[list[Entry], bytes]:
                msgid = conn.search_ext(
                    base,
                    ldap.SCOPE_SUBTREE,
                    filterstr,
                    _attrlist(attributes),
                    serverctrls=[control],
                    timeout=timeout,
                )
                _, data, _, controls = conn.result3(msgid, timeout=timeout)
                cookie = b""
                for response in controls or ():
                    if response.controlType == SimplePagedResultsControl.controlType:
                        cookie = response.cookie
                return [(dn, attrs) for dn, attrs in data if dn is not None], cookie

            entries, cookie = self.call("search", base, run)
            yield entries, not cookie
            if not cookie:
                return
            control.cookie = cookie

    def add(self, dn: str, attributes: dict[str, list[bytes]]) -> None:
        modlist = list(attributes.items())
        self.call("add", dn, lambda conn: conn.add_ext_s(dn, modlist))

    def modify(
        self,
        dn: str,
        changes: Sequence[tuple[int, str, list[bytes] | None]],
        permissive: bool = False,
    ) -> None:
        """Modify an entry; ``permissive`` asks the server to skip values already there (add)
        or not there (delete) instead of failing (AD, and OpenLDAP for adds)."""
        if not changes:
            return
        modlist = list(changes)
        controls = [LDAPControl(PERMISSIVE_MODIFY, False, None)] if permissive else None
        self.call("modify", dn, lambda conn: conn.modify_ext_s(dn, modlist, serverctrls=controls))

    def rename(self, dn: str, new_rdn: str) -> None:
        self.call("rename", dn, lambda conn: conn.rename_s(dn, new_rdn, None, 1))

    def delete(self, dn: str) -> None:
        self.call("delete", dn, lambda conn: conn.delete_ext_s(dn))

    def whoami(self) -> str:
        return str(self.call("bind", "", lambda conn: conn.whoami_s()))


def _attrlist(attributes: Sequence[str] | None) -> list[str] | None:
    return list(attributes) if attributes is not None else None


# -- connecting -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a connection goes, as the outbound policy allowed it."""

    host: str
    port: int
    addresses: tuple[str, ...]  # every address of the host, each checked
    url: str  # what libldap is given: the checked addresses, or the name when TLS verifies it
    named: bool  # libldap resolves the name itself: the peer is checked after connecting


def destination(options: LDAPOptions) -> Destination:
    """The server's checked addresses. Without certificate verification libldap connects
    to the checked address itself; with it, libldap needs the name to verify the server's
    certificate, so the name is given and the connected peer is checked (``check_peer``)."""
    url = options.url
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (636 if parts.scheme.lower() == "ldaps" else 389)
    except ValueError:
        raise ConnectionFailed(f"cannot connect to {url}: bad port") from None
    try:
        addresses = tuple(resolve(options.outbound, host, port))
    except socket.gaierror:
        raise ConnectionFailed(f"cannot connect to {url}: unknown host {host}") from None
    if options.ssl_mode is not SSLMode.NONE and not options.trust_all:
        return Destination(host, port, addresses, url, named=addresses != (host,))
    urls = (  # libldap tries each in turn
        parts._replace(netloc=f"[{a}]:{port}" if ":" in a else f"{a}:{port}").geturl()
        for a in addresses
    )
    return Destination(host, port, addresses, " ".join(urls), named=False)


def check_peer(conn: Any, options: LDAPOptions, target: Destination) -> None:
    """Check the address libldap connected to: it resolved the name again, and the answer
    may have changed since it was checked."""
    with socket.socket(fileno=os.dup(conn.get_option(ldap.OPT_DESC))) as sock:
        peer = str(sock.getpeername()[0])
    if peer not in target.addresses:
        options.outbound.check_addresses(target.host, [peer])


def connect(options: LDAPOptions) -> Any:
    """A connection with the options' TLS and timeouts, bound as ``ldap.user``, or by SASL
    EXTERNAL with the client certificate (read now: an activation counts from the next
    connection), to a destination the outbound policy allows."""
    certificate = options.client_certificate() if options.client_certificate else None
    if certificate is None and options.bind_dn and not options.password:
        # would be an "unauthenticated" bind
        raise AuthenticationFailed(f"ldap.password is empty: cannot bind as {options.bind_dn}")
    target = destination(options)
    conn = ldap.initialize(target.url)
    conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
    conn.set_option(ldap.OPT_REFERRALS, 0)  # never chase (AD answers with referrals)
    conn.set_option(ldap.OPT_NETWORK_TIMEOUT, options.connect_timeout)
    conn.set_option(ldap.OPT_TIMEOUT, options.read_timeout)
    conn.timeout = options.read_timeout  # python-ldap's wait for the result of *_s calls
    if options.ssl_mode is not SSLMode.NONE:
        if options.trust_all:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_NEVER)
        else:
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            if options.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, options.ca_file)
        if certificate is not None:
            present(conn, *certificate)
        else:
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the TLS options above
    try:
        if options.ssl_mode is SSLMode.STARTTLS:
            conn.start_tls_s()
            if target.named:
                check_peer(conn, options, target)  # before the bind sends the password
        if certificate is not None:
            conn.sasl_non_interactive_bind_s("EXTERNAL")
        else:
            conn.simple_bind_s(options.bind_dn, options.password)
        if target.named:
            check_peer(conn, options, target)
    except ldap.LDAPError as exc:
        _unbind(conn)
        # With a certificate, a server hanging up right after the handshake may leave the
        # SASL layer without a connection: a local error.
        lost = NETWORK if certificate is None else (*NETWORK, ldap.LOCAL_ERROR)
        if isinstance(exc, lost):
            raise diagnose(options, target, exc) from None
        who = "" if certificate is not None else options.bind_dn
        raise translate(exc, options, "bind", who) from None
    except OutboundRefused:
        _unbind(conn)
        raise
    return conn


def _unbind(conn: Any) -> None:
    try:
        conn.unbind_s()
    except ldap.LDAPError:
        pass


def present(conn: Any, cert_pem: str, key_pem: str) -> None:
    """Give a connection its client certificate and apply its TLS options (NEWCTX, last).
    libldap reads certificates only from files, when NEWCTX builds the TLS context: they are
    written to a private directory (on tmpfs where there is one) and deleted right after."""
    volatile = os.path.isdir(VOLATILE) and os.access(VOLATILE, os.W_OK | os.X_OK)
    with tempfile.TemporaryDirectory(  # mode 0700, removed with its files on leaving
        prefix="provisor-ldap-", dir=VOLATILE if volatile else None
    ) as folder:
        cert_file, key_file = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        _write_private(cert_file, cert_pem)
        _write_private(key_file, key_pem)
        conn.set_option(ldap.OPT_X_TLS_CERTFILE, cert_file)
        conn.set_option(ldap.OPT_X_TLS_KEYFILE, key_file)
        try:
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)
        except (ValueError, ldap.LDAPError):  # python-ldap says only "option error"
            raise ConfigError(
                "The system's client certificate cannot be loaded: libldap refused the "
                "certificate or its key."
            ) from None


def _write_private(path: str, text: str) -> None:
    """Write a file only its owner can read (created so: never readable by others)."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)


def translate(exc: ldap.LDAPError, options: LDAPOptions, action: str, target: str) -> Exception:
    """The ConnectorError for a python-ldap error of ``action`` on ``target``."""
    url, said, who = options.url, server_message(exc), options.who
    where = f"{action} {target}" if target else action
    if options.client_certificate is not None and isinstance(exc, SASL_REFUSED):
        return AuthenticationFailed(
            f"{url} refused the SASL EXTERNAL bind with the system's client certificate: "
            f"{said} (the server must ask for the client certificate in the TLS handshake, "
            "trust it and map its subject to an LDAP identity)"
        )
    if isinstance(exc, ldap.INVALID_CREDENTIALS):
        return AuthenticationFailed(f"{url} rejected the credentials of {who}: {said}")
    if isinstance(exc, ldap.TIMEOUT | ldap.TIMELIMIT_EXCEEDED):
        return ConnectionFailed(f"{url} did not answer {where} within {options.read_timeout:g} s")
    if isinstance(exc, NETWORK):
        return ConnectionFailed(f"lost the connection to {url} during {where}: {said}")
    if isinstance(exc, ldap.ALREADY_EXISTS):
        return EntityConflict(f"{target} already exists")
    if isinstance(exc, ldap.NO_SUCH_OBJECT):
        return EntityNotFound(f"{target} does not exist ({where})")
    if isinstance(exc, ldap.TYPE_OR_VALUE_EXISTS | ldap.NO_SUCH_ATTRIBUTE):
        return ValueConflict(f"{url} refused {where}: {said}")
    if isinstance(exc, INVALID):
        return InvalidEntity(f"{url} refused {where}: {said}")
    if isinstance(exc, DENIED):
        return AuthenticationFailed(f"{url} does not allow {who} to {where}: {said}")
    if isinstance(exc, TRANSIENT):
        return BackendError(f"{url} could not {where}: {said}", retryable=True)
    return BackendError(f"{url} failed to {where}: {said}")


def diagnose(options: LDAPOptions, target: Destination, exc: ldap.LDAPError) -> ConnectionFailed:
    """Why connecting failed, found by retracing the steps with the socket and ssl modules
    (libldap's GnuTLS build reports most failures as ``Can't contact LDAP server``), to the
    first checked address. The retrace presents no client certificate: with one, a handshake
    that fails for another reason than the server's certificate is said to be the likely
    refusal of ours. A failed TLS handshake is ``TLSFailed``, which trying again cannot mend."""
    found = _retrace(options, target, exc)
    if isinstance(found, ConnectionFailed):
        return found
    return ConnectionFailed(found)


def _retrace(options: LDAPOptions, target: Destination, exc: ldap.LDAPError) -> str | TLSFailed:
    url, host = options.url, target.host
    timeout = options.connect_timeout
    try:
        sock = socket.create_connection((target.addresses[0], target.port), timeout=timeout)
    except TimeoutError:
        return f"cannot connect to {url}: no answer within {timeout:g} s"
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        return f"cannot connect to {url}: {reason}"
    with sock:
        if options.ssl_mode is SSLMode.NONE:
            if isinstance(exc, ldap.TIMEOUT):
                return f"{url} did not answer the bind within {options.read_timeout:g} s"
            return f"cannot talk LDAP with {url}: {server_message(exc)}"
        verb = "StartTLS" if options.ssl_mode is SSLMode.STARTTLS else "TLS handshake"

        def failed(reason: object) -> TLSFailed:
            if options.client_certificate is None:
                return TLSFailed(f"{verb} with {url} failed: {reason}")
            return TLSFailed(  # after StartTLS too, what failed is the handshake (or a hang-up)
                f"TLS handshake with {url} failed: {reason} (the server may require a valid "
                "client certificate: does it trust the CA that issued the system's certificate?)"
            )

        try:
            if options.ssl_mode is SSLMode.STARTTLS:
                sock.sendall(STARTTLS_REQUEST)
                answer = sock.recv(4096)
                code = answer.find(b"\x0a\x01")  # the ENUMERATED resultCode
                if code < 0 or answer[code + 2] != 0:
                    return f"{verb} with {url} failed: the server refused StartTLS"
            context = ssl.create_default_context(cafile=options.ca_file)
            if options.trust_all:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            with context.wrap_socket(sock, server_hostname=host):
                pass
        except ssl.SSLCertVerificationError as error:
            return TLSFailed(
                f"{verb} with {url} failed: certificate verify failed ({error.verify_message})"
            )
        except ssl.SSLError as error:
            return failed(error.reason or error)
        except OSError as error:
            return failed(error).message  # the network, maybe: worth another try
        if options.client_certificate is None:  # the handshake works: something else failed
            return failed(server_message(exc)).message
        return failed(server_message(exc))  # it works without our certificate: refused
