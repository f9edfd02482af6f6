"""``provisor certs ...`` against a live server, through its admin API: in this process
(typer's runner), and once in a subprocess as a user runs it."""

from __future__ import annotations

import dataclasses
import json
import stat
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
from provisor.systems.model import NewSystem
from tests.conftest import CLI

SOURCE = {
    "name": "HR feed",
    "type": "SCIM System",
    "role": "source",
    "properties": {"URL": "https://hr.example.org/scim", "User": "sync"},
}
TARGET = {"name": "Directory", "type": "local-identity-directory", "role": "target"}
ADMIN = Context.administrator("test")


@pytest.fixture
def certs(cli: CLI) -> CLI:
    """The command against a server with a source system (HR feed) and a target system
    (Directory)."""
    for system in (SOURCE, TARGET):
        cli.server.services.systems.create(ADMIN, NewSystem.model_validate(system))
    return cli


def ok(cli: CLI, *args: str, stdin: str | None = None) -> str:
    """The output of ``provisor certs ARGS``, which must succeed."""
    done = cli.invoke("certs", *args, stdin=stdin, check=False)
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def failure(cli: CLI, *args: str, code: int = 1, stdin: str | None = None) -> str:
    """The error message of a command that must fail with ``code``, on one line."""
    done = cli.invoke("certs", *args, stdin=stdin, check=False)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    return " ".join(done.stderr.split())


def as_json(cli: CLI, *args: str) -> Any:
    return json.loads(ok(cli, *args, "--json"))


def create_client(cli: CLI, name: str) -> str:
    client, _ = cli.server.services.clients.create(ADMIN, name, ["manage_users"])
    return client.id


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


# -- the tenant CA, as a user runs it ------------------------------------------------------------


