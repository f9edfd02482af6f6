"""``provisor certs``: the tenant CA, systems' outbound and callers' inbound certificates.

Human tables by default, ``--json`` for scripts (the admin API's JSON). Only certificates
ever leave here, never a private key, except in the password-protected ``.p12`` that
``inbound generate`` writes for a technical user. Errors print one readable line and exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provisor.certs.policy import Expiry
from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    err,
    fail,
    open_services,
    operator_context,
    out,
    print_json,
    settings_from,
)

if TYPE_CHECKING:
    from provisor.certs.service import CertificateEvent, InboundCertificate, OutboundCertificate
    from provisor.certs.x509 import Details

app = typer.Typer(
    help="Certificates: the tenant CA, systems' outbound and callers' inbound ones.",
    no_args_is_help=True,
)
ca_app = typer.Typer(
    help="The tenant CA that issues provisor's outbound certificates.", no_args_is_help=True
)
outbound_app = typer.Typer(
    help="Client certificates a system presents to its back-end.", no_args_is_help=True
)
inbound_app = typer.Typer(
    help="Certificates that authenticate callers (technical users, source and proxy systems).",
    no_args_is_help=True,
)
app.add_typer(ca_app, name="ca")
app.add_typer(outbound_app, name="outbound")
app.add_typer(inbound_app, name="inbound")

SystemArg = Annotated[str, typer.Argument(help="System id or name.")]
FingerprintArg = Annotated[
    str, typer.Argument(help="SHA-256 fingerprint (hex, colons optional) or its first 8+ digits.")
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
]
KeyType = Annotated[
    str | None,
    typer.Option(
        help="RSA-2048, RSA-3072, RSA-4096, EC-P256 or EC-P384. Default: the tenant's setting."
    ),
]
ValidityDays = Annotated[
    int | None, typer.Option(help="Days the certificate is valid. Default: the tenant's setting.")
]
ClientOpt = Annotated[str | None, typer.Option("--client", help="Client id or name.")]
SystemOpt = Annotated[str | None, typer.Option("--system", help="System id or name.")]
PASSWORD_ENV = "PROVISOR_P12_PASSWORD"
WRAPPING = {"subject", "owner", "signature", "key", "expiry", "detail"}
HINT = "Commands take a fingerprint or its first 8 or more hex digits."


# -- printing -----------------------------------------------------------------------------------


def _say(text: str | Text) -> None:
    """One line, never wrapped (fingerprints stay whole for copying and grep)."""
    out.print(text, highlight=False, soft_wrap=True)


def _short(fingerprint: str) -> str:
    return f"{fingerprint[:16]}…"


def _key(details: Details) -> str:
    if details.key_algorithm == "RSA" and details.key_size:
        return f"RSA {details.key_size}"
    return details.key_algorithm  # EC P-256 ...


def _expiry(state: Expiry, days_left: int) -> Text:
    if state is Expiry.EXPIRED:
        return Text("expired", style="red")
    if state is Expiry.NOT_YET_VALID:
        return Text("not yet valid", style="yellow")
    text = f"{state.value} ({days_left} day{'' if days_left == 1 else 's'} left)"
    return Text(text, style="yellow" if state is Expiry.EXPIRING else "")


def _show(
    details: Details, state: Expiry, days_left: int, extra: Iterable[tuple[str, str]]
) -> None:
    rows = [
        *extra,
        ("fingerprint", details.fingerprint),
        ("subject", details.subject),
        ("issuer", details.issuer),
        ("serial number", details.serial_number),
        ("signature", details.signature_algorithm),
        ("key", _key(details)),
        ("valid from", str(details.as_json()["validFrom"])),
        ("valid to", str(details.as_json()["validTo"])),
    ]
    for label, value in rows:
        _say(f"  {label:<14} {escape(value)}")
    _say(Text.assemble(f"  {'expiry':<14} ", _expiry(state, days_left)))


def _show_outbound(cert: OutboundCertificate) -> None:
    status = "ACTIVE" if cert.active else "INACTIVE"
    _show(cert.details, cert.expiry, cert.days_left, [("status", status)])


def _show_inbound(cert: InboundCertificate) -> None:
    owner = f"client {cert.client_id}" if cert.client_id else f"system {cert.system_id}"
    _show(cert.details, cert.expiry, cert.days_left, [("name", cert.name), ("owner", owner)])


def _table(*columns: str) -> Table:
    """Identifiers and dates stay on one line; the rest wraps to the terminal's width."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        wraps = column in WRAPPING
        table.add_column(column, no_wrap=not wraps, overflow="fold", min_width=7 if wraps else None)
    return table


