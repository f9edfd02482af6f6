"""python-ldap behind a small blocking API: one connection, its TLS and bind, and errors.

A ``Session`` is one LDAP connection, connected and bound on its first operation and used by
one thread at a time (the connector's pool lends it to one task, whose calls run in threads).
Every python-ldap error leaves here as a ``ConnectorError`` with a message fit for a job log:
it names the URL, the operation and the DN, and never the password.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ldap  # type: ignore[import-untyped]
from ldap.controls import LDAPControl, SimplePagedResultsControl  # type: ignore[import-untyped]

from provisor.connectors.base import (
    AuthenticationFailed,
    BackendError,
    ConnectionFailed,
    ConnectorError,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
)
from provisor.connectors.ldap.options import LDAPOptions, SSLMode

T = TypeVar("T")
Entry = tuple[str, dict[str, list[bytes]]]

PERMISSIVE_MODIFY = "1.2.840.113556.1.4.1413"  # AD and OpenLDAP: no error for present values
STARTTLS_REQUEST = (  # LDAPMessage{1, ExtendedRequest{1.3.6.1.4.1.1466.20037}}, for diagnosis
    b"\x30\x1d\x02\x01\x01\x77\x18\x80\x16" + b"1.3.6.1.4.1.1466.20037"
)

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


class ValueConflict(InvalidEntity):
    """A value to add is there already, or one to delete is not."""


def server_message(exc: ldap.LDAPError) -> str:
    """What the server (or libldap) said: ``Object class violation (object class ... 'cn')``."""
    info = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    desc, detail = str(info.get("desc", type(exc).__name__)), str(info.get("info", "")).strip()
    if detail and detail != "(unknown error code)":
        return f"{desc} ({detail})"
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


def connect(options: LDAPOptions) -> Any:
    """A connection with the options' TLS and timeouts, bound as ``ldap.user``."""
    if options.bind_dn and not options.password:  # would be an "unauthenticated" bind
        raise AuthenticationFailed(f"ldap.password is empty: cannot bind as {options.bind_dn}")
    conn = ldap.initialize(options.url)
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
                if not os.access(options.ca_file, os.R_OK):
                    raise ConnectorError(f"ldap.tls.ca.file {options.ca_file} cannot be read")
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, options.ca_file)
        conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the TLS options above
    try:
        if options.ssl_mode is SSLMode.STARTTLS:
            conn.start_tls_s()
        conn.simple_bind_s(options.bind_dn, options.password)
    except ldap.LDAPError as exc:
        try:
            conn.unbind_s()
        except ldap.LDAPError:
            pass
        if isinstance(exc, NETWORK):
            raise ConnectionFailed(diagnose(options, exc)) from None
        raise translate(exc, options, "bind", options.bind_dn) from None
    return conn


def translate(exc: ldap.LDAPError, options: LDAPOptions, action: str, target: str) -> Exception:
    """The ConnectorError for a python-ldap error of ``action`` on ``target``."""
    url, said = options.url, server_message(exc)
    where = f"{action} {target}" if target else action
    if isinstance(exc, ldap.INVALID_CREDENTIALS):
        who = options.bind_dn or "an anonymous bind"
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
        who = options.bind_dn or "an anonymous bind"
        return AuthenticationFailed(f"{url} does not allow {who} to {where}: {said}")
    if isinstance(exc, TRANSIENT):
        return BackendError(f"{url} could not {where}: {said}", retryable=True)
    return BackendError(f"{url} failed to {where}: {said}")


def diagnose(options: LDAPOptions, exc: ldap.LDAPError) -> str:
    """Why connecting failed, found by retracing the steps with the socket and ssl modules
    (libldap's GnuTLS build reports most failures as ``Can't contact LDAP server``)."""
    url = options.url
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    try:
        port = parts.port or (636 if parts.scheme.lower() == "ldaps" else 389)
    except ValueError:
        return f"cannot connect to {url}: bad port"
    timeout = options.connect_timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except socket.gaierror:
        return f"cannot connect to {url}: unknown host {host}"
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
            return f"{verb} with {url} failed: certificate verify failed ({error.verify_message})"
        except ssl.SSLError as error:
            return f"{verb} with {url} failed: {error.reason or error}"
        except OSError as error:
            return f"{verb} with {url} failed: {error}"
        return f"{verb} with {url} failed: {server_message(exc)}"