def test_ca_download_in_a_subprocess(cli: CLI) -> None:
    target = cli.cwd / "ca.pem"
    written = cli.run("certs", "ca", "download", "--output", str(target))
    assert "Wrote the tenant CA certificate" in written.stdout
    ca = x509.load_pem_x509_certificate(target.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "tenant CA" in ca.subject.rfc4514_string()
    assert cli.run("certs", "ca", "download").stdout == target.read_text()  # created once
    bad = cli.run("certs", "outbound", "list", "Payroll", check=False)
    assert bad.returncode == 1 and "No system 'Payroll'" in bad.stderr
    assert "Traceback" not in bad.stderr


# -- outbound -------------------------------------------------------------------------------------


def test_outbound_certificates(certs: CLI, tmp_path: Path) -> None:
    first = as_json(certs, "outbound", "generate", "HR feed", "--key-type", "EC-P256")
    assert first["status"] == "ACTIVE" and first["keyAlgorithm"] == "EC P-256"
    assert first["systemName"] == "HR feed"
    second = ok(
        certs, "outbound", "generate", "HR feed", "--key-type", "ec-p256", "--validity-days", "10"
    )
    assert "INACTIVE" in second and "expiring (10 days left)" in second
    assert "PRIVATE KEY" not in second
    full = failure(certs, "outbound", "generate", "HR feed")
    assert "already has 2 outbound certificates: delete the inactive one first" in full

    listed = as_json(certs, "outbound", "list", "HR feed")
    assert listed["autoRegeneration"] is False and listed["systemName"] == "HR feed"
    active, short = listed["certificates"]
    assert (active["fingerprint"], active["status"]) == (first["fingerprint"], "ACTIVE")
    assert short["status"] == "INACTIVE" and short["expiry"]["state"] == "expiring"
    table = ok(certs, "outbound", "list", "HR feed")
    assert "ACTIVE" in table and "INACTIVE" in table and "EC P-256" in table
    assert f"HR feed ({listed['systemId']})" in table
    assert first["fingerprint"] in table and short["fingerprint"] in table  # whole
    assert "Automatic regeneration: off." in table
    shown = ok(certs, "outbound", "show", listed["systemId"], short["fingerprint"][:10])
    assert short["fingerprint"] in shown and "INACTIVE" in shown

    active_one = failure(certs, "outbound", "delete", "HR feed", first["fingerprint"], "--yes")
    assert "The active certificate cannot be deleted" in active_one

    colons = ":".join(short["fingerprint"][i : i + 2] for i in range(0, 64, 2)).upper()
    downloaded = ok(certs, "outbound", "download", "HR feed", colons)
    assert "PRIVATE KEY" not in downloaded
    assert fingerprint(x509.load_pem_x509_certificate(downloaded.encode())) == short["fingerprint"]
    chain_file = tmp_path / "chain.pem"
    ok(
        certs,
        "outbound",
        "download",
        "HR feed",
        short["fingerprint"],
        "--chain",
        "-o",
        str(chain_file),
    )
    chain = x509.load_pem_x509_certificates(chain_file.read_bytes())
    assert len(chain) == 2 and "PRIVATE KEY" not in chain_file.read_text()
    assert chain[1].subject == chain[0].issuer == chain[1].issuer  # the tenant CA
    missing = failure(certs, "outbound", "download", "HR feed", "ab" * 32)
    assert "HR feed has no outbound certificate" in missing

    unconfirmed = failure(certs, "outbound", "activate", "HR feed", short["fingerprint"])
    assert "run it again with --yes" in unconfirmed
    activated = as_json(certs, "outbound", "activate", "HR feed", short["fingerprint"], "-y")
    assert activated["status"] == "ACTIVE"
    switched = as_json(certs, "outbound", "list", "HR feed")["certificates"]
    assert [(c["fingerprint"], c["status"]) for c in switched] == [
        (short["fingerprint"], "ACTIVE"),
        (first["fingerprint"], "INACTIVE"),
    ]

    auto = ok(certs, "outbound", "auto-regenerate", "HR feed")
    assert "Automatic regeneration for HR feed: off." in auto
    assert "on." in ok(certs, "outbound", "auto-regenerate", "HR feed", "--on")
    off = as_json(certs, "outbound", "auto-regenerate", "HR feed", "--off")
    assert off["autoRegeneration"] is False and off["systemName"] == "HR feed"

    assert "run it again with --yes" in failure(
        certs, "outbound", "delete", "HR feed", first["fingerprint"]
    )
    deleted = ok(certs, "outbound", "delete", "HR feed", first["fingerprint"][:12], "--yes")
    assert f"Deleted the outbound certificate {first['fingerprint']} of HR feed." in deleted
    assert len(as_json(certs, "outbound", "list", "HR feed")["certificates"]) == 1


def test_maintain_rehearses_unless_applied(certs: CLI) -> None:
    """Issue 16: a rehearsal (the default, with or without --at) changes nothing; --apply
    applies now and refuses a date."""
    soon = as_json(certs, "outbound", "generate", "HR feed", "--validity-days", "10")
    later = as_json(certs, "outbound", "generate", "Directory")
    ok(certs, "outbound", "auto-regenerate", "Directory", "--on")
    before = {s: as_json(certs, "outbound", "list", s) for s in ("HR feed", "Directory")}

    rehearsal = ok(certs, "outbound", "maintain")  # now: HR feed's expires in 10 days
    assert "a dry run: nothing was changed" in rehearsal and "expiring-14" in rehearsal
    assert "Give --apply to do it now." in rehearsal
    renewal = (datetime.fromisoformat(later["validTo"]) - timedelta(days=10)).date().isoformat()
    ahead = as_json(certs, "outbound", "maintain", "--at", renewal)
    assert ahead["applied"] is False and ahead["at"].startswith(renewal)
    kinds = {e["systemName"]: e for e in ahead["events"]}
    assert kinds["Directory"]["kind"] == "renewed"
    assert "would be generated and activated" in kinds["Directory"]["detail"]
    assert kinds["Directory"]["fingerprint"] == later["fingerprint"]
    assert kinds["HR feed"]["kind"] == "expired"
    for system, listing in before.items():
        assert as_json(certs, "outbound", "list", system) == listing
    assert as_json(certs, "outbound", "events") == {"events": []}

    refused = failure(certs, "outbound", "maintain", "--at", renewal, "--apply")
    assert "a future time, on a live tenant" in refused
    assert as_json(certs, "outbound", "list", "Directory") == before["Directory"]

    applied = as_json(certs, "outbound", "maintain", "--apply")
    assert applied["applied"] is True
    assert [(e["systemName"], e["kind"]) for e in applied["events"]] == [("HR feed", "expiring-14")]
    assert soon["fingerprint"] == applied["events"][0]["fingerprint"]
    assert "Nothing to do" in ok(certs, "outbound", "maintain", "--apply")  # once only
    events = ok(certs, "outbound", "events", "--system", "HR feed")
    assert "expiring-14" in events and "HR feed" in events


def test_outbound_errors_are_readable(certs: CLI) -> None:
    assert "No system 'Payroll'" in failure(certs, "outbound", "list", "Payroll")
    bad_key = failure(certs, "outbound", "generate", "HR feed", "--key-type", "DSA-1024", code=2)
    assert "'DSA-1024' is not one of" in bad_key and "ec-p384" in bad_key.lower()
    too_short = failure(certs, "outbound", "generate", "HR feed", "--validity-days", "0", code=2)
    assert "--validity-days" in too_short
    bad = failure(certs, "outbound", "activate", "HR feed", "xyz", "--yes")
    assert "is not a SHA-256 fingerprint" in bad
    empty = ok(certs, "outbound", "list", "Directory")
    assert "Directory has no outbound certificate" in empty
    bad_date = failure(certs, "outbound", "maintain", "--at", "soon", code=2)
    assert "--at" in bad_date


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        ("outbound download", "--chain"),
        ("outbound auto-regenerate", "--on"),
        ("outbound maintain", "--apply"),
        ("inbound generate", "--force"),
    ],
)
def test_flags_show_no_metavar(cli: CLI, command: str, flag: str) -> None:
    shown = ok(cli, *command.split(), "--help")
    [line] = [line for line in shown.splitlines() if f" {flag} " in line]
    assert "<bool>" not in line and "BOOLEAN" not in line


