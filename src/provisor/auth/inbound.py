"""SQL of callers' inbound certificates and of the revoked ones.

An inbound certificate is a caller's credential, like a client secret: it lives at the level
of authentication, so that deleting a technical user (``auth``) or a system (``systems``)
revokes its certificates in the same transaction without reaching up to ``certs``, which
manages them (:mod:`provisor.certs.store` holds the CAs and outbound certificates).
Every statement goes through the transaction's tenant scoping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from provisor.storage import tables as t
from provisor.storage.database import Transaction

INBOUND_COUNTER = "inbound_certificates"


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


def inbound(tx: Transaction, fingerprint: str) -> InboundRow | None:
    ic = t.inbound_certificates
    row = tx.execute(tx.scoped(select(ic).where(ic.c.fingerprint == fingerprint), ic)).first()
    return None if row is None else _inbound(row)


def inbound_starting(tx: Transaction, prefix: str) -> list[InboundRow]:
    """Inbound certificates whose fingerprint begins with ``prefix`` (hex digits only)."""
    ic = t.inbound_certificates
    stmt = select(ic).where(ic.c.fingerprint.startswith(prefix, autoescape=True))
    return [_inbound(row) for row in tx.execute(tx.scoped(stmt, ic))]


def inbound_with_subject(tx: Transaction, subject: str) -> list[InboundRow]:
    ic = t.inbound_certificates
    stmt = tx.scoped(select(ic).where(ic.c.subject == subject), ic)
    return [_inbound(row) for row in tx.execute(stmt)]


def inbound_of(
    tx: Transaction,
    *,
    client_id: str | None = None,
    system_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> list[InboundRow]:
    """Inbound certificates of one client or system (or all), oldest first; a page of them
    from ``offset`` when ``limit`` is given."""
    ic = t.inbound_certificates
    stmt = select(ic).where(*_owned(client_id, system_id)).order_by(ic.c.created, ic.c.fingerprint)
    if limit is not None:
        stmt = stmt.offset(offset).limit(limit)
    return [_inbound(row) for row in tx.execute(tx.scoped(stmt, ic))]


def count_inbound(
    tx: Transaction, *, client_id: str | None = None, system_id: str | None = None
) -> int:
    """How many inbound certificates one client or system (or everyone) has."""
    ic = t.inbound_certificates
    stmt = select(func.count()).select_from(ic).where(*_owned(client_id, system_id))
    return int(tx.execute(tx.scoped(stmt, ic)).scalar_one())


def _owned(client_id: str | None, system_id: str | None) -> list[ColumnElement[bool]]:
    ic = t.inbound_certificates
    where = []
    if client_id is not None:
        where.append(ic.c.client_id == client_id)
    if system_id is not None:
        where.append(ic.c.system_id == system_id)
    return where


def insert_inbound(tx: Transaction, row: InboundRow) -> bool:
    """Store a certificate; False when its fingerprint is taken (by anyone)."""
    ic = t.inbound_certificates
    values = {
        "fingerprint": row.fingerprint,
        "client_id": row.client_id,
        "system_id": row.system_id,
        "certificate": row.certificate,
        "subject": row.subject,
        "issuer": row.issuer,
        "generated": int(row.generated),
        "created": row.created,
    }
    try:
        with tx.conn.begin_nested():
            tx.execute(insert(ic).values(**tx.tenant_values(ic, values)))
    except IntegrityError:
        return False
    _bump_generation(tx)
    return True


def delete_inbound(tx: Transaction, row: InboundRow, serial_number: str, when: str) -> bool:
    """Delete an inbound certificate and revoke it (for good, whatever else is attached)."""
    ic = t.inbound_certificates
    stmt = delete(ic).where(ic.c.fingerprint == row.fingerprint)
    gone = tx.execute(tx.scoped(stmt, ic)).rowcount > 0
    if gone:
        if not is_revoked(tx, row.fingerprint):
            rc = t.revoked_certificates
            values = {
                "fingerprint": row.fingerprint,
                "subject": row.subject,
                "issuer": row.issuer,
                "serial_number": serial_number,
                "revoked": when,
            }
            tx.execute(insert(rc).values(**tx.tenant_values(rc, values)))
        _bump_generation(tx)
    return gone


def revoke_inbound_of(
    tx: Transaction, *, client_id: str | None = None, system_id: str | None = None, when: str
) -> int:
    """Delete and revoke every inbound certificate of one client or one system, before the
    owner goes (the cascade of its deletion would revoke nothing); how many there were."""
    if (client_id is None) == (system_id is None):
        raise ValueError("revoke the certificates of one client or of one system")
    rows = inbound_of(tx, client_id=client_id, system_id=system_id)
    for row in rows:
        cert = x509.load_pem_x509_certificate(row.certificate.encode("ascii"))
        delete_inbound(tx, row, format(cert.serial_number, "x"), when)
    return len(rows)


def is_revoked(tx: Transaction, fingerprint: str) -> bool:
    rc = t.revoked_certificates
    found = tx.execute(
        tx.scoped(select(rc.c.fingerprint).where(rc.c.fingerprint == fingerprint), rc)
    )
    return found.first() is not None


def unrevoke(tx: Transaction, fingerprint: str) -> None:
    """Forget a revocation: an administrator attached the certificate again."""
    rc = t.revoked_certificates
    tx.execute(tx.scoped(delete(rc).where(rc.c.fingerprint == fingerprint), rc))


def inbound_generation(tx: Transaction) -> int:
    """Moves whenever an inbound certificate is added or deleted (over every tenant, the
    sum of theirs)."""
    c = t.counters
    stmt = select(func.sum(c.c.value)).where(c.c.name == INBOUND_COUNTER)
    value = tx.execute(tx.scoped(stmt, c)).scalar()
    return int(value or 0)


def _bump_generation(tx: Transaction) -> None:
    c = t.counters
    stmt = update(c).where(c.c.name == INBOUND_COUNTER).values(value=c.c.value + 1)
    if not tx.execute(tx.scoped(stmt, c)).rowcount:
        tx.execute(insert(c).values(**tx.tenant_values(c, {"name": INBOUND_COUNTER, "value": 1})))
