"""SQL of certificates: provisor's CAs, systems' outbound certificates and their settings and
events, callers' inbound certificates and the revoked ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy import Connection, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from provisor.directory.store import bump_counter, read_counter
from provisor.storage import tables as t

INBOUND_COUNTER = "inbound_certificates"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundRow:
    fingerprint: str
    system_id: str
    certificate: str
    private_key: str  # encrypted
    active: bool
    created: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundRow:
    fingerprint: str
    client_id: str | None
    system_id: str | None
    certificate: str
    subject: str
    issuer: str
    generated: bool
    created: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    id: int
    system_id: str
    fingerprint: str
    kind: str
    subject: str
    detail: str
    created: str


# -- the tenant CA ---------------------------------------------------------------------------


TENANT_CA = "tenant"  # issues outbound certificates: back-ends trust it
CALLERS_CA = "callers"  # issues generated inbound certificates: only provisor trusts it


def authority(conn: Connection, which: str = TENANT_CA) -> tuple[str, str] | None:
    """(certificate PEM, encrypted key PEM) of one of provisor's CAs, if it exists."""
    ca = t.certificate_authority
    row = conn.execute(select(ca.c.certificate, ca.c.private_key).where(ca.c.id == which)).first()
    return None if row is None else (row.certificate, row.private_key)


def insert_authority(
    conn: Connection, certificate: str, private_key: str, created: str, which: str = TENANT_CA
) -> bool:
    """Store one of provisor's CAs; False when another process stored it first."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.certificate_authority).values(
                    id=which, certificate=certificate, private_key=private_key, created=created
                )
            )
    except IntegrityError:
        return False
    return True


# -- outbound --------------------------------------------------------------------------------


def _outbound(row: Any) -> OutboundRow:
    return OutboundRow(
        fingerprint=row.fingerprint,
        system_id=row.system_id,
        certificate=row.certificate,
        private_key=row.private_key,
        active=bool(row.active),
        created=row.created,
    )


def outbound_of(conn: Connection, system_id: str) -> list[OutboundRow]:
    """A system's outbound certificates, the active one first."""
    oc = t.outbound_certificates
    stmt = select(oc).where(oc.c.system_id == system_id).order_by(oc.c.active.desc(), oc.c.created)
    return [_outbound(row) for row in conn.execute(stmt)]


def active_outbound(conn: Connection, system_id: str) -> OutboundRow | None:
    oc = t.outbound_certificates
    row = conn.execute(select(oc).where(oc.c.system_id == system_id, oc.c.active == 1)).first()
    return None if row is None else _outbound(row)


def systems_with_outbound(conn: Connection) -> list[str]:
    oc = t.outbound_certificates
    return list(conn.execute(select(oc.c.system_id).distinct()).scalars())


def insert_outbound(conn: Connection, row: OutboundRow) -> None:
    conn.execute(
        insert(t.outbound_certificates).values(
            fingerprint=row.fingerprint,
            system_id=row.system_id,
            certificate=row.certificate,
            private_key=row.private_key,
            active=int(row.active),
            created=row.created,
        )
    )


def set_active(conn: Connection, system_id: str, fingerprint: str) -> None:
    """Make one certificate the system's active one, the others inactive."""
    oc = t.outbound_certificates
    conn.execute(
        update(oc)
        .where(oc.c.system_id == system_id)
        .values(active=case((oc.c.fingerprint == fingerprint, 1), else_=0))
    )


def delete_outbound(conn: Connection, fingerprints: Iterable[str]) -> None:
    oc = t.outbound_certificates
    conn.execute(delete(oc).where(oc.c.fingerprint.in_(list(fingerprints))))


def auto_regenerate(conn: Connection, system_id: str) -> bool:
    os_ = t.outbound_settings
    value = conn.execute(select(os_.c.auto_regenerate).where(os_.c.system_id == system_id)).scalar()
    return bool(value)


def set_auto_regenerate(conn: Connection, system_id: str, on: bool) -> None:
    os_ = t.outbound_settings
    done = conn.execute(
        update(os_).where(os_.c.system_id == system_id).values(auto_regenerate=int(on))
    ).rowcount
    if not done:
        conn.execute(insert(os_).values(system_id=system_id, auto_regenerate=int(on)))


# -- events ----------------------------------------------------------------------------------


def event_kinds(conn: Connection, fingerprint: str) -> set[str]:
    ce = t.certificate_events
    return set(conn.execute(select(ce.c.kind).where(ce.c.fingerprint == fingerprint)).scalars())


def insert_event(
    conn: Connection,
    *,
    system_id: str,
    fingerprint: str,
    kind: str,
    subject: str,
    detail: str,
    created: str,
) -> None:
    conn.execute(
        insert(t.certificate_events).values(
            system_id=system_id,
            fingerprint=fingerprint,
            kind=kind,
            subject=subject,
            detail=detail,
            created=created,
        )
    )


