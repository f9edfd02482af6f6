"""Certificates of a tenant: its CAs, systems' outbound client certificates, and the inbound
certificates that authenticate callers.

Two CAs, so that trust in one direction never grants trust in the other: the tenant CA
issues outbound certificates (back-ends trust it), the callers CA issues generated inbound
ones (only provisor's HTTPS server trusts it). A caller's certificate is one identity: its
exact fingerprint, or for a ``--client-ca`` partner CA the subject of an attached certificate
that same CA issued; deleting one revokes it for good.

Private keys (the CA's and the outbound certificates') are Fernet-encrypted at rest with a
key derived from the master key and leave this service only to set up a TLS connection.
Of inbound certificates only the certificate is kept. The clock is injectable so the
expiry rules can be tested across months.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from cryptography import x509

from provisor.auth import inbound as inbound_store
from provisor.auth.clients import ClientService
from provisor.auth.inbound import InboundRow
from provisor.auth.permissions import Principal
from provisor.auth.store import find_client
from provisor.certs import policy, store
from provisor.certs.policy import Expiry, Slot
from provisor.certs.x509 import (
    Details,
    InvalidCertificateError,
    KeySpec,
    PrivateKey,
    describe,
    directly_issued_by,
    issue,
    key_pem,
    load_certificate,
    load_key,
    make_ca,
    name,
    normalize_fingerprint,
    pem,
    pkcs12_bundle,
    signature_hash,
)
from provisor.connectors.base import Role
from provisor.context import DEFAULT_TENANT, Context, Permission, PerTenant, requires
from provisor.errors import AuthenticationError, ConflictError, InputError, NotFoundError
from provisor.storage.database import Database, Transaction
from provisor.systems.model import System
from provisor.systems.secrets import CredentialCipher
from provisor.systems.service import SystemService
from provisor.systems.store import get_system
from provisor.timestamps import format_datetime

log = structlog.get_logger("provisor.certs")

Clock = Callable[[], datetime]
DEFAULT_KEY = KeySpec("RSA-2048")
CA_DAYS = 3650
MAX_CN = 64
MIN_PASSWORD = 8
SUBJECTS = {
    "renewed": "Outbound Certificate Renewed. System: {name}",
    "expired": "Outbound Certificate Expiration. System: {name}",
    "expiring": "Outbound Certificate Expiration. System: {name}",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class CertificateOptions:
    """How certificates are issued, and which CAs vouch for callers (besides the tenant CA)."""

    tenant: str = "provisor"
    key: KeySpec = DEFAULT_KEY
    digest: str = "SHA256"
    validity_days: int = 365
    client_cas: tuple[x509.Certificate, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundCertificate:
    system_id: str
    system_name: str
    details: Details
    active: bool
    created: str
    expiry: Expiry
    days_left: int

    def as_json(self) -> dict[str, Any]:
        return {
            **self.details.as_json(),
            "systemId": self.system_id,
            "systemName": self.system_name,
            "status": "ACTIVE" if self.active else "INACTIVE",
            "expiry": {"state": self.expiry.value, "daysLeft": self.days_left},
            "created": self.created,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundListing:
    """A system's outbound certificates (the active one first) and its automatic
    regeneration setting."""

    system_id: str
    system_name: str
    auto_regenerate: bool
    certificates: list[OutboundCertificate]

    def as_json(self) -> dict[str, Any]:
        return {
            "systemId": self.system_id,
            "systemName": self.system_name,
            "autoRegeneration": self.auto_regenerate,
            "certificates": [c.as_json() for c in self.certificates],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundCertificate:
    details: Details
    client_id: str | None
    system_id: str | None
    owner_name: str  # the client's or the system's
    generated: bool
    created: str
    expiry: Expiry
    days_left: int

    @property
    def name(self) -> str:
        return f"cert_client_{self.details.fingerprint}"

    def as_json(self) -> dict[str, Any]:
        owner = (
            {"clientId": self.client_id, "clientName": self.owner_name}
            if self.client_id
            else {"systemId": self.system_id, "systemName": self.owner_name}
        )
        return {
            "name": self.name,
            **self.details.as_json(),
            **owner,
            "generated": self.generated,
            "expiry": {"state": self.expiry.value, "daysLeft": self.days_left},
            "created": self.created,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateEvent:
    system_id: str
    system_name: str
    fingerprint: str
    kind: str
    subject: str
    detail: str
    created: str

    def as_json(self) -> dict[str, Any]:
        return {
            "systemId": self.system_id,
            "systemName": self.system_name,
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "created": self.created,
        }


@dataclass(frozen=True, slots=True)
class Owner:
    """Whom an inbound certificate authenticates: a technical user or a system."""

    client_id: str | None
    system_id: str | None
    name: str


def _owner_id(row: InboundRow) -> str:
    return row.client_id or row.system_id or ""


def _system_names(tx: Transaction, system_ids: Iterable[str]) -> dict[str, str]:
    """The names of these systems, by id (one deleted meanwhile is shown by its id)."""
    rows = {system_id: get_system(tx, system_id) for system_id in set(system_ids)}
    return {system_id: row.name if row else system_id for system_id, row in rows.items()}


def _owner_names(tx: Transaction, rows: Sequence[InboundRow]) -> dict[str, str]:
    """The names of these certificates' owners, by client or system id."""
    names = _system_names(tx, [r.system_id for r in rows if r.system_id])
    for client_id in {r.client_id for r in rows if r.client_id}:
        client = find_client(tx, client_id)
        names[client_id] = client.name if client else client_id
    return names


