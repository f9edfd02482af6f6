"""LDAP systems authenticate with their client certificate: the active outbound certificate in
the TLS handshake, then a SASL EXTERNAL bind, against a real slapd that demands certificates
of the tenant CA (``TLSVerifyClient demand``) and maps their subject to its admin.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ldap  # type: ignore[import-untyped]
import pytest

from provisor.connectors.base import (
    AuthenticationFailed,
    ConnectionFailed,
    Connector,
    ConnectorConfig,
    Role,
)
from provisor.connectors.ldap.client import VOLATILE, Session
from provisor.connectors.ldap.connector import LDAPConnector
from provisor.connectors.tls import TLSFailed
from provisor.context import Context
from provisor.errors import ConfigError, InputError
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.systems.model import NewSystem, System
from tests.connectors.ldap_server import ADMIN_DN, SUFFIX, LDAPServer, running_slapd

PEOPLE, GROUPS = f"ou=people,{SUFFIX}", f"ou=groups,{SUFFIX}"
MODES = {"ldaps": {}, "starttls": {"ldap.ssl.mode": "starttls"}}


def open_services(settings: Settings) -> Services:
    services = Services.open(settings)
    migrate.upgrade(services.db)
    return services


@pytest.fixture
def services(sqlite_settings: Settings) -> Iterator[Services]:
    opened = open_services(sqlite_settings)
    yield opened
    opened.close()


@pytest.fixture
def slapd(services: Services, tmp_path: Path) -> Iterator[LDAPServer]:
    """A slapd that demands client certificates issued by the tenant CA of ``services``."""
    tenant_ca = tmp_path / "tenant-ca.pem"
    tenant_ca.write_text(services.certificates.ca_pem(Context.system("test")))
    with running_slapd(tmp_path / "slapd", client_ca=tenant_ca) as server:
        server.add(
            (dn, {"objectClass": ["organizationalUnit"], "ou": [dn[3:].split(",")[0]]})
            for dn in (PEOPLE, GROUPS)
        )
        yield server


def ldap_system(
    services: Services, server: LDAPServer, name: str = "OpenLDAP", **properties: str
) -> System:
    """A target LDAP system authenticating with its client certificate over ldaps://."""
    new = NewSystem.model_validate(
        {
            "name": name,
            "type": "ldap",
            "role": "target",
            "properties": {
                "ldap.url": server.ldaps_url,
                "ldap.tls.ca.file": str(server.ca_file),
                "ldap.authentication": "ClientCertificateAuthentication",
                "ldap.user.path": PEOPLE,
                "ldap.group.path": GROUPS,
                **properties,
            },
        }
    )
    return services.systems.create(
        Context.administrator("test"),
        new,
    )


def whoami(connector: Connector) -> str:
    """Who a new connection of the connector is bound as."""
    assert isinstance(connector, LDAPConnector)
    session = Session(connector.options)
    try:
        return session.whoami()
    finally:
        session.close()


def url_of(server: LDAPServer, properties: dict[str, str]) -> str:
    return server.url if properties.get("ldap.ssl.mode") == "starttls" else server.ldaps_url


@dataclass
class Given:
    """A file given to libldap, as it was then."""

    path: Path
    mode: int
    text: str


@dataclass
class Presented:
    """The client certificate and key files of one connection."""

    cert: Given | None = None
    key: Given | None = None

    def check_private_and_gone(self) -> None:
        """Private files, in a directory of their own on tmpfs (when there is one), removed
        once the connection has read them."""
        for given in (self.cert, self.key):
            assert given is not None
            assert given.mode == 0o600
            assert not given.path.exists() and not given.path.parent.exists()
            if os.access(VOLATILE, os.W_OK | os.X_OK):
                assert given.path.parent.parent == Path(VOLATILE)


@pytest.fixture
def presented(monkeypatch: pytest.MonkeyPatch) -> list[Presented]:
    """What each new connection is given as client certificate (python-ldap's set_option,
    spied on)."""
    seen: list[Presented] = []
    set_option = ldap.ldapobject.SimpleLDAPObject.set_option

    def spy(self: Any, option: int, value: Any) -> Any:
        if option in (ldap.OPT_X_TLS_CERTFILE, ldap.OPT_X_TLS_KEYFILE):
            path = Path(value)
            given = Given(path, stat.S_IMODE(path.stat().st_mode), path.read_text())
            if option == ldap.OPT_X_TLS_CERTFILE:
                seen.append(Presented(cert=given))
            else:
                seen[-1].key = given
        return set_option(self, option, value)

    monkeypatch.setattr(ldap.ldapobject.SimpleLDAPObject, "set_option", spy)
    return seen


