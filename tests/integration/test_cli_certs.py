"""``provisor certs ...`` run as a user would: in a subprocess, on a data folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from provisor.context import Context
from provisor.runtime import Services
from provisor.settings import Settings
from provisor.storage import migrate
from provisor.systems.model import NewSystem
from tests.integration.test_cli import PROVISOR

SOURCE = {
    "name": "HR feed",
    "type": "SCIM System",
    "role": "source",
    "properties": {"URL": "https://hr.example.org/scim", "User": "sync"},
}
TARGET = {"name": "Directory", "type": "local-identity-directory", "role": "target"}


def run(
    *args: str,
    data_dir: Path,
    check: bool = True,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``provisor certs ARGS`` in a wide terminal (the tables fit), in a session of its own
    (a hidden prompt reads standard input)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    environ.update(env or {}, PROVISOR_DATA_DIR=str(data_dir), COLUMNS="200")
    completed = subprocess.run(
        [*PROVISOR, "certs", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=False,
        input=stdin,
        start_new_session=True,
    )
    if check:
        assert completed.returncode == 0, completed.stderr
    assert "Traceback" not in completed.stderr
    return completed


def failure(*args: str, data_dir: Path, stdin: str | None = None) -> str:
    """The error message of a command that must fail with exit code 1, on one line."""
    completed = run(*args, data_dir=data_dir, check=False, stdin=stdin)
    assert completed.returncode == 1, (completed.stdout, completed.stderr)
    return " ".join(completed.stderr.split())


def as_json(*args: str, data_dir: Path) -> Any:
    return json.loads(run(*args, "--json", data_dir=data_dir).stdout)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data folder with a source system (HR feed) and a target system (Directory)."""
    folder = tmp_path / "data"
    services = Services.open(Settings(data_dir=folder))
    try:
        migrate.upgrade(services.db)
        for system in (SOURCE, TARGET):
            services.systems.create(
                Context.administrator("test"),
                NewSystem.model_validate(system),
            )
    finally:
        services.close()
    return folder