# -- inbound --------------------------------------------------------------------------------------


def test_inbound_import_list_delete(certs: CLI, tmp_path: Path) -> None:
    client_id = create_client(certs, "hr-sync")
    caller = self_signed("hr-sync.example.org")
    crt = tmp_path / "caller.crt"
    crt.write_text(pem(caller))
    imported = as_json(certs, "inbound", "import", str(crt), "--client", "hr-sync")
    assert imported["name"] == f"cert_client_{fingerprint(caller)}"
    assert imported["clientId"] == client_id and imported["clientName"] == "hr-sync"
    assert imported["generated"] is False

    pasted = self_signed("hr-feed.example.org")
    shown = ok(certs, "inbound", "import", "-", "--system", "HR feed", stdin=pem(pasted))
    assert f"cert_client_{fingerprint(pasted)}" in shown
    assert "CN=hr-feed.example.org" in shown and "system HR feed (" in shown

    again = failure(certs, "inbound", "import", str(crt), "--system", "HR feed")
    assert f"({fingerprint(caller)}) is already attached to client hr-sync ({client_id})" in again
    expired = tmp_path / "expired.pem"
    expired.write_text(pem(self_signed("old.example.org", expired=True)))
    assert "The certificate expired on" in failure(
        certs, "inbound", "import", str(expired), "--client", "hr-sync"
    )
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("hello, I am not a certificate\n")
    assert "Not an X.509 certificate" in failure(
        certs, "inbound", "import", str(garbage), "--client", "hr-sync"
    )
    fresh = tmp_path / "fresh.der"
    fresh.write_bytes(self_signed("new.example.org").public_bytes(serialization.Encoding.DER))
    target = failure(certs, "inbound", "import", str(fresh), "--system", "Directory")
    assert "Directory is a target system" in target
    assert "Give the owner" in failure(certs, "inbound", "import", str(fresh))
    both = failure(
        certs, "inbound", "import", str(fresh), "--client", "hr-sync", "--system", "HR feed"
    )
    assert "Give --client or --system, not both." in both
    assert "Cannot read" in failure(
        certs, "inbound", "import", str(tmp_path / "none.pem"), "--client", "hr-sync"
    )
    assert "No client" in failure(certs, "inbound", "import", str(fresh), "--client", "nobody")

    everything = as_json(certs, "inbound", "list")["certificates"]
    assert len(everything) == 2
    mine = as_json(certs, "inbound", "list", "--client", client_id)["certificates"]
    assert [c["fingerprint"] for c in mine] == [fingerprint(caller)]
    table = ok(certs, "inbound", "list")
    assert "hr-feed.example.org" in table and "2 inbound certificate(s)." in table
    assert f"client hr-sync ({client_id})" in table and fingerprint(pasted) in table

    name = f"cert_client_{fingerprint(pasted)}"
    elsewhere = failure(certs, "inbound", "delete", name, "--client", "hr-sync", "--yes")
    assert "No inbound certificate" in elsewhere
    assert "run it again with --yes" in failure(certs, "inbound", "delete", name)
    assert f"Deleted {name}." in ok(certs, "inbound", "delete", name, "--yes")
    by_owner = ok(certs, "inbound", "delete", fingerprint(caller)[:8], "--client", "hr-sync", "-y")
    assert "Deleted" in by_owner
    assert as_json(certs, "inbound", "list") == {"certificates": []}