def _write(text: str, output: Path | None, what: str) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="ascii")
    except OSError as exc:
        fail(f"Cannot write {escape(str(output))}: {exc.strerror or exc}")
    _say(f"Wrote {what} to {escape(str(output))}.")


def _one_owner(client: str | None, system: str | None, *, required: bool) -> None:
    if client is not None and system is not None:
        fail("Give --client or --system, not both.")
    if required and client is None and system is None:
        fail("Give the owner: --client CLIENT (a technical user) or --system SYSTEM.")


# -- the tenant CA --------------------------------------------------------------------------


@ca_app.command("download")
def ca_download(
    output: Output = None, data_dir: DataDir = None, database_url: DatabaseURL = None
) -> None:
    """The tenant CA certificate (PEM), created on first need."""
    with open_services(settings_from(data_dir, database_url)) as services:
        text = services.certificates.ca_pem(operator_context())
    _write(text, output, "the tenant CA certificate")


# -- outbound -------------------------------------------------------------------------------


@outbound_app.command("generate")
def outbound_generate(
    system: SystemArg,
    key_type: KeyType = None,
    validity_days: ValidityDays = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Generate an outbound certificate: active if it is the system's first, else inactive.

    A system has two at most: delete the inactive one before generating another.
    """
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(operator_context(), system)
        cert = services.certificates.generate_outbound(
            operator_context(), found.id, key_type=key_type, validity_days=validity_days
        )
    if as_json:
        print_json(cert.as_json())
        return
    _say(f"Generated an outbound certificate for {escape(found.name)}.")
    _show_outbound(cert)


@outbound_app.command("list")
def outbound_list(
    system: SystemArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """A system's outbound certificates, the active one first."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(operator_context(), system)
        certs = services.certificates.outbound(operator_context(), found.id)
        auto = services.certificates.auto_regenerate(operator_context(), found.id)
    if as_json:
        print_json(
            {
                "systemId": found.id,
                "autoRegenerate": auto,
                "items": [c.as_json() for c in certs],
                "total": len(certs),
            }
        )
        return
    if not certs:
        _say(f"{escape(found.name)} has no outbound certificate.")
    else:  # both slots share subject and issuer (spec §8.1)
        _say(f"Subject {escape(certs[0].details.subject)}")
        _say(f"Issuer  {escape(certs[0].details.issuer)}")
        table = _table("fingerprint", "status", "key", "signature", "valid to", "expiry")
        for cert in certs:
            table.add_row(
                _short(cert.details.fingerprint),
                Text("ACTIVE", style="bold") if cert.active else "INACTIVE",
                _key(cert.details),
                cert.details.signature_algorithm,
                f"{cert.details.not_after:%Y-%m-%d}",
                _expiry(cert.expiry, cert.days_left),
            )
        out.print(table)
        _say(HINT)
    _say(f"Automatic regeneration: {'on' if auto else 'off'}.")


@outbound_app.command("activate")
def outbound_activate(
    system: SystemArg,
    fingerprint: FingerprintArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Make a certificate the active one; the other becomes inactive.

    The next connection to the back-end presents it.
    """
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(operator_context(), system)
        cert = services.certificates.activate(operator_context(), found.id, fingerprint)
    if as_json:
        print_json(cert.as_json())
        return
    _say(
        f"Activated {cert.details.fingerprint} for {escape(found.name)}; the other certificate "
        "is inactive."
    )


@outbound_app.command("download")
def outbound_download(
    system: SystemArg,
    fingerprint: FingerprintArg,
    output: Output = None,
    chain: Annotated[
        bool, typer.Option("--chain", help="Append the tenant CA certificate.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """An outbound certificate as PEM (never its key), to give the back-end's admins."""
    with open_services(settings_from(data_dir, database_url)) as services:
        text = services.certificates.download(operator_context(), system, fingerprint, chain=chain)
    _write(text, output, "the certificate chain" if chain else "the certificate")


@outbound_app.command("delete")
def outbound_delete(
    system: SystemArg,
    fingerprint: FingerprintArg,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Delete an inactive certificate (the active one is in use)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(operator_context(), system)
        gone = services.certificates.delete_outbound(operator_context(), found.id, fingerprint)
    _say(f"Deleted the outbound certificate {gone.details.fingerprint} of {escape(found.name)}.")


@outbound_app.command("auto-regenerate")
def outbound_auto_regenerate(
    system: SystemArg,
    on: Annotated[
        bool | None,
        typer.Option("--on/--off", help="Turn it on or off (without: show the setting)."),
    ] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Show or set automatic regeneration of a system's outbound certificates.

    When on, a new certificate is made active 14 days before the active one expires; when
    off, expiry notices are recorded 30, 14 and 3 days before and at expiry.
    """
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.systems.show(operator_context(), system)
        if on is None:
            current = services.certificates.auto_regenerate(operator_context(), found.id)
        else:
            current = services.certificates.set_auto_regenerate(operator_context(), found.id, on)
    if as_json:
        print_json({"systemId": found.id, "autoRegenerate": current})
        return
    _say(f"Automatic regeneration for {escape(found.name)}: {'on' if current else 'off'}.")


def _events(events: list[CertificateEvent], as_json: bool, empty: str) -> None:
    if as_json:
        print_json([e.as_json() for e in events])
        return
    if not events:
        _say(empty)
        return
    table = _table("when", "kind", "subject", "detail")
    for event in events:
        table.add_row(
            event.created[:19].replace("T", " "),
            event.kind,
            Text(event.subject),
            Text(event.detail),
        )
    out.print(table)


@outbound_app.command("events")
def outbound_events(
    system: SystemOpt = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 100,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """The recorded expiry notices and automatic renewals, newest first."""
    with open_services(settings_from(data_dir, database_url)) as services:
        events = services.certificates.events(operator_context(), system=system, limit=limit)
    _events(events, as_json, "No expiry notices or renewals recorded.")


@outbound_app.command("maintain")
def outbound_maintain(
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
            help="Apply them as if it were this time (UTC), to rehearse on a test tenant.",
        ),
    ] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Apply the expiry rules now and print what happened.

    Renews where automatic regeneration is due, records notices elsewhere. The server's jobs
    process does this every hour.
    """
    moment = at.replace(tzinfo=UTC) if at is not None else None
    with open_services(settings_from(data_dir, database_url)) as services:
        events = services.certificates.maintain(operator_context(), moment)
    _events(events, as_json, "Nothing to do: no certificate needed a renewal or a notice.")


# -- inbound --------------------------------------------------------------------------------


@inbound_app.command("import")
def inbound_import(
    file: Annotated[
        str, typer.Argument(help="The certificate: .crt, .pem or .der file ('-': stdin).")
    ],
    client: ClientOpt = None,
    system: SystemOpt = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Attach a caller's certificate to a technical user or a source or proxy system.

    From then on the certificate authenticates its owner. FILE is PEM or DER; with '-' paste
    the PEM text.
    """
    _one_owner(client, system, required=True)
    if file == "-" and sys.stdin.isatty():
        err.print("Paste the PEM certificate, then press Ctrl-D on a new line.")
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        fail(f"Cannot read {escape(file)}: {exc.strerror or exc}")
    with open_services(settings_from(data_dir, database_url)) as services:
        cert = services.certificates.import_inbound(
            operator_context(), data, client=client, system=system
        )
    if as_json:
        print_json(cert.as_json())
        return
    _say("Imported the certificate.")
    _show_inbound(cert)


def _password(password_file: Path | None) -> str:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            fail(f"Cannot read {escape(str(password_file))}: {reason or exc}")
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    password: str = typer.prompt(
        "Password of the .p12 file", hide_input=True, confirmation_prompt=True, err=True
    )
    return password


def _common_name(subject: str) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    names = x509.Name.from_rfc4514_string(subject).get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else subject


@inbound_app.command("generate")
def inbound_generate(
    client: Annotated[str, typer.Option("--client", help="Client id or name.")],
    common_name: Annotated[
        str, typer.Option("--common-name", help="Subject CN; ' (<client id>)' is appended.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The .p12 file to write (mode 0600).")
    ],
    password_file: Annotated[
        Path | None,
        typer.Option(
            help=f"Read the .p12 password from this file (else ${PASSWORD_ENV}, else asked)."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    key_type: KeyType = None,
    validity_days: ValidityDays = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Issue a certificate for a technical user; writes its key to a .p12 file.

    provisor's callers CA issues it with subject CN '<common name> (<client id>)'. The key is kept
    nowhere else: the password-protected .p12 file is its only copy.
    """
    if output.is_dir():
        fail(f"{escape(str(output))} is a folder: give the path of the .p12 file.")
    if output.exists() and not force:
        fail(f"{escape(str(output))} exists: give --force to overwrite it.")
    password = _password(password_file)
    # Written beside the target first: a failure leaves neither a key nor a half file behind.
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        fail(f"Cannot write {escape(str(output))}: {exc.strerror or exc}")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            with open_services(settings_from(data_dir, database_url)) as services:
                cert, bundle = services.certificates.generate_inbound(
                    operator_context(),
                    client,
                    common_name,
                    password,
                    key_type=key_type,
                    validity_days=validity_days,
                )
            handle.write(bundle)
        os.replace(partial, output)
    except OSError as exc:
        fail(f"Cannot write {escape(str(output))}: {exc.strerror or exc}")
    finally:
        partial.unlink(missing_ok=True)
    if as_json:
        print_json({**cert.as_json(), "file": str(output)})
        return
    _say(f"Wrote the key and certificate to {escape(str(output))} (mode 0600).")
    _say(f"Subject CN: {escape(_common_name(cert.details.subject))}")
    _show_inbound(cert)


@inbound_app.command("list")
def inbound_list(
    client: ClientOpt = None,
    system: SystemOpt = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Inbound certificates: of a client, of a system, or all."""
    _one_owner(client, system, required=False)
    with open_services(settings_from(data_dir, database_url)) as services:
        certs = services.certificates.inbound(operator_context(), client=client, system=system)
    if as_json:
        print_json({"items": [c.as_json() for c in certs], "total": len(certs)})
        return
    table = _table("fingerprint", "owner", "subject", "key", "valid to", "expiry")
    for cert in certs:  # issuer, signature, dates in full: --json
        owner = f"client {cert.client_id}" if cert.client_id else f"system {cert.system_id}"
        table.add_row(
            _short(cert.details.fingerprint),
            owner[:15] + "…",
            Text(cert.details.subject),
            _key(cert.details),
            f"{cert.details.not_after:%Y-%m-%d}",
            _expiry(cert.expiry, cert.days_left),
        )
    if certs:
        out.print(table)
        _say(HINT)
    _say(f"{len(certs)} inbound certificate(s).")


@inbound_app.command("delete")
def inbound_delete(
    fingerprint: Annotated[
        str, typer.Argument(help="SHA-256 fingerprint, or the name cert_client_<fingerprint>.")
    ],
    client: ClientOpt = None,
    system: SystemOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Delete an inbound certificate: it no longer authenticates anyone.

    With --client or --system, only if it belongs to that owner.
    """
    _one_owner(client, system, required=False)
    with open_services(settings_from(data_dir, database_url)) as services:
        cert = services.certificates.delete_inbound(
            operator_context(), fingerprint, client=client, system=system
        )
    _say(f"Deleted {cert.name}.")
