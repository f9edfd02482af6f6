"""X.509 with cryptography: reading certificates in the forms people and proxies send them,
describing them, and issuing keys and certificates from a CA.

Nothing here knows of storage or HTTP; times come from the caller (the clock is theirs).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisor.errors import ConfigError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

KEY_TYPES = ("RSA-2048", "RSA-3072", "RSA-4096", "EC-P256", "EC-P384")
Digest = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
HASHES: dict[str, type[Digest]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}
NIST_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL
)  # any PEM block, whatever became of its line breaks


class InvalidCertificateError(ConfigError):
    """Not a usable X.509 certificate."""


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A key type and size: ``RSA-2048`` ... ``RSA-4096``, ``EC-P256``, ``EC-P384``."""

    name: str

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        wanted = text.strip().upper().replace("_", "-").replace("P-", "P")
        for name in KEY_TYPES:
            if wanted in (name, name.replace("-", "")):
                return cls(name)
        raise ConfigError(f"Key type {text!r} is not one of {', '.join(KEY_TYPES)}.")

    def generate(self) -> PrivateKey:
        kind, size = self.name.split("-")
        if kind == "RSA":
            return rsa.generate_private_key(public_exponent=65537, key_size=int(size))
        return ec.generate_private_key(ec.SECP256R1() if size == "P256" else ec.SECP384R1())


def signature_hash(name: str) -> Digest:
    try:
        return HASHES[name.strip().upper().replace("-", "")]()
    except KeyError:
        raise ConfigError(f"Signature hash {name!r} is not one of {', '.join(HASHES)}.") from None


# -- reading ---------------------------------------------------------------------------------


def load_certificate(data: bytes | str) -> x509.Certificate:
    """The (first) certificate of a PEM text (line breaks optional), DER bytes, or base64 DER.

    A PEM text that carries a private key is refused: provisor keeps only certificates of
    callers, never their keys.
    """
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else bytes(data)
    if not raw.strip():
        raise InvalidCertificateError("The certificate is empty.")
    text = raw.decode("latin-1")
    blocks = _PEM.findall(text)
    if blocks:
        if any("PRIVATE KEY" in label for label, _ in blocks):
            raise InvalidCertificateError(
                "The file holds a private key: give the certificate only (the key stays with "
                "its owner)."
            )
        bodies = [body for label, body in blocks if label in ("CERTIFICATE", "X509 CERTIFICATE")]
        if not bodies:
            labels = ", ".join(sorted({label for label, _ in blocks}))
            raise InvalidCertificateError(f"The PEM text holds no certificate (only {labels}).")
        der = _b64(bodies[0])
    elif raw[:1] == b"\x30":  # an ASN.1 SEQUENCE: DER
        der = raw
    else:
        der = _b64(text)
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise InvalidCertificateError(f"Not an X.509 certificate (PEM or DER): {exc}") from exc


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCertificateError(
            "Not an X.509 certificate: neither PEM, DER nor base64-encoded DER."
        ) from exc


def from_header(value: str) -> x509.Certificate:
    """The client certificate a TLS-terminating proxy put in a header: URL-encoded PEM
    (nginx ``$ssl_client_escaped_cert``), PEM with spaces (Apache, HAProxy), base64 DER,
    Envoy's ``Cert="..."`` (X-Forwarded-Client-Cert) or RFC 9440's ``:base64:``."""
    text = value.strip()
    match = re.search(r'(?:^|[;,])\s*Cert="([^"]*)"', text)
    if match:
        text = match.group(1)
    if "%" in text:
        text = urllib.parse.unquote(text)
    if len(text) > 2 and text.startswith(":") and text.endswith(":"):
        text = text[1:-1]
    return load_certificate(text)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, lowercase hex: a certificate's identity."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def normalize_fingerprint(text: str, *, prefix: bool = False) -> str:
    """A fingerprint as given (``AB:CD:...``, upper case, ``cert_client_...``) in our form;
    with ``prefix``, its first 8 or more hex digits will do."""
    value = text.strip().lower().removeprefix("cert_client_").replace(":", "")
    shortest = 8 if prefix else 64
    if not re.fullmatch(rf"[0-9a-f]{{{shortest},64}}", value):
        wanted = "8 to 64 hex digits of a SHA-256 fingerprint" if prefix else "64 hex digits"
        raise ConfigError(f"{text!r} is not a SHA-256 fingerprint ({wanted}).")
    return value


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def load_key(text: str) -> PrivateKey:
    key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError("Only RSA and EC keys are supported.")
    return key


@dataclass(frozen=True, slots=True, kw_only=True)
class Details:
    """What a certificate shows: SAP's fields (subject, issuer, signature algorithm,
    validity, key size, fingerprint) and a few more."""

    fingerprint: str
    subject: str
    issuer: str
    serial_number: str
    signature_algorithm: str
    key_algorithm: str
    key_size: int | None
    not_before: datetime
    not_after: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "fingerprint": self.fingerprint,
            "subject": self.subject,
            "issuer": self.issuer,
            "serialNumber": self.serial_number,
            "signatureAlgorithm": self.signature_algorithm,
            "keyAlgorithm": self.key_algorithm,
            "keySize": self.key_size,
            "validFrom": _iso(self.not_before),
            "validTo": _iso(self.not_after),
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def describe(cert: x509.Certificate) -> Details:
    """What a certificate shows; InvalidCertificateError when its key is of a type
    cryptography cannot read."""
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise InvalidCertificateError(
            f"The certificate's public key is of an unsupported type ({exc}): use an RSA, "
            "EC, Ed25519 or Ed448 key."
        ) from None
    if isinstance(key, rsa.RSAPublicKey):
        algorithm, size = "RSA", key.key_size
    elif isinstance(key, ec.EllipticCurvePublicKey):
        curve = NIST_CURVES.get(key.curve.name, key.curve.name)
        algorithm, size = f"EC {curve}", key.curve.key_size
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm, size = "Ed25519", 256
    elif isinstance(key, ed448.Ed448PublicKey):
        algorithm, size = "Ed448", 456
    else:
        algorithm, size = type(key).__name__, None
    oid = cert.signature_algorithm_oid
    return Details(
        fingerprint=fingerprint(cert),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=format(cert.serial_number, "x"),
        signature_algorithm=getattr(oid, "_name", None) or oid.dotted_string,
        key_algorithm=algorithm,
        key_size=size,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
    )


def directly_issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``cert`` (names match and the signature verifies)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):  # key types too
        return False
    return True


# -- issuing ---------------------------------------------------------------------------------


def name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def make_ca(
    subject: x509.Name, key: PrivateKey, digest: Digest, start: datetime, days: int
) -> x509.Certificate:
    """A self-signed CA certificate that may sign end-entity certificates only."""
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(minutes=5))
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, digest)
    )


def issue(
    ca: x509.Certificate,
    ca_key: PrivateKey,
    subject: x509.Name,
    key: PrivateKey,
    digest: Digest,
    start: datetime,
    days: int,
) -> x509.Certificate:
    """A TLS client certificate for ``key`` signed by the CA, never outliving it."""
    end = min(start + timedelta(days=days), ca.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - timedelta(minutes=5))
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, digest)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def pkcs12_bundle(
    label: str, cert: x509.Certificate, key: PrivateKey, ca: x509.Certificate, password: str
) -> bytes:
    """A password-protected ``.p12`` with the key, the certificate and its CA (AES-256,
    PBKDF2-SHA256, as OpenSSL 3 writes them)."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(100_000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("utf-8"))
    )
    return pkcs12.serialize_key_and_certificates(label.encode("utf-8"), key, cert, [ca], encryption)
