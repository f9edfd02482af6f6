"""The certificates of the admin API (``/api/v1``): the tenant CA, systems' outbound
certificates and their expiry rules, and the inbound certificates that authenticate callers.

The JSON the API answers is typed here as it arrives (camelCase keys). Systems and clients
are named by id or name (the API accepts both); a fingerprint may be given with colons or as
its first 8 or more hex digits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, NotRequired, TypedDict

from provisor.remote.session import Session, path

API = "/api/v1"
KeyType = Literal["RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384"]


class Expiry(TypedDict):
    state: str  # valid | expiring | expired | not yet valid
    daysLeft: int


class Certificate(TypedDict):
    """What every certificate shows."""

    fingerprint: str  # SHA-256, 64 hex digits
    subject: str
    issuer: str
    serialNumber: str
    signatureAlgorithm: str
    keyAlgorithm: str  # RSA, EC P-256, ...
    keySize: int | None
    validFrom: str
    validTo: str
    expiry: Expiry
    created: str


class OutboundCertificate(Certificate):
    """A client certificate a system presents to its back-end."""

    systemId: str
    systemName: str
    status: Literal["ACTIVE", "INACTIVE"]


class OutboundListing(TypedDict):
    """A system's outbound certificates, the active one first."""

    systemId: str
    systemName: str
    autoRegeneration: bool
    certificates: list[OutboundCertificate]


class InboundCertificate(Certificate):
    """A caller's certificate, of a technical user (client) or of a source or proxy system."""

    name: str  # cert_client_<fingerprint>
    generated: bool
    clientId: NotRequired[str]
    clientName: NotRequired[str]
    systemId: NotRequired[str]
    systemName: NotRequired[str]


class Event(TypedDict):
    """An expiry notice or a renewal, recorded or (in a rehearsal) that would be."""

    systemId: str
    systemName: str
    fingerprint: str  # the active certificate it is about
    kind: str  # renewed | expiring-30 | expiring-14 | expiring-3 | expired
    subject: str
    detail: str
    created: str


class Maintenance(TypedDict):
    """What the expiry rules did (``applied``) or would do at ``at`` (a rehearsal)."""

    applied: bool
    at: str
    events: list[Event]


class Generated(TypedDict):
    """A certificate generated for a technical user: its ``.p12`` file (key included, the
    only copy) and the certificate's fingerprint."""

    fingerprint: str
    bundle: bytes


def _owner(client: str | None, system: str | None) -> str:
    """The path of an owner's inbound certificates."""
    if client is not None and system is not None:
        raise ValueError("an inbound certificate has one owner: a client or a system")
    if client is not None:
        return path(f"{API}/clients", client, "certificates")
    if system is not None:
        return path(f"{API}/systems", system, "inbound-certificates")
    return f"{API}/inbound-certificates"


class Certificates:
    """``remote.certificates``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    # -- the tenant CA ------------------------------------------------------------------------

    def ca(self) -> str:
        """The tenant CA certificate (PEM), which back-ends trust for outbound certificates."""
        return self._session.call("GET", f"{API}/certificates/ca").text

    # -- outbound -----------------------------------------------------------------------------

    def _outbound(self, system: str, *rest: str) -> str:
        return path(f"{API}/systems", system, "outbound-certificates", *rest)

    def outbound(self, system: str) -> OutboundListing:
        found: OutboundListing = self._session.json("GET", self._outbound(system))
        return found

    def outbound_certificate(self, system: str, fingerprint: str) -> OutboundCertificate:
        found: OutboundCertificate = self._session.json("GET", self._outbound(system, fingerprint))
        return found

    def generate_outbound(
        self,
        system: str,
        *,
        key_type: KeyType | None = None,
        validity_days: int | None = None,
    ) -> OutboundCertificate:
        """A new certificate: active when it is the system's first, else inactive."""
        body = {
            key: value
            for key, value in (("keyType", key_type), ("validityDays", validity_days))
            if value is not None
        }
        made: OutboundCertificate = self._session.json("POST", self._outbound(system), json=body)
        return made

    def activate(self, system: str, fingerprint: str) -> OutboundCertificate:
        active: OutboundCertificate = self._session.json(
            "POST", self._outbound(system, fingerprint, "activate")
        )
        return active

    def download(self, system: str, fingerprint: str, *, chain: bool = False) -> str:
        """The certificate as PEM (never its key), the tenant CA after it with ``chain``."""
        url = self._outbound(system, fingerprint, "download")
        return self._session.call("GET", url, params={"chain": "true" if chain else None}).text

    def delete_outbound(self, system: str, fingerprint: str) -> None:
        self._session.call("DELETE", self._outbound(system, fingerprint))

    def set_auto_regeneration(self, system: str, enabled: bool) -> bool:
        url = self._outbound(system, "auto-regeneration")
        answer = self._session.json("PUT", url, json={"enabled": enabled})
        return bool(answer["enabled"])

    def events(self, *, system: str | None = None, limit: int = 100) -> list[Event]:
        """Recorded expiry notices and renewals, newest first."""
        params = {"system": system, "limit": limit}
        found: list[Event] = self._session.json("GET", f"{API}/certificates/events", params=params)[
            "events"
        ]
        return found

    def maintain(self, *, at: datetime | None = None, apply: bool = False) -> Maintenance:
        """The expiry rules rehearsed now or at ``at`` (a dry run: nothing changes), or with
        ``apply`` applied now (the server refuses ``apply`` with ``at``)."""
        params = {
            "at": at.isoformat() if at is not None else None,
            "apply": "true" if apply else None,
        }
        done: Maintenance = self._session.json(
            "POST", f"{API}/certificates/maintain", params=params
        )
        return done

    # -- inbound ------------------------------------------------------------------------------

    def inbound(
        self, *, client: str | None = None, system: str | None = None
    ) -> list[InboundCertificate]:
        """Inbound certificates of a client, of a system, or (neither) all."""
        found: list[InboundCertificate] = self._session.json("GET", _owner(client, system))[
            "certificates"
        ]
        return found

    def import_inbound(
        self, certificate: bytes, *, client: str | None = None, system: str | None = None
    ) -> InboundCertificate:
        """Attach a caller's certificate (PEM or DER) to a technical user or to a source or
        proxy system."""
        if client is None and system is None:
            raise ValueError("an inbound certificate is attached to a client or a system")
        attached: InboundCertificate = self._session.json(
            "POST",
            _owner(client, system),
            content=certificate,
            headers={"Content-Type": "application/octet-stream"},
        )
        return attached

    def generate_inbound(
        self,
        client: str,
        common_name: str,
        password: str,
        *,
        key_type: KeyType | None = None,
        validity_days: int | None = None,
    ) -> Generated:
        """A certificate for a technical user, issued by provisor's callers CA (subject CN
        ``<common name> (<client id>)``), and its key in a ``.p12`` protected by
        ``password``: the only copy."""
        body: dict[str, object] = {"commonName": common_name, "password": password}
        if key_type is not None:
            body["keyType"] = key_type
        if validity_days is not None:
            body["validityDays"] = validity_days
        url = path(f"{API}/clients", client, "certificates", "generate")
        answer = self._session.call("POST", url, json=body)
        return Generated(
            fingerprint=answer.headers["X-Certificate-Fingerprint"], bundle=answer.content
        )

    def delete_inbound(
        self, fingerprint: str, *, client: str | None = None, system: str | None = None
    ) -> None:
        """Delete (and so revoke) an inbound certificate; only the owner's when one is named."""
        self._session.call("DELETE", path(_owner(client, system), fingerprint))
