"""The certificate service on SQLite and PostgreSQL: the tenant CA, outbound certificates and
their expiry rules under a moving clock, inbound certificates and authentication."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from sqlalchemy import select

from provisor.certs.store import CALLERS_CA
from provisor.certs.x509 import InvalidCertificateError, describe, load_certificate, pem
from provisor.connectors.base import Role
from provisor.context import Context, Permission
from provisor.errors import (
    AuthenticationError,
    ConfigError,
    ConflictError,
    InputError,
    NotFoundError,
)
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.storage import tables as t
from provisor.systems.model import NewSystem, System
from provisor.timestamps import format_datetime
from tests.certs.conftest import Clock, self_signed

CTX = Context.system("tests")  # the service calls a test makes directly


def system(services: Services, role: Role = Role.TARGET, name: str = "back-end") -> System:
    properties = {"URL": "https://127.0.0.1:9/scim"} if role is not Role.SOURCE else {}
    kind = "SCIM System" if role is not Role.SOURCE else "Local Identity Directory"
    return services.systems.create(
        Context.administrator("test"),
        NewSystem(name=name, type=kind, role=role, properties=properties),
    )


def test_tenant_ca_is_made_once_and_its_key_is_encrypted(settings: Settings) -> None:
    first = Services.open(settings)
    migrate.upgrade(first.db)
    try:
        ca = load_certificate(first.certificates.ca_pem(Context.system("test")))
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        assert constraints.ca
        assert isinstance(ca.public_key(), rsa.RSAPublicKey)  # the default: RSA 2048
        assert ca.public_key().key_size == 2048  # type: ignore[union-attr]
        with first.db.unscoped_read() as conn:
            stored = conn.execute(select(t.certificate_authority)).one()
        assert "PRIVATE KEY" not in stored.private_key
    finally:
        first.close()
    again = Services.open(settings)
    try:
        assert again.certificates.ca_pem(Context.system("test")) == pem(ca)
    finally:
        again.close()


def test_outbound_slots_activate_download_delete(services: Services) -> None:
    certs = services.certificates
    target = system(services)
    first = certs.generate_outbound(Context.system("test"), target.name)
    second = certs.generate_outbound(Context.system("test"), target.id)
    assert (first.active, second.active) == (True, False)
    assert first.details.subject == second.details.subject == f"O=provisor,CN=provisor-{target.id}"
    assert first.details.issuer == second.details.issuer
    assert first.details.fingerprint != second.details.fingerprint
    assert first.details.key_algorithm == "EC P-256" and first.details.key_size == 256
    assert first.details.signature_algorithm == "ecdsa-with-SHA256"
    assert first.details.not_after - first.details.not_before == timedelta(days=365, minutes=5)
    assert (first.expiry.value, first.days_left) == ("valid", 365)
    with pytest.raises(ConflictError, match="already has 2 outbound certificates"):
        certs.generate_outbound(Context.system("test"), target.id)

    ca = load_certificate(certs.ca_pem(Context.system("test")))
    issued = load_certificate(
        certs.download(Context.system("test"), target.id, first.details.fingerprint)
    )
    issued.verify_directly_issued_by(ca)
    assert "PRIVATE KEY" not in certs.download(
        Context.system("test"), target.id, second.details.fingerprint, chain=True
    )
    assert certs.active_pair(Context.system("test"), target.id) is not None

    colons = ":".join(
        second.details.fingerprint[i : i + 2] for i in range(0, 64, 2)
    ).upper()  # as consoles show fingerprints
    certs.activate(Context.system("test"), target.id, colons)
    assert [
        (c.details.fingerprint, c.active) for c in certs.outbound(Context.system("test"), target.id)
    ] == [
        (second.details.fingerprint, True),
        (first.details.fingerprint, False),
    ]
    pair = certs.active_pair(Context.system("test"), target.id)
    assert pair is not None and load_certificate(pair[0]) == load_certificate(
        certs.download(Context.system("test"), target.id, second.details.fingerprint)
    )
    with pytest.raises(ConflictError, match="active certificate cannot be deleted"):
        certs.delete_outbound(Context.system("test"), target.id, second.details.fingerprint)
    gone = certs.delete_outbound(
        Context.system("test"), target.id, first.details.fingerprint[:10]
    )  # a prefix will do
    assert gone.details.fingerprint == first.details.fingerprint
    assert len(certs.outbound(Context.system("test"), target.id)) == 1
    with pytest.raises(NotFoundError):
        certs.activate(Context.system("test"), target.id, first.details.fingerprint)
    with pytest.raises(ConfigError, match="not a SHA-256 fingerprint"):
        certs.activate(Context.system("test"), target.id, "abc")


def test_key_types_and_validity(services: Services) -> None:
    certs = services.certificates
    target = system(services)
    big = certs.generate_outbound(
        Context.system("test"), target.id, key_type="EC-P384", validity_days=30
    )
    assert (big.details.key_algorithm, big.details.key_size) == ("EC P-384", 384)
    assert big.expiry.value == "expiring"  # 30 days: inside the warning window at once
    rsa3072 = certs.generate_outbound(
        Context.system("test"), system(services, name="b2").id, key_type="rsa-3072"
    )
    assert rsa3072.details.key_size == 3072
    assert rsa3072.details.signature_algorithm == "ecdsa-with-SHA256"  # the CA signs (EC)
    with pytest.raises(ConfigError, match="Key type 'DSA-1024'"):
        certs.generate_outbound(
            Context.system("test"), system(services, name="b3").id, key_type="DSA-1024"
        )
    with pytest.raises(InputError, match="Validity must be 1 to 3650 days"):
        certs.generate_outbound(
            Context.system("test"), system(services, name="b4").id, validity_days=0
        )


def test_expiry_notices_without_automatic_regeneration(services: Services, clock: Clock) -> None:
    certs = services.certificates
    target = system(services, name="ABAP")
    cert = certs.generate_outbound(Context.system("test"), target.id)
    clock.now = cert.details.not_after - timedelta(days=31)
    assert certs.maintain(Context.system("test")) == []
    assert certs.outbound(Context.system("test"), target.id)[0].expiry.value == "valid"
    clock.now = cert.details.not_after - timedelta(days=29, hours=12)
    [notice] = certs.maintain(Context.system("test"))
    assert notice.kind == "expiring-30"
    assert notice.subject == "Outbound Certificate Expiration. System: ABAP"
    assert certs.maintain(Context.system("test")) == []  # once
    assert (
        certs.outbound(Context.system("test"), target.id)[0].expiry.value,
        certs.outbound(Context.system("test"), target.id)[0].days_left,
    ) == (
        "expiring",
        30,
    )
    clock.now = cert.details.not_after - timedelta(days=13)
    assert [e.kind for e in certs.maintain(Context.system("test"))] == ["expiring-14"]
    clock.now = cert.details.not_after - timedelta(days=1)  # a late run: the most urgent only
    assert [e.kind for e in certs.maintain(Context.system("test"))] == ["expiring-3"]
    clock.travel(days=2)
    assert [e.kind for e in certs.maintain(Context.system("test"))] == ["expired"]
    assert certs.maintain(Context.system("test")) == []
    assert certs.outbound(Context.system("test"), target.id)[0].expiry.value == "expired"
    assert [e.kind for e in certs.events(Context.system("test"), system="ABAP")] == [
        "expired",
        "expiring-3",
        "expiring-14",
        "expiring-30",
    ]
    assert len(certs.outbound(Context.system("test"), target.id)) == 1  # nothing regenerated


def test_automatic_regeneration_across_two_simulated_years(
    services: Services, clock: Clock
) -> None:
    certs = services.certificates
    target = system(services, name="BTP")
    certs.generate_outbound(Context.system("test"), target.id)
    certs.set_auto_regenerate(Context.system("test"), target.id, True)
    assert certs.auto_regenerate(Context.system("test"), target.id)
    started = clock.now
    renewals = 0
    for _day in range(2 * 365 + 30):
        clock.travel(days=1)
        events = certs.maintain(Context.system("test"))
        slots = certs.outbound(Context.system("test"), target.id)
        active = [c for c in slots if c.active]
        assert len(active) == 1 and len(slots) <= 2
        assert active[0].details.not_after - clock.now > timedelta(days=14)  # always valid
        for event in events:
            assert event.kind == "renewed"
            assert event.subject == "Outbound Certificate Renewed. System: BTP"
            renewals += 1
    assert renewals == 2  # 14 days before each expiry
    assert clock.now - started > timedelta(days=2 * 365)
    kinds = {e.kind for e in certs.events(Context.system("test"), system=target.id)}
    assert kinds == {"renewed"}


def test_expired_active_with_a_manual_inactive_one(services: Services, clock: Clock) -> None:
    """§8.1: generate new → active, expired → inactive, previous inactive → deleted."""
    certs = services.certificates
    target = system(services)
    old = certs.generate_outbound(Context.system("test"), target.id, validity_days=30)
    manual = certs.generate_outbound(Context.system("test"), target.id, validity_days=365)
    clock.travel(days=40)
    assert certs.outbound(Context.system("test"), target.id)[0].expiry.value == "expired"
    certs.set_auto_regenerate(Context.system("test"), target.id, True)
    [event] = certs.maintain(Context.system("test"))
    assert event.kind == "renewed" and manual.details.fingerprint in event.detail
    slots = {
        c.details.fingerprint: c.active for c in certs.outbound(Context.system("test"), target.id)
    }
    assert slots.pop(old.details.fingerprint) is False
    assert manual.details.fingerprint not in slots
    assert list(slots.values()) == [True]
    with pytest.raises(ConflictError, match="expired"):
        certs.activate(Context.system("test"), target.id, old.details.fingerprint)


def _stored(services: Services) -> tuple[list[object], ...]:
    """Every row a maintenance run may change: certificates, notices, the audit log."""
    with services.db.unscoped_read() as conn:
        return tuple(
            list(conn.execute(select(table)).all())
            for table in (t.outbound_certificates, t.certificate_events, t.audit_log)
        )


def test_a_rehearsal_changes_nothing(services: Services, clock: Clock) -> None:
    """Issue 16: a rehearsal issued a certificate valid only from its date and made it active."""
    certs = services.certificates
    renewing, noticed = system(services, name="BTP"), system(services, name="ABAP")
    first = certs.generate_outbound(CTX, renewing.id)
    certs.generate_outbound(CTX, noticed.id)
    certs.set_auto_regenerate(CTX, renewing.id, True)
    assert certs.rehearse(CTX) == []  # nothing due now
    before = _stored(services)

    at = first.details.not_after - timedelta(days=10)
    planned = sorted(certs.rehearse(CTX, at), key=lambda e: e.system_name)
    assert [(e.system_name, e.kind) for e in planned] == [
        ("ABAP", "expiring-14"),
        ("BTP", "renewed"),
    ]
    renewal = planned[1]
    assert renewal.fingerprint == first.details.fingerprint
    assert renewal.created == format_datetime(at)
    assert "would be generated and activated" in renewal.detail
    assert f"{first.details.fingerprint}, valid to" in renewal.detail
    assert _stored(services) == before
    assert certs.events(CTX) == []
    [active] = [c for c in certs.outbound(CTX, renewing.id) if c.active]
    assert active.details.fingerprint == first.details.fingerprint

    clock.now = at  # the same time, for real: what the rehearsal said
    applied = sorted(certs.maintain(CTX), key=lambda e: e.system_name)
    assert [(e.system_name, e.kind) for e in applied] == [
        ("ABAP", "expiring-14"),
        ("BTP", "renewed"),
    ]
    assert "was generated and activated" in applied[1].detail
    assert certs.rehearse(CTX) == []  # done


# -- inbound ---------------------------------------------------------------------------------------


def test_inbound_import_forms_and_errors(services: Services) -> None:
    certs = services.certificates
    client, _ = services.clients.create(CTX, "idm", ["proxy_api"])
    cert, key = self_signed("idm.example.org")
    text = pem(cert)
    attached = certs.import_inbound(Context.system("test"), text, client=client.name)
    assert attached.name == f"cert_client_{attached.details.fingerprint}"
    assert attached.details.subject == "CN=idm.example.org"
    assert attached.details.key_size == 256 and not attached.generated
    with pytest.raises(ConflictError, match="already attached to client"):
        certs.import_inbound(
            Context.system("test"), cert.public_bytes(serialization.Encoding.DER), client=client.id
        )
    source = system(services, Role.SOURCE, "HR")
    with pytest.raises(ConflictError, match="one identity only"):
        certs.import_inbound(Context.system("test"), text, system=source.id)
    pasted = " ".join(pem(self_signed("pasted")[0]).splitlines())  # line breaks lost
    assert certs.import_inbound(Context.system("test"), pasted, system="HR").system_id == source.id
    der = self_signed("der")[0].public_bytes(serialization.Encoding.DER)
    assert (
        certs.import_inbound(Context.system("test"), der, client=client.id).details.subject
        == "CN=der"
    )

    with pytest.raises(InvalidCertificateError, match="expired on"):
        certs.import_inbound(
            Context.system("test"), pem(self_signed(days=-1, start=-10)[0]), client=client.id
        )
    with pytest.raises(InvalidCertificateError, match=r"Not an X\.509 certificate"):
        certs.import_inbound(Context.system("test"), b"hello world", client=client.id)
    with pytest.raises(InvalidCertificateError, match=r"Not an X\.509 certificate"):
        certs.import_inbound(Context.system("test"), b"\x30\x03\x02\x01\x01", client=client.id)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidCertificateError, match="private key"):
        certs.import_inbound(Context.system("test"), text.encode() + key_pem, client=client.id)
    with pytest.raises(InputError, match="target system"):
        certs.import_inbound(
            Context.system("test"), pem(self_signed("t")[0]), system=system(services).id
        )
    with pytest.raises(InputError, match="to a client or to a system"):
        certs.import_inbound(Context.system("test"), text)
    with pytest.raises(NotFoundError):
        certs.import_inbound(Context.system("test"), pem(self_signed("x")[0]), client="nobody")

    assert {c.details.subject for c in certs.inbound(Context.system("test"), client=client.id)} == {
        "CN=idm.example.org",
        "CN=der",
    }
    assert len(certs.inbound(Context.system("test"))) == 3
    with pytest.raises(NotFoundError):
        certs.delete_inbound(Context.system("test"), attached.details.fingerprint, system=source.id)
    with pytest.raises(ConfigError, match="8 to 64 hex digits"):
        certs.delete_inbound(
            Context.system("test"), attached.details.fingerprint[:6], client=client.id
        )
    certs.delete_inbound(
        Context.system("test"), attached.details.fingerprint[:12].upper(), client=client.id
    )
    assert len(certs.inbound(Context.system("test"))) == 2


def test_generated_inbound_certificate(services: Services) -> None:
    certs = services.certificates
    client, _ = services.clients.create(CTX, "realtime-caller", ["realtime_api"])
    found, bundle = certs.generate_inbound(CTX, client.id, "IAS", "s3cret-pass")
    key, cert, extra = pkcs12.load_key_and_certificates(bundle, b"s3cret-pass")
    assert isinstance(key, ec.EllipticCurvePrivateKey) and cert is not None
    assert cert.subject.rfc4514_string() == f"CN=IAS ({client.id})"
    assert found.details.subject == f"CN=IAS ({client.id})" and found.generated
    # issued by the callers CA, not by the tenant CA that back-ends trust
    assert [c.subject for c in extra] == [
        certs.authority(Context.system("test"), CALLERS_CA)[0].subject
    ]
    assert cert.issuer != load_certificate(certs.ca_pem(Context.system("test"))).subject
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle, b"wrong")
    principal = certs.authenticate("default", cert)
    assert (principal.client_id, principal.method) == (client.id, "certificate")
    assert principal.permissions == {Permission.REALTIME_API}

    with pytest.raises(InputError, match="at most 25"):
        certs.generate_inbound(Context.system("test"), client.id, "x" * 26, "s3cret-pass")
    with pytest.raises(InputError, match="at least 8"):
        certs.generate_inbound(Context.system("test"), client.id, "IAS", "short")
    with pytest.raises(InputError, match="common name"):
        certs.generate_inbound(Context.system("test"), client.id, "  ", "s3cret-pass")


def test_authentication_by_certificate(services: Services, clock: Clock) -> None:
    certs = services.certificates
    client, _ = services.clients.create(CTX, "idm", ["proxy_api", "realtime_api"])
    uploaded, _ = self_signed("idm")
    certs.import_inbound(Context.system("test"), pem(uploaded), client=client.id)
    assert certs.authenticate("default", uploaded).client_id == client.id

    # a --client-ca partner CA vouches for the subject of an attached certificate it issued:
    # a renewed one works
    partner = self_signed("partner CA")
    certs.options = dataclasses.replace(certs.options, client_cas=(partner[0],))
    attached, _ = self_signed("idm-prod", issuer=partner)
    certs.import_inbound(Context.system("test"), pem(attached), client=client.id)
    renewed, _ = self_signed("idm-prod", issuer=partner)
    assert certs.authenticate("default", renewed).client_id == client.id
    # ... provisor's own CAs do not (what they issue counts by fingerprint), nor does a
    # stranger's CA, nor is an unknown subject enough
    generated, _ = certs.generate_inbound(Context.system("test"), client.id, "IdM", "passphrase")
    for ca in (
        certs.authority(Context.system("test"), CALLERS_CA),
        certs.authority(Context.system("test")),
    ):
        with pytest.raises(AuthenticationError, match="not known"):
            certs.authenticate("default", self_signed(f"IdM ({client.id})", issuer=ca)[0])
    stranger_ca = self_signed("stranger CA")
    with pytest.raises(AuthenticationError, match="not known"):
        certs.authenticate("default", self_signed("idm-prod", issuer=stranger_ca)[0])
    with pytest.raises(AuthenticationError, match="not known"):
        certs.authenticate("default", self_signed("someone", issuer=partner)[0])
    with pytest.raises(AuthenticationError, match="expired on"):
        certs.authenticate("default", self_signed("idm-prod", issuer=partner, days=-1, start=-5)[0])
    with pytest.raises(AuthenticationError, match="not valid before"):
        certs.authenticate("default", self_signed("idm-prod", issuer=partner, start=2, days=9)[0])
    clock.travel(days=400)  # the service's clock judges validity
    with pytest.raises(AuthenticationError, match="expired on"):
        certs.authenticate("default", uploaded)
    clock.travel(days=-400)

    certs.delete_inbound(Context.system("test"), describe(attached).fingerprint)
    with pytest.raises(AuthenticationError, match="revoked"):
        certs.authenticate("default", attached)  # revoked by deletion
    with pytest.raises(AuthenticationError, match="not known"):
        certs.authenticate("default", renewed)  # no attached certificate of that subject is left
    certs.delete_inbound(Context.system("test"), generated.details.fingerprint)
    proxy = services.systems.create(
        Context.administrator("test"),
        NewSystem(name="IdM proxy", type="Local Identity Directory", role=Role.PROXY),
    )
    on_system, _ = self_signed("proxy caller")
    certs.import_inbound(Context.system("test"), pem(on_system), system=proxy.id)
    principal = certs.authenticate("default", on_system)
    assert principal.system == proxy.id and principal.permissions == {Permission.PROXY_API}
    services.systems.delete(Context.system("test"), proxy.id)
    with pytest.raises(AuthenticationError):
        certs.authenticate("default", on_system)
    services.clients.delete(CTX, client.id)
    with pytest.raises(AuthenticationError):
        certs.authenticate("default", uploaded)