def certificates(presented: list[Presented]) -> list[str]:
    return [p.cert.text if p.cert else "" for p in presented]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_the_client_certificate_binds_and_writes(
    services: Services, slapd: LDAPServer, presented: list[Presented], mode: str
) -> None:
    system = ldap_system(services, slapd, **{"ldap.url": url_of(slapd, MODES[mode])}, **MODES[mode])
    services.certificates.generate_outbound(Context.system("test"), system.id)

    result = await services.systems.test_connection(Context.system("test"), system.id)
    assert result.ok, result.message
    assert f"{PEOPLE} and {GROUPS} are readable" in result.message

    async with services.systems.connector(Context.system("test"), system.id) as target:
        written = await target.create("user", {"cn": ["Ann"], "sn": ["A"]}, entity_id="ann")
        assert written.id == "ann"
        assert whoami(target) == f"dn:{ADMIN_DN}"  # SASL EXTERNAL, the subject mapped
    entry = slapd.entry(f"uid=ann,{PEOPLE}")
    assert entry is not None and entry["sn"] == ["A"]

    cert_pem, key_pem = services.certificates.active_pair(Context.system("test"), system.id) or (
        "",
        "",
    )
    assert len(presented) == 3  # the test, the create and whoami: one connection each
    for files in presented:
        assert files.cert is not None and files.cert.text == cert_pem
        assert files.key is not None and files.key.text == key_pem
        files.check_private_and_gone()


@pytest.mark.anyio
async def test_without_a_certificate_the_test_says_to_generate_one(
    services: Services, slapd: LDAPServer
) -> None:
    system = ldap_system(services, slapd)
    result = await services.systems.test_connection(Context.system("test"), system.id)
    assert not result.ok
    assert result.message == (
        "System OpenLDAP uses ClientCertificateAuthentication but has no active outbound "
        "certificate: generate one for the system first."
    )


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_a_certificate_of_another_ca_is_refused_in_the_handshake(
    services: Services, slapd: LDAPServer, tmp_path: Path, mode: str
) -> None:
    other_settings = Settings(data_dir=tmp_path / "other", file_roots=[tmp_path / "slapd"])
    other = open_services(other_settings)  # another tenant CA
    try:
        url = url_of(slapd, MODES[mode])
        system = ldap_system(other, slapd, **{"ldap.url": url}, **MODES[mode])
        other.certificates.generate_outbound(Context.system("test"), system.id)
        result = await other.systems.test_connection(Context.system("test"), system.id)
        assert not result.ok
        assert result.message.startswith(f"TLS handshake with {url} failed: ")
        assert result.message.endswith(
            "(the server may require a valid client certificate: does it trust the CA that "
            "issued the system's certificate?)"
        )
        assert "PRIVATE KEY" not in result.message
        async with other.systems.connector(Context.system("test"), system.id) as target:
            with pytest.raises(ConnectionFailed) as refused:
                await target.get("user", "ann")
        # issue 13 item 11 (c): a refused certificate is no reason to try again
        assert isinstance(refused.value, TLSFailed) and not refused.value.retryable
    finally:
        other.close()