def create_client(name: str, data_dir: Path) -> str:
    created = subprocess.run(
        [*PROVISOR, "clients", "create", name, "-p", "manage_users", "--local", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PROVISOR_DATA_DIR": str(data_dir)},
        timeout=120,
        check=True,
    )
    client_id: str = json.loads(created.stdout)["clientId"]
    return client_id


def self_signed(common_name: str, *, days: int = 30, expired: bool = False) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    start = now - timedelta(days=days + 2) if expired else now - timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


# -- the tenant CA --------------------------------------------------------------------------------


def test_ca_download(data: Path, tmp_path: Path) -> None:
    target = tmp_path / "ca.pem"
    written = run("ca", "download", "--output", str(target), data_dir=data)
    assert "Wrote the tenant CA certificate" in written.stdout
    ca = x509.load_pem_x509_certificate(target.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "tenant CA" in ca.subject.rfc4514_string()
    assert run("ca", "download", data_dir=data).stdout == target.read_text()  # created once


# -- outbound -------------------------------------------------------------------------------------


def test_outbound_certificates(data: Path, tmp_path: Path) -> None:
    first = as_json("outbound", "generate", "HR feed", "--key-type", "EC-P256", data_dir=data)
    assert first["status"] == "ACTIVE" and first["keyAlgorithm"] == "EC P-256"
    second = run(
        "outbound", "generate", "HR feed", "--key-type", "ec-p256", "--validity-days", "10",
        data_dir=data,
    ).stdout  # fmt: skip
    assert "INACTIVE" in second and "expiring (10 days left)" in second
    assert "PRIVATE KEY" not in second
    full = failure("outbound", "generate", "HR feed", data_dir=data)
    assert "already has 2 outbound certificates: delete the inactive one first" in full

    listed = as_json("outbound", "list", "HR feed", data_dir=data)
    assert listed["autoRegenerate"] is False and listed["total"] == 2
    active, short = listed["items"]
    assert (active["fingerprint"], active["status"]) == (first["fingerprint"], "ACTIVE")
    assert short["status"] == "INACTIVE" and short["expiry"]["state"] == "expiring"
    assert len(short["fingerprint"]) == 64
    table = run("outbound", "list", "HR feed", data_dir=data).stdout
    assert "ACTIVE" in table and "INACTIVE" in table and "EC P-256" in table
    assert "Automatic regeneration: off." in table

    active = failure("outbound", "delete", "HR feed", first["fingerprint"], data_dir=data)
    assert "The active certificate cannot be deleted" in active

    colons = ":".join(short["fingerprint"][i : i + 2] for i in range(0, 64, 2)).upper()
    downloaded = run("outbound", "download", "HR feed", colons, data_dir=data).stdout
    assert "PRIVATE KEY" not in downloaded
    assert fingerprint(x509.load_pem_x509_certificate(downloaded.encode())) == short["fingerprint"]
    chain_file = tmp_path / "chain.pem"
    run(
        "outbound", "download", "HR feed", short["fingerprint"], "--chain", "-o", str(chain_file),
        data_dir=data,
    )  # fmt: skip
    chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
    assert len(chain) == 2 and "PRIVATE KEY" not in chain_file.read_text()
    assert chain[1].subject == chain[0].issuer == chain[1].issuer  # the tenant CA
    missing = failure("outbound", "download", "HR feed", "ab" * 32, data_dir=data)
    assert "HR feed has no outbound certificate" in missing

    activated = as_json("outbound", "activate", "HR feed", short["fingerprint"], data_dir=data)
    assert activated["status"] == "ACTIVE"
    switched = as_json("outbound", "list", "HR feed", data_dir=data)["items"]
    assert [(c["fingerprint"], c["status"]) for c in switched] == [
        (short["fingerprint"], "ACTIVE"),
        (first["fingerprint"], "INACTIVE"),
    ]

    # The active certificate expires in 10 days: without automatic regeneration, a notice.
    noticed = as_json("outbound", "maintain", data_dir=data)
    assert [e["kind"] for e in noticed] == ["expiring-14"]
    assert noticed[0]["fingerprint"] == short["fingerprint"]
    assert "Nothing to do" in run("outbound", "maintain", data_dir=data).stdout  # once only
    events = as_json("outbound", "events", "--system", "HR feed", data_dir=data)
    assert [(e["kind"], e["subject"]) for e in events] == [
        ("expiring-14", "Outbound Certificate Expiration. System: HR feed")
    ]

    auto = run("outbound", "auto-regenerate", "HR feed", data_dir=data).stdout
    assert "Automatic regeneration for HR feed: off." in auto
    assert "on." in run("outbound", "auto-regenerate", "HR feed", "--on", data_dir=data).stdout
    renewed = run("outbound", "maintain", data_dir=data).stdout
    assert "renewed" in renewed
    after = as_json("outbound", "list", "HR feed", data_dir=data)
    assert after["autoRegenerate"] is True
    assert [c["status"] for c in after["items"]] == ["ACTIVE", "INACTIVE"]
    assert after["items"][1]["fingerprint"] == short["fingerprint"]
    assert first["fingerprint"] not in {c["fingerprint"] for c in after["items"]}
    table = run("outbound", "events", data_dir=data).stdout
    assert "renewed" in table and "expiring-14" in table
    off = as_json("outbound", "auto-regenerate", "HR feed", "--off", data_dir=data)
    assert off["autoRegenerate"] is False

    deleted = run("outbound", "delete", "HR feed", short["fingerprint"], data_dir=data).stdout
    assert f"Deleted the outbound certificate {short['fingerprint']}" in deleted
    assert as_json("outbound", "list", "HR feed", data_dir=data)["total"] == 1


def test_outbound_errors_are_readable(data: Path) -> None:
    assert "No system" in failure("outbound", "list", "Payroll", data_dir=data)
    bad_key = failure("outbound", "generate", "HR feed", "--key-type", "DSA-1024", data_dir=data)
    assert "Key type 'DSA-1024' is not one of RSA-2048" in bad_key
    too_long = failure("outbound", "generate", "HR feed", "--validity-days", "0", data_dir=data)
    assert "Validity must be 1 to 3650 days" in too_long
    bad = failure("outbound", "activate", "HR feed", "xyz", data_dir=data)
    assert "is not a SHA-256 fingerprint" in bad
    empty = run("outbound", "list", "Directory", data_dir=data).stdout
    assert "Directory has no outbound certificate" in empty


# -- inbound --------------------------------------------------------------------------------------


def test_inbound_import_list_delete(data: Path, tmp_path: Path) -> None:
    client_id = create_client("hr-sync", data)
    caller = self_signed("hr-sync.example.org")
    crt = tmp_path / "caller.crt"
    crt.write_text(pem(caller))
    imported = as_json("inbound", "import", str(crt), "--client", "hr-sync", data_dir=data)
    assert imported["name"] == f"cert_client_{fingerprint(caller)}"
    assert imported["clientId"] == client_id and imported["generated"] is False

    pasted = self_signed("hr-feed.example.org")
    shown = run("inbound", "import", "-", "--system", "HR feed", data_dir=data, stdin=pem(pasted))
    assert f"cert_client_{fingerprint(pasted)}" in shown.stdout
    assert "CN=hr-feed.example.org" in shown.stdout

    again = failure("inbound", "import", str(crt), "--system", "HR feed", data_dir=data)
    assert f"({fingerprint(caller)}) is already attached to client {client_id}" in again
    expired = tmp_path / "expired.pem"
    expired.write_text(pem(self_signed("old.example.org", expired=True)))
    assert "The certificate expired on" in failure(
        "inbound", "import", str(expired), "--client", "hr-sync", data_dir=data
    )
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("hello, I am not a certificate\n")
    assert "Not an X.509 certificate" in failure(
        "inbound", "import", str(garbage), "--client", "hr-sync", data_dir=data
    )
    fresh = tmp_path / "fresh.der"
    fresh.write_bytes(self_signed("new.example.org").public_bytes(serialization.Encoding.DER))
    target = failure("inbound", "import", str(fresh), "--system", "Directory", data_dir=data)
    assert "Directory is a target system" in target
    assert "Give the owner" in failure("inbound", "import", str(fresh), data_dir=data)
    both = failure(
        "inbound", "import", str(fresh), "--client", "hr-sync", "--system", "HR feed",
        data_dir=data,
    )  # fmt: skip
    assert "Give --client or --system, not both." in both
    assert "Cannot read" in failure(
        "inbound", "import", str(tmp_path / "none.pem"), "--client", "hr-sync", data_dir=data
    )
    assert "No client" in failure(
        "inbound", "import", str(fresh), "--client", "nobody", data_dir=data
    )

    everything = as_json("inbound", "list", data_dir=data)
    assert everything["total"] == 2
    mine = as_json("inbound", "list", "--client", client_id, data_dir=data)["items"]
    assert [c["fingerprint"] for c in mine] == [fingerprint(caller)]
    table = run("inbound", "list", "--system", "HR feed", data_dir=data).stdout
    assert "hr-feed.example.org" in table and "1 inbound certificate(s)." in table

    name = f"cert_client_{fingerprint(pasted)}"
    elsewhere = failure("inbound", "delete", name, "--client", "hr-sync", data_dir=data)
    assert "No inbound certificate" in elsewhere
    assert f"Deleted {name}." in run("inbound", "delete", name, data_dir=data).stdout
    assert [c["name"] for c in as_json("inbound", "list", data_dir=data)["items"]] == [
        f"cert_client_{fingerprint(caller)}"
    ]


def test_inbound_generate(data: Path, tmp_path: Path) -> None:
    client_id = create_client("hr-sync", data)
    secret = tmp_path / "password"
    secret.write_text("correct horse\n")
    bundle = tmp_path / "hr-sync.p12"
    shown = run(
        "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync",
        "--output", str(bundle), "--password-file", str(secret), data_dir=data,
    ).stdout  # fmt: skip
    assert f"Subject CN: HR sync ({client_id})" in shown
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    key, cert, cas = pkcs12.load_key_and_certificates(bundle.read_bytes(), b"correct horse")
    assert key is not None and cert is not None and len(cas) == 1
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"HR sync ({client_id})"
    )
    assert cert.issuer == cas[0].subject
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle.read_bytes(), b"wrong password")
    listed = as_json("inbound", "list", "--client", "hr-sync", data_dir=data)["items"]
    assert [(c["fingerprint"], c["generated"]) for c in listed] == [(fingerprint(cert), True)]

    exists = failure(
        "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync",
        "--output", str(bundle), "--password-file", str(secret), data_dir=data,
    )  # fmt: skip
    assert "exists: give --force to overwrite it" in exists
    bundle.chmod(0o644)
    forced = run(
        "inbound", "generate", "--client", client_id, "--common-name", "HR sync 2",
        "--output", str(bundle), "--force", "--json", data_dir=data,
        env={"PROVISOR_P12_PASSWORD": "from the environment"},
    )  # fmt: skip
    assert json.loads(forced.stdout)["subject"] == f"CN=HR sync 2 ({client_id})"
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert pkcs12.load_key_and_certificates(bundle.read_bytes(), b"from the environment")[0]

    prompted = tmp_path / "prompted.p12"
    run(
        "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync 3",
        "--output", str(prompted), data_dir=data, stdin="typed secret\ntyped secret\n",
    )  # fmt: skip
    assert pkcs12.load_key_and_certificates(prompted.read_bytes(), b"typed secret")[1]
    assert as_json("inbound", "list", data_dir=data)["total"] == 3

    too_long = failure(
        "inbound", "generate", "--client", "hr-sync", "--common-name", "x" * 26,
        "--output", str(tmp_path / "long.p12"), "--password-file", str(secret), data_dir=data,
    )  # fmt: skip
    assert "more than 64: the common name may have at most 25" in too_long
    secret.write_text("short")
    weak = failure(
        "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync",
        "--output", str(tmp_path / "weak.p12"), "--password-file", str(secret), data_dir=data,
    )  # fmt: skip
    assert "needs at least 8 characters" in weak
    assert sorted(p.name for p in tmp_path.glob("*.p12")) == ["hr-sync.p12", "prompted.p12"]
    assert not list(tmp_path.glob(".*partial"))
    assert as_json("inbound", "list", data_dir=data)["total"] == 3