def events(
    conn: Connection, *, system_id: str | None = None, since: str | None = None, limit: int = 100
) -> list[EventRow]:
    """Events, newest first."""
    ce = t.certificate_events
    stmt = select(ce).order_by(ce.c.created.desc(), ce.c.id.desc()).limit(limit)
    if system_id is not None:
        stmt = stmt.where(ce.c.system_id == system_id)
    if since is not None:
        stmt = stmt.where(ce.c.created >= since)
    return [
        EventRow(
            id=row.id,
            system_id=row.system_id,
            fingerprint=row.fingerprint,
            kind=row.kind,
            subject=row.subject,
            detail=row.detail,
            created=row.created,
        )
        for row in conn.execute(stmt)
    ]


# -- inbound ---------------------------------------------------------------------------------


def _inbound(row: Any) -> InboundRow:
    return InboundRow(
        fingerprint=row.fingerprint,
        client_id=row.client_id,
        system_id=row.system_id,
        certificate=row.certificate,
        subject=row.subject,
        issuer=row.issuer,
        generated=bool(row.generated),
        created=row.created,
    )


def inbound(conn: Connection, fingerprint: str) -> InboundRow | None:
    ic = t.inbound_certificates
    row = conn.execute(select(ic).where(ic.c.fingerprint == fingerprint)).first()
    return None if row is None else _inbound(row)


def inbound_starting(conn: Connection, prefix: str) -> list[InboundRow]:
    """Inbound certificates whose fingerprint begins with ``prefix`` (hex digits only)."""
    ic = t.inbound_certificates
    stmt = select(ic).where(ic.c.fingerprint.startswith(prefix, autoescape=True))
    return [_inbound(row) for row in conn.execute(stmt)]


def inbound_with_subject(conn: Connection, subject: str) -> list[InboundRow]:
    ic = t.inbound_certificates
    return [_inbound(row) for row in conn.execute(select(ic).where(ic.c.subject == subject))]


def inbound_of(
    conn: Connection, *, client_id: str | None = None, system_id: str | None = None
) -> list[InboundRow]:
    """Inbound certificates of one client or system (or all), oldest first."""
    ic = t.inbound_certificates
    stmt = select(ic).order_by(ic.c.created, ic.c.fingerprint)
    if client_id is not None:
        stmt = stmt.where(ic.c.client_id == client_id)
    if system_id is not None:
        stmt = stmt.where(ic.c.system_id == system_id)
    return [_inbound(row) for row in conn.execute(stmt)]


def insert_inbound(conn: Connection, row: InboundRow) -> bool:
    """Store a certificate; False when its fingerprint is taken (by anyone)."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t.inbound_certificates).values(
                    fingerprint=row.fingerprint,
                    client_id=row.client_id,
                    system_id=row.system_id,
                    certificate=row.certificate,
                    subject=row.subject,
                    issuer=row.issuer,
                    generated=int(row.generated),
                    created=row.created,
                )
            )
    except IntegrityError:
        return False
    bump_counter(conn, INBOUND_COUNTER)
    return True


def delete_inbound(conn: Connection, row: InboundRow, serial_number: str, when: str) -> bool:
    """Delete an inbound certificate and revoke it (for good, whatever else is attached)."""
    ic = t.inbound_certificates
    gone = conn.execute(delete(ic).where(ic.c.fingerprint == row.fingerprint)).rowcount > 0
    if gone:
        if not is_revoked(conn, row.fingerprint):
            conn.execute(
                insert(t.revoked_certificates).values(
                    fingerprint=row.fingerprint,
                    subject=row.subject,
                    issuer=row.issuer,
                    serial_number=serial_number,
                    revoked=when,
                )
            )
        bump_counter(conn, INBOUND_COUNTER)
    return gone


def revoke_inbound_of(
    conn: Connection, *, client_id: str | None = None, system_id: str | None = None, when: str
) -> int:
    """Delete and revoke every inbound certificate of one client or one system, before the
    owner goes (the cascade of its deletion would revoke nothing); how many there were."""
    if (client_id is None) == (system_id is None):
        raise ValueError("revoke the certificates of one client or of one system")
    rows = inbound_of(conn, client_id=client_id, system_id=system_id)
    for row in rows:
        cert = x509.load_pem_x509_certificate(row.certificate.encode("ascii"))
        delete_inbound(conn, row, format(cert.serial_number, "x"), when)
    return len(rows)


def is_revoked(conn: Connection, fingerprint: str) -> bool:
    rc = t.revoked_certificates
    found = conn.execute(select(rc.c.fingerprint).where(rc.c.fingerprint == fingerprint))
    return found.first() is not None


def unrevoke(conn: Connection, fingerprint: str) -> None:
    """Forget a revocation: an administrator attached the certificate again."""
    rc = t.revoked_certificates
    conn.execute(delete(rc).where(rc.c.fingerprint == fingerprint))


def inbound_generation(conn: Connection) -> int:
    """Moves whenever an inbound certificate is added or deleted."""
    return read_counter(conn, INBOUND_COUNTER)
