"""SQL of certificates: provisor's CAs, systems' outbound certificates and their settings and
events. Callers' inbound certificates and the revoked ones are in :mod:`provisor.auth.inbound`
(deleting a technical user or a system revokes them). Every statement goes through the
transaction's tenant scoping."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from provisor.storage import tables as t
from provisor.storage.database import Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundRow:
    fingerprint: str
    system_id: str
    certificate: str
    private_key: str  # encrypted
    active: bool
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


def authority(tx: Transaction, which: str = TENANT_CA) -> tuple[str, str] | None:
    """(certificate PEM, encrypted key PEM) of one of provisor's CAs, if it exists."""
    ca = t.certificate_authority
    stmt = select(ca.c.certificate, ca.c.private_key).where(ca.c.id == which)
    row = tx.execute(tx.scoped(stmt, ca)).first()
    return None if row is None else (row.certificate, row.private_key)


def certificates_of_authorities(tx: Transaction, which: str) -> list[str]:
    """The certificates (PEM) of one kind of provisor's CAs, one per tenant in scope."""
    ca = t.certificate_authority
    stmt = select(ca.c.certificate).where(ca.c.id == which)
    return list(tx.execute(tx.scoped(stmt, ca)).scalars())


def insert_authority(
    tx: Transaction, certificate: str, private_key: str, created: str, which: str = TENANT_CA
) -> bool:
    """Store one of provisor's CAs; False when another process stored it first."""
    ca = t.certificate_authority
    values = {"id": which, "certificate": certificate, "private_key": private_key}
    try:
        with tx.conn.begin_nested():
            tx.execute(insert(ca).values(**tx.tenant_values(ca, {**values, "created": created})))
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


def outbound_of(tx: Transaction, system_id: str) -> list[OutboundRow]:
    """A system's outbound certificates, the active one first."""
    oc = t.outbound_certificates
    stmt = select(oc).where(oc.c.system_id == system_id).order_by(oc.c.active.desc(), oc.c.created)
    return [_outbound(row) for row in tx.execute(tx.scoped(stmt, oc))]


def outbound_of_systems(tx: Transaction, system_ids: Sequence[str]) -> dict[str, list[OutboundRow]]:
    """The outbound certificates of these systems by system id, the active one first."""
    if not system_ids:
        return {}
    oc = t.outbound_certificates
    stmt = (
        select(oc)
        .where(oc.c.system_id.in_(list(system_ids)))
        .order_by(oc.c.system_id, oc.c.active.desc(), oc.c.created)
    )
    found: dict[str, list[OutboundRow]] = {}
    for row in tx.execute(tx.scoped(stmt, oc)):
        cert = _outbound(row)
        found.setdefault(cert.system_id, []).append(cert)
    return found


def active_outbound(tx: Transaction, system_id: str) -> OutboundRow | None:
    oc = t.outbound_certificates
    stmt = select(oc).where(oc.c.system_id == system_id, oc.c.active == 1)
    row = tx.execute(tx.scoped(stmt, oc)).first()
    return None if row is None else _outbound(row)


def systems_with_outbound(tx: Transaction) -> list[str]:
    oc = t.outbound_certificates
    return list(tx.execute(tx.scoped(select(oc.c.system_id).distinct(), oc)).scalars())


def tenants_systems_with_outbound(tx: Transaction) -> list[tuple[str, str]]:
    """(tenant, system id) of the systems with outbound certificates, in the transaction's
    tenants (every tenant's in a context of every tenant)."""
    oc = t.outbound_certificates
    query = select(oc.c.tenant, oc.c.system_id).distinct().order_by(oc.c.tenant, oc.c.system_id)
    return [(r.tenant, r.system_id) for r in tx.execute(tx.scoped(query, oc)).all()]


def active_outbound_everywhere(tx: Transaction, limit: int) -> list[tuple[str, str, str]]:
    """(tenant, system id, PEM) of the active outbound certificates, in the transaction's
    tenants (every tenant's in a context of every tenant), at most ``limit``."""
    oc = t.outbound_certificates
    query = (
        select(oc.c.tenant, oc.c.system_id, oc.c.certificate)
        .where(oc.c.active == 1)
        .order_by(oc.c.tenant, oc.c.system_id)
        .limit(limit)
    )
    return [(r.tenant, r.system_id, r.certificate) for r in tx.execute(tx.scoped(query, oc))]


def insert_outbound(tx: Transaction, row: OutboundRow) -> None:
    oc = t.outbound_certificates
    values = {
        "fingerprint": row.fingerprint,
        "system_id": row.system_id,
        "certificate": row.certificate,
        "private_key": row.private_key,
        "active": int(row.active),
        "created": row.created,
    }
    tx.execute(insert(oc).values(**tx.tenant_values(oc, values)))


def set_active(tx: Transaction, system_id: str, fingerprint: str) -> None:
    """Make one certificate the system's active one, the others inactive."""
    oc = t.outbound_certificates
    stmt = (
        update(oc)
        .where(oc.c.system_id == system_id)
        .values(active=case((oc.c.fingerprint == fingerprint, 1), else_=0))
    )
    tx.execute(tx.scoped(stmt, oc))


def delete_outbound(tx: Transaction, fingerprints: Iterable[str]) -> None:
    oc = t.outbound_certificates
    tx.execute(tx.scoped(delete(oc).where(oc.c.fingerprint.in_(list(fingerprints))), oc))


def auto_regenerate(tx: Transaction, system_id: str) -> bool:
    os_ = t.outbound_settings
    stmt = select(os_.c.auto_regenerate).where(os_.c.system_id == system_id)
    return bool(tx.execute(tx.scoped(stmt, os_)).scalar())


def auto_regenerating(tx: Transaction, system_ids: Sequence[str]) -> set[str]:
    """Those of these systems whose certificates are regenerated automatically."""
    if not system_ids:
        return set()
    os_ = t.outbound_settings
    stmt = select(os_.c.system_id).where(
        os_.c.system_id.in_(list(system_ids)), os_.c.auto_regenerate == 1
    )
    return set(tx.execute(tx.scoped(stmt, os_)).scalars())


def set_auto_regenerate(tx: Transaction, system_id: str, on: bool) -> None:
    os_ = t.outbound_settings
    stmt = update(os_).where(os_.c.system_id == system_id).values(auto_regenerate=int(on))
    if not tx.execute(tx.scoped(stmt, os_)).rowcount:
        values = {"system_id": system_id, "auto_regenerate": int(on)}
        tx.execute(insert(os_).values(**tx.tenant_values(os_, values)))


# -- events ----------------------------------------------------------------------------------


def event_kinds(tx: Transaction, fingerprint: str) -> set[str]:
    ce = t.certificate_events
    stmt = select(ce.c.kind).where(ce.c.fingerprint == fingerprint)
    return set(tx.execute(tx.scoped(stmt, ce)).scalars())


def insert_event(
    tx: Transaction,
    *,
    system_id: str,
    fingerprint: str,
    kind: str,
    subject: str,
    detail: str,
    created: str,
) -> None:
    ce = t.certificate_events
    values = {
        "system_id": system_id,
        "fingerprint": fingerprint,
        "kind": kind,
        "subject": subject,
        "detail": detail,
        "created": created,
    }
    tx.execute(insert(ce).values(**tx.tenant_values(ce, values)))


def events(
    tx: Transaction, *, system_id: str | None = None, since: str | None = None, limit: int = 100
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
        for row in tx.execute(tx.scoped(stmt, ce))
    ]