def _holder(row: InboundRow, names: dict[str, str]) -> str:
    """``client NAME (ID)`` or ``system NAME (ID)``."""
    kind = "client" if row.client_id else "system"
    return f"{kind} {names[_owner_id(row)]} ({_owner_id(row)})"


AUTHENTICATION = "authentication"  # the system actor of authenticate()'s reads, before any caller


class ClientKeys:
    """The systems' active client certificates with their keys: what connectors present for
    ``ClientCertificateAuthentication`` (the systems service is given this at construction)."""

    def __init__(self, db: Database, cipher: CredentialCipher) -> None:
        self.db = db
        self.cipher = cipher

    def active_pair(self, ctx: Context, system_id: str) -> tuple[str, str] | None:
        """Internal: (certificate PEM, key PEM) of the system's active certificate. Read on
        every new connector, so an activation counts at once."""
        with self.db.read(ctx) as tx:
            row = store.active_outbound(tx, system_id)
        return None if row is None else (row.certificate, self.cipher.decrypt(row.private_key))


class CertificateService:
    """The admin operations on certificates are ``@requires``: reading certificates (never a
    key) needs ``view``, changing them ``admin``; ``authority``, ``active_pair`` are internal;
    ``authenticate`` needs no context (it makes the caller's principal)."""

    def __init__(
        self,
        db: Database,
        cipher: CredentialCipher,
        systems: SystemService,
        clients: ClientService,
        options: CertificateOptions | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.systems = systems
        self.clients = clients
        self.options = options or CertificateOptions()
        self.clock = clock
        self.keys = ClientKeys(db, cipher)
        # each tenant's CAs (tenant and callers), once read or created
        self._cas: PerTenant[dict[str, tuple[x509.Certificate, PrivateKey]]] = PerTenant(
            lambda _tenant: {}
        )

    # -- provisor's CAs -------------------------------------------------------------------

    def authority(
        self, ctx: Context, which: str = store.TENANT_CA
    ) -> tuple[x509.Certificate, PrivateKey]:
        """Internal: the tenant CA (or the callers CA) of the call's tenant, created on first
        need."""
        cas = self._cas.get(ctx)
        if which not in cas:
            with self.db.read(ctx) as tx:
                found = store.authority(tx, which)
            if found is None:
                key = self.options.key.generate()
                subject = name(f"{self._label(ctx)} {which} CA", "provisor")
                digest = signature_hash(self.options.digest)
                cert = make_ca(subject, key, digest, self.clock(), CA_DAYS)
                stored = (pem(cert), self.cipher.encrypt(key_pem(key)))
                when = format_datetime(self.clock())
                with self.db.write(ctx) as tx:
                    if not store.insert_authority(tx, *stored, when, which):
                        stored = store.authority(tx, which) or stored  # another process won
                    else:
                        detail = {"subject": cert.subject.rfc4514_string()[:200]}
                        tx.audit("certificate.authority.create", which, detail)
                found = stored
            ca = (load_certificate(found[0]), load_key(self.cipher.decrypt(found[1])))
            cas[which] = ca
        return cas[which]

    @requires(Permission.VIEW)
    def ca_pem(self, ctx: Context) -> str:
        """The tenant CA, which back-ends trust for provisor's outbound certificates."""
        return pem(self.authority(ctx)[0])

    def _issue(
        self,
        ctx: Context,
        subject: x509.Name,
        key_type: str | None,
        validity_days: int | None,
        ca: str = store.TENANT_CA,
    ) -> tuple[x509.Certificate, PrivateKey]:
        spec = KeySpec.parse(key_type) if key_type else self.options.key
        days = self.options.validity_days if validity_days is None else validity_days
        if not 1 <= days <= CA_DAYS:
            raise InputError(f"Validity must be 1 to {CA_DAYS} days, not {days}.")
        ca_cert, ca_key = self.authority(ctx, ca)
        key = spec.generate()
        digest = signature_hash(self.options.digest)
        return issue(ca_cert, ca_key, subject, key, digest, self.clock(), days), key

    # -- outbound ------------------------------------------------------------------------

    def _label(self, ctx: Context) -> str:
        """The tenant's name in certificate subjects: ``PROVISOR_TENANT_NAME`` for the
        default tenant, the tenant's own name for the others."""
        return self.options.tenant if ctx.tenant == DEFAULT_TENANT else ctx.tenant

    def _subject(self, ctx: Context, system_id: str) -> x509.Name:
        return name(f"{self._label(ctx)}-{system_id}"[:MAX_CN], "provisor")

    @requires(Permission.VIEW)
    def outbound(self, ctx: Context, system: str) -> list[OutboundCertificate]:
        """A system's outbound certificates, the active one first."""
        found = self.systems.get(ctx, system)
        with self.db.read(ctx) as tx:
            rows = store.outbound_of(tx, found.id)
        return [self._outbound(row, found.name) for row in rows]

    @requires(Permission.VIEW)
    def outbound_listing(self, ctx: Context, system: str) -> OutboundListing:
        """A system's outbound certificates and whether they are regenerated automatically."""
        found = self.systems.get(ctx, system)
        with self.db.read(ctx) as tx:
            rows = store.outbound_of(tx, found.id)
            auto = store.auto_regenerate(tx, found.id)
        return OutboundListing(
            system_id=found.id,
            system_name=found.name,
            auto_regenerate=auto,
            certificates=[self._outbound(row, found.name) for row in rows],
        )

    @requires(Permission.VIEW)
    def outbound_listings(
        self, ctx: Context, *, role: Role | None = None, offset: int = 0, limit: int = 20
    ) -> tuple[list[OutboundListing], int]:
        """A page of systems (enabled first, then by name) with their outbound certificates
        and automatic regeneration; and how many systems there are."""
        systems, total = self.systems.all(ctx, role=role, offset=offset, limit=limit)
        ids = [s.id for s in systems]
        with self.db.read(ctx) as tx:
            rows = store.outbound_of_systems(tx, ids)
            auto = store.auto_regenerating(tx, ids)
        listings = [
            OutboundListing(
                system_id=s.id,
                system_name=s.name,
                auto_regenerate=s.id in auto,
                certificates=[self._outbound(row, s.name) for row in rows.get(s.id, [])],
            )
            for s in systems
        ]
        return listings, total

    @requires(Permission.VIEW)
    def expiring(
        self, ctx: Context, *, days: int = 30, limit: int = 50
    ) -> list[OutboundCertificate]:
        """The active outbound certificates (of at most ``limit`` systems) that expire within
        ``days`` days or have expired, soonest first."""
        with self.db.read(ctx) as tx:
            system_ids = store.systems_with_outbound(tx)[:limit]
            names = _system_names(tx, system_ids)
            active = [store.active_outbound(tx, system_id) for system_id in system_ids]
        found = [self._outbound(row, names[row.system_id]) for row in active if row is not None]
        return sorted((c for c in found if c.days_left <= days), key=lambda c: c.days_left)

    @requires(Permission.VIEW)
    def days_left(self, ctx: Context, *, limit: int = 10000) -> list[tuple[str, str, int]]:
        """(tenant, system id, days left) of every active outbound certificate of the call's
        tenants (every tenant's in a context of every tenant), at most ``limit``: the
        metrics' certificate gauge, one query."""
        with self.db.read(ctx) as tx:
            rows = store.active_outbound_everywhere(tx, limit)
        moment = self.clock()
        found = []
        for tenant, system_id, text in rows:
            cert = load_certificate(text)
            _, days = policy.expiry(cert.not_valid_before_utc, cert.not_valid_after_utc, moment)
            found.append((tenant, system_id, days))
        return found

    def _outbound(
        self, row: store.OutboundRow, system_name: str, now: datetime | None = None
    ) -> OutboundCertificate:
        """A stored certificate as the API shows it, its expiry as of ``now`` (default: the
        clock's time)."""
        details = describe(load_certificate(row.certificate))
        state, days = policy.expiry(details.not_before, details.not_after, now or self.clock())
        return OutboundCertificate(
            system_id=row.system_id,
            system_name=system_name,
            details=details,
            active=row.active,
            created=row.created,
            expiry=state,
            days_left=days,
        )

    @requires()
    def generate_outbound(
        self,
        ctx: Context,
        system: str,
        *,
        key_type: str | None = None,
        validity_days: int | None = None,
    ) -> OutboundCertificate:
        """A new certificate: active when it is the system's first, else inactive."""
        found = self.systems.get(ctx, system)
        cert, key = self._issue(ctx, self._subject(ctx, found.id), key_type, validity_days)
        with self.db.write(ctx) as tx:
            get_system(tx, found.id, lock=True)  # one change of a system's slots at a time
            existing = store.outbound_of(tx, found.id)
            if len(existing) >= policy.MAX_OUTBOUND:
                raise ConflictError(
                    f"System {found.name} already has {policy.MAX_OUTBOUND} outbound "
                    "certificates: delete the inactive one first."
                )
            row = self._row(found.id, cert, key, active=not existing)
            store.insert_outbound(tx, row)
            tx.audit(
                "certificate.generate",
                row.fingerprint,
                {"direction": "outbound", "systemId": found.id, "active": row.active},
            )
        log.info("outbound certificate generated", system=found.id, fingerprint=row.fingerprint)
        return self._outbound(row, found.name)

    def _row(
        self, system_id: str, cert: x509.Certificate, key: PrivateKey, *, active: bool
    ) -> store.OutboundRow:
        return store.OutboundRow(
            fingerprint=describe(cert).fingerprint,
            system_id=system_id,
            certificate=pem(cert),
            private_key=self.cipher.encrypt(key_pem(key)),
            active=active,
            created=format_datetime(self.clock()),
        )

    def _one(
        self, system: System, fingerprint: str, rows: Sequence[store.OutboundRow]
    ) -> store.OutboundRow:
        """The system's certificate with this fingerprint (or unique prefix of one)."""
        wanted = normalize_fingerprint(fingerprint, prefix=True)
        found = [row for row in rows if row.fingerprint.startswith(wanted)]
        if len(found) > 1:
            raise InputError(f"{wanted} begins several certificates: give more of it.")
        if not found:
            raise NotFoundError(f"System {system.name} has no outbound certificate {wanted}.")
        return found[0]

    @requires(Permission.VIEW)
    def outbound_certificate(
        self, ctx: Context, system: str, fingerprint: str
    ) -> OutboundCertificate:
        found = self.systems.get(ctx, system)
        with self.db.read(ctx) as tx:
            row = self._one(found, fingerprint, store.outbound_of(tx, found.id))
        return self._outbound(row, found.name)

    @requires()
    def activate(self, ctx: Context, system: str, fingerprint: str) -> OutboundCertificate:
        """Make a certificate the active one; the other becomes inactive. The next
        connection to the back-end presents it."""
        found = self.systems.get(ctx, system)
        with self.db.write(ctx) as tx:
            get_system(tx, found.id, lock=True)
            row = self._one(found, fingerprint, store.outbound_of(tx, found.id))
            cert = self._outbound(row, found.name)
            if cert.expiry is Expiry.EXPIRED:
                raise ConflictError(
                    f"Certificate {row.fingerprint} expired on "
                    f"{cert.details.as_json()['validTo']}: generate a new one instead."
                )
            store.set_active(tx, found.id, row.fingerprint)
            tx.audit("certificate.activate", row.fingerprint, {"systemId": found.id})
        log.info("outbound certificate activated", system=found.id, fingerprint=row.fingerprint)
        return self._outbound(dataclasses.replace(row, active=True), found.name)

    @requires(Permission.VIEW)
    def download(self, ctx: Context, system: str, fingerprint: str, *, chain: bool = False) -> str:
        """The certificate as PEM (with the tenant CA after it when ``chain``); never the key."""
        found = self.systems.get(ctx, system)
        with self.db.read(ctx) as tx:
            row = self._one(found, fingerprint, store.outbound_of(tx, found.id))
        return row.certificate + (pem(self.authority(ctx)[0]) if chain else "")

    @requires()
    def delete_outbound(self, ctx: Context, system: str, fingerprint: str) -> OutboundCertificate:
        """Delete an inactive certificate (the active one is in use)."""
        found = self.systems.get(ctx, system)
        with self.db.write(ctx) as tx:
            get_system(tx, found.id, lock=True)
            row = self._one(found, fingerprint, store.outbound_of(tx, found.id))
            if row.active:
                raise ConflictError(
                    "The active certificate cannot be deleted: activate the other one first."
                )
            store.delete_outbound(tx, [row.fingerprint])
            tx.audit(
                "certificate.delete",
                row.fingerprint,
                {"direction": "outbound", "systemId": found.id},
            )
        return self._outbound(row, found.name)

    @requires(Permission.VIEW)
    def auto_regenerate(self, ctx: Context, system: str) -> bool:
        found = self.systems.get(ctx, system)
        with self.db.read(ctx) as tx:
            return store.auto_regenerate(tx, found.id)

    @requires()
    def set_auto_regenerate(self, ctx: Context, system: str, on: bool) -> bool:
        found = self.systems.get(ctx, system)
        with self.db.write(ctx) as tx:
            store.set_auto_regenerate(tx, found.id, on)
            tx.audit("certificate.auto_regeneration", found.id, {"enabled": on})
        return on

    def active_pair(self, ctx: Context, system_id: str) -> tuple[str, str] | None:
        """Internal: (certificate PEM, key PEM) of the system's active certificate: what a
        connector presents."""
        return self.keys.active_pair(ctx, system_id)

    # -- expiry and automatic regeneration --------------------------------------------------

    @requires()
    def maintain(self, ctx: Context) -> list[CertificateEvent]:
        """Apply the expiry rules to every system's certificates now: regenerate where
        automatic regeneration is on and due, record notices. Safe to run anywhere, any
        number of times (each change is decided again under the system's lock). Only ever
        now: a certificate issued as of another time is not valid now, so looking ahead is
        :meth:`rehearse`. A context of every tenant (``ANY_TENANT``: the jobs process's hourly
        upkeep) maintains each tenant's systems in that tenant."""
        with self.db.read(ctx) as tx:
            found = store.tenants_systems_with_outbound(tx)
        happened: list[CertificateEvent] = []
        for tenant, system_id in found:
            happened.extend(self._maintain(ctx.in_tenant(tenant), system_id))
        return happened

    @requires(Permission.VIEW)
    def rehearse(self, ctx: Context, at: datetime | None = None) -> list[CertificateEvent]:
        """What :meth:`maintain` would do now, or had it run at ``at``: the renewals and
        notices it would record, dated then. A dry run: no certificate is issued, activated
        or deleted, no notice recorded, nothing audited."""
        moment = at or self.clock()
        with self.db.read(ctx) as tx:
            system_ids = store.systems_with_outbound(tx)
            plans = [(system_id, *self._upkeep(tx, system_id, moment)) for system_id in system_ids]
            names = _system_names(tx, system_ids)
        planned = (
            self._event(system_id, names[system_id], plan, rows, moment, None)
            for system_id, plan, rows in plans
        )
        return [event for event in planned if event is not None]

    def _upkeep(
        self, tx: Transaction, system_id: str, now: datetime
    ) -> tuple[policy.Upkeep, list[store.OutboundRow]]:
        rows = store.outbound_of(tx, system_id)
        slots = [
            Slot(r.fingerprint, r.active, load_certificate(r.certificate).not_valid_after_utc)
            for r in rows
        ]
        active = next((r for r in rows if r.active), None)
        noticed = store.event_kinds(tx, active.fingerprint) if active else set()
        auto = store.auto_regenerate(tx, system_id)
        return policy.upkeep(slots, auto=auto, now=now, noticed=noticed), rows

    def _event(
        self,
        system_id: str,
        system_name: str,
        plan: policy.Upkeep,
        rows: Sequence[store.OutboundRow],
        now: datetime,
        renewed: str | None,
    ) -> CertificateEvent | None:
        """The event of a system's upkeep ``plan`` at ``now`` (None: nothing to do).
        ``renewed`` is the fingerprint of the certificate a renewal issued; None in a
        rehearsal, which issues none and so says what would be done."""
        active = next((r for r in rows if r.active), None)
        if active is None or not (plan.renew or plan.notice):
            return None
        current = self._outbound(active, system_name, now)
        until = current.details.as_json()["validTo"]
        if plan.renew:
            kind = "renewed"
            retired = ", ".join(plan.retire)
            if renewed is None:
                detail = (
                    f"A new outbound certificate of system {system_name} would be generated "
                    f"and activated; {active.fingerprint}, valid to {until}, would become "
                    "inactive" + (f"; {retired} would be deleted." if retired else ".")
                )
            else:
                detail = (
                    f"A new outbound certificate {renewed} of system {system_name} was "
                    f"generated and activated; {active.fingerprint}, valid to {until}, is now "
                    "inactive" + (f"; {retired} was deleted." if retired else ".")
                )
        else:
            kind = str(plan.notice)
            detail = (
                f"The active outbound certificate {active.fingerprint} of system "
                f"{system_name} expired on {until}."
                if kind == "expired"
                else f"The active outbound certificate {active.fingerprint} of system "
                f"{system_name} expires on {until} (in {current.days_left} days)."
            )
        return CertificateEvent(
            system_id=system_id,
            system_name=system_name,
            fingerprint=active.fingerprint,
            kind=kind,
            subject=SUBJECTS[kind.split("-")[0]].format(name=system_name),
            detail=detail,
            created=format_datetime(now),
        )

    def _maintain(self, ctx: Context, system_id: str) -> list[CertificateEvent]:
        with self.db.read(ctx) as tx:
            plan, _ = self._upkeep(tx, system_id, self.clock())
        if not plan.renew and plan.notice is None:
            return []
        system = self.systems.get(ctx, system_id)
        fresh = self._issue(ctx, self._subject(ctx, system_id), None, None) if plan.renew else None
        with self.db.write(ctx) as tx:
            if get_system(tx, system_id, lock=True) is None:
                return []
            now = self.clock()
            plan, rows = self._upkeep(tx, system_id, now)  # again, under the lock
            renewed = None
            if plan.renew:
                if fresh is None:  # due only since the first look: the next run renews
                    return []
                store.delete_outbound(tx, plan.retire)
                row = self._row(system_id, *fresh, active=False)
                store.insert_outbound(tx, row)
                store.set_active(tx, system_id, row.fingerprint)
                tx.audit(
                    "certificate.generate",
                    row.fingerprint,
                    {"direction": "outbound", "systemId": system_id, "renewed": True},
                )
                renewed = row.fingerprint
            event = self._event(system_id, system.name, plan, rows, now, renewed)
            if event is None:
                return []
            store.insert_event(
                tx,
                system_id=event.system_id,
                fingerprint=event.fingerprint,
                kind=event.kind,
                subject=event.subject,
                detail=event.detail,
                created=event.created,
            )
        log.warning(event.subject, kind=event.kind, detail=event.detail)
        return [event]

    @requires(Permission.VIEW)
    def events(
        self,
        ctx: Context,
        *,
        system: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[CertificateEvent]:
        """Recorded notices and renewals, newest first."""
        system_id = self.systems.get(ctx, system).id if system else None
        with self.db.read(ctx) as tx:
            rows = store.events(tx, system_id=system_id, since=since, limit=limit)
            names = _system_names(tx, [r.system_id for r in rows])
        return [
            CertificateEvent(
                system_id=r.system_id,
                system_name=names[r.system_id],
                fingerprint=r.fingerprint,
                kind=r.kind,
                subject=r.subject,
                detail=r.detail,
                created=r.created,
            )
            for r in rows
        ]

    # -- inbound -------------------------------------------------------------------------

    def _owner(self, ctx: Context, client: str | None, system: str | None) -> Owner:
        if (client is None) == (system is None):
            raise InputError("Attach an inbound certificate to a client or to a system.")
        if client is not None:
            found_client = self.clients.find(ctx, client)
            return Owner(found_client.id, None, found_client.name)
        found = self.systems.get(ctx, system or "")
        if found.role not in (Role.SOURCE, Role.PROXY):
            raise InputError(
                f"{found.name} is a {found.role} system: inbound certificates are for source "
                "and proxy systems (real-time and proxy calls)."
            )
        return Owner(None, found.id, found.name)

    def _inbound(self, row: InboundRow, owner_name: str) -> InboundCertificate:
        details = describe(load_certificate(row.certificate))
        state, days = policy.expiry(details.not_before, details.not_after, self.clock())
        return InboundCertificate(
            details=details,
            client_id=row.client_id,
            system_id=row.system_id,
            owner_name=owner_name,
            generated=row.generated,
            created=row.created,
            expiry=state,
            days_left=days,
        )

    def _attach(
        self,
        ctx: Context,
        cert: x509.Certificate,
        owner: Owner,
        *,
        generated: bool,
    ) -> InboundCertificate:
        details = describe(cert)
        row = InboundRow(
            fingerprint=details.fingerprint,
            client_id=owner.client_id,
            system_id=owner.system_id,
            certificate=pem(cert),
            subject=details.subject,
            issuer=details.issuer,
            generated=generated,
            created=format_datetime(self.clock()),
        )
        with self.db.write(ctx) as tx:
            inbound_store.unrevoke(tx, row.fingerprint)  # attached again on purpose
            if not inbound_store.insert_inbound(tx, row):
                taken = inbound_store.inbound(tx, row.fingerprint)
                holder = _holder(taken, _owner_names(tx, [taken])) if taken else "another owner"
                raise ConflictError(
                    f"This certificate ({row.fingerprint}) is already attached to {holder}: "
                    "a certificate belongs to one identity only."
                )
            owned = {"clientId": row.client_id} if row.client_id else {"systemId": row.system_id}
            tx.audit(
                "certificate.generate" if generated else "certificate.upload",
                row.fingerprint,
                {"direction": "inbound", **owned},
            )
        return self._inbound(row, owner.name)

    @requires()
    def import_inbound(
        self,
        ctx: Context,
        data: bytes | str,
        *,
        client: str | None = None,
        system: str | None = None,
    ) -> InboundCertificate:
        """Attach a caller's certificate (PEM, DER or pasted PEM text) to a technical user or
        to a source or proxy system."""
        owner = self._owner(ctx, client, system)
        cert = load_certificate(data)
        details = describe(cert)
        if details.not_after <= self.clock():
            raise InvalidCertificateError(
                f"The certificate expired on {details.as_json()['validTo']}: get a valid one."
            )
        return self._attach(ctx, cert, owner, generated=False)

    @requires()
    def generate_inbound(
        self,
        ctx: Context,
        client: str | None,
        common_name: str,
        password: str,
        *,
        system: str | None = None,
        key_type: str | None = None,
        validity_days: int | None = None,
    ) -> tuple[InboundCertificate, bytes]:
        """A certificate for a technical user (or, with ``system`` and no client, a source or
        proxy system), issued by the callers CA, with subject CN ``<common name> (<owner
        id>)``; returns it and, once, the ``.p12`` holding its key."""
        owner = self._owner(ctx, client, system)
        cn = f"{common_name.strip()} ({owner.client_id or owner.system_id})"
        if not common_name.strip() or not common_name.isprintable():
            raise InputError("Give a common name of printable characters.")
        if len(cn) > MAX_CN:
            room = MAX_CN - len(cn) + len(common_name.strip())
            raise InputError(
                f"The subject CN {cn!r} has {len(cn)} characters, more than {MAX_CN}: the "
                f"common name may have at most {room}."
            )
        if len(password) < MIN_PASSWORD:
            raise InputError(
                f"The password of the .p12 file needs at least {MIN_PASSWORD} characters."
            )
        cert, key = self._issue(ctx, name(cn), key_type, validity_days, store.CALLERS_CA)
        found = self._attach(ctx, cert, owner, generated=True)
        callers_ca = self.authority(ctx, store.CALLERS_CA)[0]
        return found, pkcs12_bundle(cn, cert, key, callers_ca, password)

    @requires(Permission.VIEW)
    def inbound(
        self, ctx: Context, *, client: str | None = None, system: str | None = None
    ) -> list[InboundCertificate]:
        """Inbound certificates of a client, of a system, or all."""
        client_id = self.clients.find(ctx, client).id if client else None
        system_id = self.systems.get(ctx, system).id if system else None
        with self.db.read(ctx) as tx:
            rows = inbound_store.inbound_of(tx, client_id=client_id, system_id=system_id)
            names = _owner_names(tx, rows)
        return [self._inbound(row, names[_owner_id(row)]) for row in rows]

    @requires(Permission.VIEW)
    def inbound_page(
        self,
        ctx: Context,
        *,
        client: str | None = None,
        system: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[InboundCertificate], int]:
        """A page of the inbound certificates of a client, of a system, or of everyone,
        oldest first; and how many there are."""
        client_id = self.clients.find(ctx, client).id if client else None
        system_id = self.systems.get(ctx, system).id if system else None
        owned = {"client_id": client_id, "system_id": system_id}
        with self.db.read(ctx) as tx:
            rows = inbound_store.inbound_of(tx, **owned, offset=max(offset, 0), limit=limit)
            total = inbound_store.count_inbound(tx, **owned)
            names = _owner_names(tx, rows)
        return [self._inbound(row, names[_owner_id(row)]) for row in rows], total

    @requires()
    def delete_inbound(
        self,
        ctx: Context,
        fingerprint: str,
        *,
        client: str | None = None,
        system: str | None = None,
    ) -> InboundCertificate:
        """Delete (and so revoke) an inbound certificate; of that owner when one is given."""
        wanted = normalize_fingerprint(fingerprint, prefix=True)
        client_id = self.clients.find(ctx, client).id if client else None
        system_id = self.systems.get(ctx, system).id if system else None
        with self.db.write(ctx) as tx:
            found = [
                row
                for row in inbound_store.inbound_starting(tx, wanted)
                if (client_id is None or row.client_id == client_id)
                and (system_id is None or row.system_id == system_id)
            ]
            if len(found) > 1:
                raise InputError(f"{wanted} begins several certificates: give more of it.")
            if not found:
                raise NotFoundError(f"No inbound certificate {wanted} here.")
            gone = self._inbound(found[0], _owner_names(tx, found)[_owner_id(found[0])])
            when = format_datetime(self.clock())
            inbound_store.delete_inbound(tx, found[0], gone.details.serial_number, when)
            owned = {"clientId": gone.client_id} if gone.client_id else {"systemId": gone.system_id}
            tx.audit("certificate.delete", found[0].fingerprint, {"direction": "inbound", **owned})
        log.info("inbound certificate deleted and revoked", fingerprint=found[0].fingerprint)
        return gone

    # -- authentication ------------------------------------------------------------------

    def authenticate(self, tenant: str, cert: x509.Certificate) -> Principal:
        """The technical user (or system) of ``tenant`` a client certificate belongs to
        (certificates attached in another tenant prove nothing here): the attached
        certificate of that fingerprint, or, for a certificate of a ``--client-ca`` CA, the
        owner of the attached certificates of its subject that the same CA issued (renewals
        keep working). Certificates provisor issued count by fingerprint only, and a deleted
        one never again. AuthenticationError otherwise, also when it is expired, not yet
        valid or unreadable."""
        try:
            details = describe(cert)
        except InvalidCertificateError as exc:
            raise AuthenticationError(
                f"The client certificate is unusable: {exc.message}"
            ) from None
        state, _ = policy.expiry(details.not_before, details.not_after, self.clock())
        if state is Expiry.EXPIRED:
            raise AuthenticationError(
                f"The client certificate expired on {details.as_json()['validTo']}."
            )
        if state is Expiry.NOT_YET_VALID:
            raise AuthenticationError(
                f"The client certificate is not valid before {details.as_json()['validFrom']}."
            )
        reading = Context.system(AUTHENTICATION, tenant=tenant)
        with self.db.read(reading) as tx:
            revoked = inbound_store.is_revoked(tx, details.fingerprint)
            row = None if revoked else inbound_store.inbound(tx, details.fingerprint)
            namesakes = (
                [] if revoked or row else inbound_store.inbound_with_subject(tx, details.subject)
            )
        if revoked:
            raise AuthenticationError(
                "The client certificate was deleted, and so revoked: attach a new one."
            )
        if row is None and namesakes:
            row = self._vouched(cert, namesakes)
        if row is None:
            raise AuthenticationError(
                "The client certificate is not known: attach it to a technical user (or a "
                "source or proxy system) first."
            )
        if row.client_id is not None:
            return self.clients.certificate_principal(tenant, row.client_id)
        system = self.systems.get(reading, row.system_id or "")
        permission = Permission.PROXY_API if system.role is Role.PROXY else Permission.REALTIME_API
        return Principal(
            client_id=f"system:{system.id}",
            tenant=tenant,
            name=f"cert_client_{row.fingerprint}",
            permissions=frozenset({permission}),
            method="certificate",
            system=system.id,
        )

    def _vouched(
        self, cert: x509.Certificate, namesakes: Sequence[InboundRow]
    ) -> InboundRow | None:
        """The attached certificate standing for ``cert`` (same subject): one that the
        ``--client-ca`` CA which issued ``cert`` issued too, all of one owner. Subject and
        issuer are bound by signatures, not names, so no other CA (nor a self-signed
        certificate) can mint an attached identity."""
        issuers = [ca for ca in self.options.client_cas if directly_issued_by(cert, ca)]
        same = [
            row
            for row in namesakes
            if any(directly_issued_by(load_certificate(row.certificate), ca) for ca in issuers)
        ]
        owners = {(row.client_id, row.system_id) for row in same}
        return same[0] if len(owners) == 1 else None