def test_inbound_generate(certs: CLI, tmp_path: Path) -> None:
    client_id = create_client(certs, "hr-sync")
    secret = tmp_path / "password"
    secret.write_text("correct horse\n")
    bundle = tmp_path / "hr-sync.p12"
    shown = ok(
        certs, "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync",
        "--output", str(bundle), "--password-file", str(secret),
    )  # fmt: skip
    assert f"CN=HR sync ({client_id})" in shown and "client hr-sync" in shown
    assert "correct horse" not in shown
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    key, cert, cas = pkcs12.load_key_and_certificates(bundle.read_bytes(), b"correct horse")
    assert key is not None and cert is not None and len(cas) == 1
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        f"HR sync ({client_id})"
    )
    assert cert.issuer == cas[0].subject
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle.read_bytes(), b"wrong password")
    listed = as_json(certs, "inbound", "list", "--client", "hr-sync")["certificates"]
    assert [(c["fingerprint"], c["generated"]) for c in listed] == [(fingerprint(cert), True)]

    exists = failure(
        certs, "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync",
        "--output", str(bundle), "--password-file", str(secret),
    )  # fmt: skip
    assert "exists: give --force to overwrite it" in exists
    bundle.chmod(0o644)
    from_env = dataclasses.replace(
        certs, env={**certs.env, "PROVISOR_P12_PASSWORD": "from the environment"}
    )
    forced = as_json(
        from_env, "inbound", "generate", "--client", client_id, "--common-name", "HR sync 2",
        "--output", str(bundle), "--force",
    )  # fmt: skip
    assert forced["subject"] == f"CN=HR sync 2 ({client_id})" and forced["file"] == str(bundle)
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert pkcs12.load_key_and_certificates(bundle.read_bytes(), b"from the environment")[0]

    prompted = tmp_path / "prompted.p12"
    ok(
        certs, "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync 3",
        "--output", str(prompted), stdin="typed secret\ntyped secret\n",
    )  # fmt: skip
    assert pkcs12.load_key_and_certificates(prompted.read_bytes(), b"typed secret")[1]
    assert len(as_json(certs, "inbound", "list")["certificates"]) == 3

    too_long = failure(
        certs, "inbound", "generate", "--client", "hr-sync", "--common-name", "x" * 26,
        "--output", str(tmp_path / "long.p12"), "--password-file", str(secret),
    )  # fmt: skip
    assert "more than 64: the common name may have at most 25" in too_long
    secret.write_text("short")
    weak = failure(
        certs, "inbound", "generate", "--client", "hr-sync", "--common-name", "HR sync",
        "--output", str(tmp_path / "weak.p12"), "--password-file", str(secret),
    )  # fmt: skip
    assert "password" in weak and "at least 8 characters" in weak
    assert sorted(p.name for p in tmp_path.glob("*.p12")) == ["hr-sync.p12", "prompted.p12"]
    assert not list(tmp_path.glob(".*partial"))
    assert len(as_json(certs, "inbound", "list")["certificates"]) == 3
