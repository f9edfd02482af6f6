"""Certificates under a clock the tests move, and certificates made by hand."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provisor.certs.x509 import PrivateKey, name
from provisor.runtime import Services
from provisor.settings import Settings


@dataclass
class Clock:
    """A clock that moves only when told."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def travel(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Iterator[Services]:
    """Services (SQLite, then PostgreSQL) whose certificates live by ``clock``; EC keys keep
    the tests quick (RSA is the default, tested on its own)."""
    quick = settings.model_copy(update={"cert_key_type": "EC-P256"})
    found = Services.open(quick)  # a migrated database
    found.certificates.clock = clock
    try:
        yield found
    finally:
        found.close()


def self_signed(
    common_name: str = "caller",
    *,
    days: float = 30,
    start: float = -1,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    key: PrivateKey | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """A certificate made outside provisor: self-signed, or signed by ``issuer``."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    subject = name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=start))
        .not_valid_after(now + timedelta(days=days))
    )
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key