@pytest.mark.anyio
async def test_a_hang_up_under_the_sasl_layer_is_a_failed_handshake(
    services: Services, slapd: LDAPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that hangs up right after the handshake may leave libldap's SASL layer
    without a socket: it then says ``Local error`` (as when no certificate is sent)."""

    def hung_up(self: Any, mechanism: str) -> None:
        raise ldap.LOCAL_ERROR(
            {"result": -2, "desc": "Local error", "info": "Transport endpoint is not connected"}
        )

    monkeypatch.setattr(ldap.ldapobject.SimpleLDAPObject, "sasl_non_interactive_bind_s", hung_up)
    system = ldap_system(services, slapd)
    services.certificates.generate_outbound(Context.system("test"), system.id)
    async with services.systems.connector(Context.system("test"), system.id) as target:
        with pytest.raises(ConnectionFailed) as failed:
            await target.test_connection()
    assert str(failed.value).startswith(f"TLS handshake with {slapd.ldaps_url} failed: ")
    assert "may require a valid client certificate" in str(failed.value)


@pytest.mark.anyio
async def test_an_activated_certificate_is_presented_from_the_next_connection(
    services: Services, slapd: LDAPServer, presented: list[Presented]
) -> None:
    system = ldap_system(services, slapd)
    first = services.certificates.generate_outbound(Context.system("test"), system.id)
    second = services.certificates.generate_outbound(Context.system("test"), system.id)
    assert not second.active
    first_pem = services.certificates.download(
        Context.system("test"), system.id, first.details.fingerprint
    )
    second_pem = services.certificates.download(
        Context.system("test"), system.id, second.details.fingerprint
    )

    async with services.systems.connector(Context.system("test"), system.id) as target:
        assert await target.get("user", "nobody") is None
        assert certificates(presented) == [first_pem]

        services.certificates.activate(
            Context.system("test"), system.id, second.details.fingerprint
        )
        assert await target.get("user", "nobody") is None  # its open connection stays
        # a new connection of the same connector presents the activated certificate
        assert whoami(target) == f"dn:{ADMIN_DN}"
    assert certificates(presented) == [first_pem, second_pem]
    assert (await services.systems.test_connection(Context.system("test"), system.id)).ok
    assert certificates(presented) == [first_pem, second_pem, second_pem]


@pytest.mark.anyio
async def test_on_premise_and_plain_ldap_are_refused(services: Services, slapd: LDAPServer) -> None:
    on_premise = {"ldap.proxyType": "OnPremise"}
    with pytest.raises(InputError, match=r"cannot be used with ldap\.proxyType=OnPremise"):
        ldap_system(services, slapd, "On premise", **on_premise)
    system = ldap_system(services, slapd, "On premise")  # and if its properties said so
    services.certificates.generate_outbound(Context.system("test"), system.id)
    config = ConnectorConfig(
        system.id,
        system.name,
        Role.TARGET,
        {**services.systems.effective_properties(Context.system("test"), system.id), **on_premise},
        services.systems.connector_services(Context.system("test")),
    )
    async with LDAPConnector(config) as target:
        with pytest.raises(ConfigError) as refused:
            await target.test_connection()
    assert refused.value.message == (
        "System On premise: ClientCertificateAuthentication cannot be used with "
        "ldap.proxyType=OnPremise."
    )

    for name, properties in (
        ("Plain", {"ldap.url": slapd.url}),
        ("Plain too", {"ldap.url": slapd.url, "ldap.ssl.mode": "none"}),
    ):
        plain = ldap_system(services, slapd, name, **properties)
        services.certificates.generate_outbound(Context.system("test"), plain.id)
        result = await services.systems.test_connection(Context.system("test"), plain.id)
        assert not result.ok
        assert result.message == (
            "ldap.authentication=ClientCertificateAuthentication needs TLS (the client "
            "certificate is presented in the TLS handshake), but ldap.ssl.mode is none: use an "
            "ldaps:// URL or ldap.ssl.mode=starttls"
        )


@pytest.mark.anyio
async def test_a_server_that_does_not_ask_for_the_certificate_refuses_the_bind(
    services: Services, tmp_path: Path
) -> None:
    with running_slapd(tmp_path / "no-client-tls") as server:  # TLSVerifyClient never
        system = ldap_system(services, server)
        services.certificates.generate_outbound(Context.system("test"), system.id)
        async with services.systems.connector(Context.system("test"), system.id) as target:
            with pytest.raises(AuthenticationFailed) as failed:
                await target.test_connection()
    assert str(failed.value).startswith(
        f"{server.ldaps_url} refused the SASL EXTERNAL bind with the system's client certificate: "
    )
    assert "map its subject to an LDAP identity" in str(failed.value)


@pytest.mark.anyio
async def test_basic_authentication_still_needs_the_password(
    services: Services, slapd: LDAPServer
) -> None:
    """ldap.user and ldap.password are ignored with a certificate, and still checked without."""
    with_certificate = ldap_system(
        services, slapd, "Cert", **{"ldap.user": ADMIN_DN, "ldap.password": ""}
    )
    services.certificates.generate_outbound(Context.system("test"), with_certificate.id)
    assert (await services.systems.test_connection(Context.system("test"), with_certificate.id)).ok
    basic = ldap_system(
        services,
        slapd,
        "Basic",
        **{"ldap.authentication": "BasicAuthentication", "ldap.user": ADMIN_DN},
    )
    result = await services.systems.test_connection(Context.system("test"), basic.id)
    assert not result.ok and "ldap.password is empty" in result.message
