"""``provisor certs``: the tenant CA, systems' outbound and callers' inbound certificates,
managed through a server's admin API.

Human tables by default, ``--json`` for scripts (the admin API's JSON). Only certificates
ever leave the server, never a private key, except in the password-protected ``.p12`` that
``inbound generate`` writes for a technical user. Errors print one readable line and exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    err,
    fail,
    out,
    print_json,
    print_table,
)
from provisor.remote.certificates import (
    Certificate,
    Event,
    InboundCertificate,
    KeyType,
    OutboundCertificate,
)

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


class KeyChoice(StrEnum):
    RSA_2048 = "RSA-2048"
    RSA_3072 = "RSA-3072"
    RSA_4096 = "RSA-4096"
    EC_P256 = "EC-P256"
    EC_P384 = "EC-P384"


SystemArg = Annotated[str, typer.Argument(help="System id or name.")]
FingerprintArg = Annotated[
    str, typer.Argument(help="SHA-256 fingerprint (hex, colons optional) or its first 8+ digits.")
]
Output = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write to this file (default: stdout).")
]
KeyTypeOpt = Annotated[
    KeyChoice | None,
    typer.Option(
        "--key-type", case_sensitive=False, help="Key type and size. Default: the server's."
    ),
]
ValidityDays = Annotated[
    int | None,
    typer.Option(min=1, max=3650, help="Days the certificate is valid. Default: the server's."),
]
ClientOpt = Annotated[str | None, typer.Option("--client", help="Client id or name.")]
SystemOpt = Annotated[str | None, typer.Option("--system", help="System id or name.")]
PASSWORD_ENV = "PROVISOR_P12_PASSWORD"
WRAPPING = {"subject", "owner", "key", "expiry", "detail"}
HINT = "Commands take a fingerprint or its first 8 or more hex digits."


# -- printing -----------------------------------------------------------------------------------


def _say(text: str | Text) -> None:
    """One line, never wrapped (fingerprints stay whole for copying and grep)."""
    out.print(text, highlight=False, soft_wrap=True)


def _key(cert: Certificate) -> str:
    if cert["keyAlgorithm"] == "RSA" and cert["keySize"]:
        return f"RSA {cert['keySize']}"
    return cert["keyAlgorithm"]  # EC P-256 ...


def _expiry(cert: Certificate) -> Text:
    state, days_left = cert["expiry"]["state"], cert["expiry"]["daysLeft"]
    if state == "expired":
        return Text("expired", style="red")
    if state == "not yet valid":
        return Text("not yet valid", style="yellow")
    text = f"{state} ({days_left} day{'' if days_left == 1 else 's'} left)"
    return Text(text, style="yellow" if state == "expiring" else "")


def _show(cert: Certificate, extra: Iterable[tuple[str, str]]) -> None:
    rows = [
        *extra,
        ("fingerprint", cert["fingerprint"]),
        ("subject", cert["subject"]),
        ("issuer", cert["issuer"]),
        ("serial number", cert["serialNumber"]),
        ("signature", cert["signatureAlgorithm"]),
        ("key", _key(cert)),
        ("valid from", cert["validFrom"]),
        ("valid to", cert["validTo"]),
    ]
    for label, value in rows:
        _say(f"  {label:<14} {escape(value)}")
    _say(Text.assemble(f"  {'expiry':<14} ", _expiry(cert)))


def _show_outbound(cert: OutboundCertificate) -> None:
    _show(
        cert, [("system", _named(cert["systemName"], cert["systemId"])), ("status", cert["status"])]
    )


def _named(name: str, id_: str) -> str:
    return name if name == id_ else f"{name} ({id_})"


def _owner(cert: InboundCertificate) -> str:
    if "clientId" in cert:
        return f"client {_named(cert.get('clientName', ''), cert['clientId'])}"
    return f"system {_named(cert.get('systemName', ''), cert.get('systemId', ''))}"


def _show_inbound(cert: InboundCertificate) -> None:
    _show(cert, [("name", cert["name"]), ("owner", _owner(cert))])


def _table(*columns: str) -> Table:
    """Identifiers and dates are never cut (a long one folds); the rest wraps to the
    terminal's width."""
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


def _key_type(choice: KeyChoice | None) -> KeyType | None:
    return choice.value if choice is not None else None


# -- the tenant CA --------------------------------------------------------------------------


@ca_app.command("download")
def ca_download(output: Output = None, server: Server = None, profile: Profile = None) -> None:
    """The tenant CA certificate (PEM), created on first need: what back-ends trust."""
    with connect(server, profile) as remote:
        text = remote.certificates.ca()
    _write(text, output, "the tenant CA certificate")


# -- outbound -------------------------------------------------------------------------------


@outbound_app.command("generate")
def outbound_generate(
    system: SystemArg,
    key_type: KeyTypeOpt = None,
    validity_days: ValidityDays = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Generate an outbound certificate: active if it is the system's first, else inactive.

    A system has two at most: delete the inactive one before generating another.
    """
    with connect(server, profile) as remote:
        cert = remote.certificates.generate_outbound(
            system, key_type=_key_type(key_type), validity_days=validity_days
        )
    if as_json:
        print_json(cert)
        return
    _say(f"Generated an outbound certificate for {escape(cert['systemName'])}.")
    _show_outbound(cert)


@outbound_app.command("list")
def outbound_list(
    system: SystemArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """A system's outbound certificates, the active one first."""
    with connect(server, profile) as remote:
        listing = remote.certificates.outbound(system)
    if as_json:
        print_json(listing)
        return
    certs, name = listing["certificates"], escape(listing["systemName"])
    if not certs:
        _say(f"{name} has no outbound certificate.")
    else:  # both slots share subject and issuer (spec §8.1)
        _say(f"System  {escape(_named(listing['systemName'], listing['systemId']))}")
        _say(f"Subject {escape(certs[0]['subject'])}")
        _say(f"Issuer  {escape(certs[0]['issuer'])}")
        table = _table("fingerprint", "status", "key", "valid to", "expiry")
        for cert in certs:  # signature, serial number, dates in full: show or --json
            table.add_row(
                cert["fingerprint"],
                Text("ACTIVE", style="bold") if cert["status"] == "ACTIVE" else "INACTIVE",
                _key(cert),
                cert["validTo"][:10],
                _expiry(cert),
            )
        print_table(table)
        _say(HINT)
    _say(f"Automatic regeneration: {'on' if listing['autoRegeneration'] else 'off'}.")


@outbound_app.command("show")
def outbound_show(
    system: SystemArg,
    fingerprint: FingerprintArg,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """One outbound certificate in full."""
    with connect(server, profile) as remote:
        cert = remote.certificates.outbound_certificate(system, fingerprint)
    if as_json:
        print_json(cert)
        return
    _show_outbound(cert)


@outbound_app.command("activate")
def outbound_activate(
    system: SystemArg,
    fingerprint: FingerprintArg,
    yes: Yes = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Make a certificate the active one; the other becomes inactive.

    The next connection to the back-end presents it, so the back-end must accept it first.
    Asks for confirmation at a terminal; --yes (-y) answers yes (needed without a terminal).
    """
    confirm_or_yes(
        yes,
        f"Activate {fingerprint} for {system}? The active certificate becomes inactive and the "
        "back-end sees the new one from the next connection.",
    )
    with connect(server, profile) as remote:
        cert = remote.certificates.activate(system, fingerprint)
    if as_json:
        print_json(cert)
        return
    _say(
        f"Activated {cert['fingerprint']} for {escape(cert['systemName'])}; the other "
        "certificate is inactive."
    )


@outbound_app.command("download")
def outbound_download(
    system: SystemArg,
    fingerprint: FingerprintArg,
    output: Output = None,
    chain: Annotated[
        bool, typer.Option("--chain", metavar="", help="Append the tenant CA certificate.")
    ] = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """An outbound certificate as PEM (never its key), to give the back-end's admins."""
    with connect(server, profile) as remote:
        text = remote.certificates.download(system, fingerprint, chain=chain)
    _write(text, output, "the certificate chain" if chain else "the certificate")


@outbound_app.command("delete")
def outbound_delete(
    system: SystemArg,
    fingerprint: FingerprintArg,
    yes: Yes = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Delete an inactive certificate (the active one is in use).

    Asks for confirmation at a terminal; --yes (-y) answers yes (needed without a terminal).
    """
    confirm_or_yes(yes, f"Delete the outbound certificate {fingerprint} of {system}?")
    with connect(server, profile) as remote:
        cert = remote.certificates.outbound_certificate(system, fingerprint)
        remote.certificates.delete_outbound(system, cert["fingerprint"])
    _say(f"Deleted the outbound certificate {cert['fingerprint']} of {escape(cert['systemName'])}.")


@outbound_app.command("auto-regenerate")
def outbound_auto_regenerate(
    system: SystemArg,
    on: Annotated[
        bool | None,
        typer.Option(
            "--on/--off", metavar="", help="Turn it on or off (without: show the setting)."
        ),
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Show or set automatic regeneration of a system's outbound certificates.

    When on, a new certificate is made active 14 days before the active one expires; when
    off, expiry notices are recorded 30, 14 and 3 days before and at expiry.
    """
    with connect(server, profile) as remote:
        if on is not None:
            remote.certificates.set_auto_regeneration(system, on)
        listing = remote.certificates.outbound(system)
    if as_json:
        print_json(
            {
                "systemId": listing["systemId"],
                "systemName": listing["systemName"],
                "autoRegeneration": listing["autoRegeneration"],
            }
        )
        return
    state = "on" if listing["autoRegeneration"] else "off"
    _say(f"Automatic regeneration for {escape(listing['systemName'])}: {state}.")


def _events(events: list[Event], empty: str) -> None:
    if not events:
        _say(empty)
        return
    table = _table("when", "system", "kind", "detail")
    for event in events:
        table.add_row(
            event["created"][:19].replace("T", " "),
            event["systemName"],
            event["kind"],
            Text(event["detail"]),
        )
    print_table(table)


@outbound_app.command("events")
def outbound_events(
    system: SystemOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 100,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """The recorded expiry notices and automatic renewals, newest first."""
    with connect(server, profile) as remote:
        events = remote.certificates.events(system=system, limit=limit)
    if as_json:
        print_json({"events": events})
        return
    _events(events, "No expiry notices or renewals recorded.")


@outbound_app.command("maintain")
def outbound_maintain(
    at: Annotated[
        datetime | None,
        typer.Option(
            "--at",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
            help="Rehearse as if it were this time (UTC): a dry run, never with --apply.",
        ),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", metavar="", help="Apply the rules now: renew certificates, record notices."
        ),
    ] = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Rehearse the expiry rules (a dry run: nothing changes), or apply them now with --apply.

    Prints the renewals and notices that would happen (or with --apply, that happened):
    renewals where automatic regeneration is due, notices elsewhere. The server's jobs
    process applies the rules every hour; a future --at is for rehearsals only.
    """
    moment = at.replace(tzinfo=UTC) if at is not None else None
    with connect(server, profile) as remote:
        done = remote.certificates.maintain(at=moment, apply=apply)
    if as_json:
        print_json(done)
        return
    when = done["at"][:19].replace("T", " ")
    if done["applied"]:
        _events(done["events"], "Nothing to do: no certificate needed a renewal or a notice.")
        return
    _say(f"Rehearsal as of {when} UTC, a dry run: nothing was changed.")
    _events(
        done["events"], "Nothing would be done: no certificate would need a renewal or a notice."
    )
    if done["events"] and at is None:
        _say("Give --apply to do it now.")


# -- inbound --------------------------------------------------------------------------------


@inbound_app.command("import")
def inbound_import(
    file: Annotated[
        str, typer.Argument(help="The certificate: .crt, .pem or .der file ('-': stdin).")
    ],
    client: ClientOpt = None,
    system: SystemOpt = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
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
    with connect(server, profile) as remote:
        cert = remote.certificates.import_inbound(data, client=client, system=system)
    if as_json:
        print_json(cert)
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


def _save_private(bundle: bytes, output: Path) -> None:
    """Write a key file with mode 0600, beside the target first: a failure leaves neither a
    key nor a half file behind."""
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(bundle)
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        fail(f"Cannot write {escape(str(output))}: {exc.strerror or exc}")


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
    force: Annotated[
        bool, typer.Option("--force", metavar="", help="Overwrite an existing file.")
    ] = False,
    key_type: KeyTypeOpt = None,
    validity_days: ValidityDays = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Issue a certificate for a technical user; writes its key to a .p12 file.

    provisor's callers CA issues it with subject CN '<common name> (<client id>)'. The key is kept
    nowhere else: the password-protected .p12 file is its only copy. The password is asked
    (hidden), or read from --password-file or $PROVISOR_P12_PASSWORD, never from the command line.
    """
    if output.is_dir():
        fail(f"{escape(str(output))} is a folder: give the path of the .p12 file.")
    if output.exists() and not force:
        fail(f"{escape(str(output))} exists: give --force to overwrite it.")
    password = _password(password_file)
    with connect(server, profile) as remote:
        made = remote.certificates.generate_inbound(
            client,
            common_name,
            password,
            key_type=_key_type(key_type),
            validity_days=validity_days,
        )
        _save_private(made["bundle"], output)
        mine = remote.certificates.inbound(client=client)
    [cert] = [c for c in mine if c["fingerprint"] == made["fingerprint"]]
    if as_json:
        print_json({**cert, "file": str(output)})
        return
    _say(f"Wrote the key and certificate to {escape(str(output))} (mode 0600).")
    _show_inbound(cert)


@inbound_app.command("list")
def inbound_list(
    client: ClientOpt = None,
    system: SystemOpt = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Inbound certificates: of a client, of a system, or all."""
    _one_owner(client, system, required=False)
    with connect(server, profile) as remote:
        certs = remote.certificates.inbound(client=client, system=system)
    if as_json:
        print_json({"certificates": certs})
        return
    table = _table("fingerprint", "owner", "subject", "key", "valid to", "expiry")
    for cert in certs:  # issuer, signature, dates in full: --json
        table.add_row(
            cert["fingerprint"],
            _owner(cert),
            Text(cert["subject"]),
            _key(cert),
            cert["validTo"][:10],
            _expiry(cert),
        )
    if certs:
        print_table(table)
        _say(HINT)
    _say(f"{len(certs)} inbound certificate(s).")


@inbound_app.command("delete")
def inbound_delete(
    fingerprint: Annotated[
        str, typer.Argument(help="SHA-256 fingerprint, or the name cert_client_<fingerprint>.")
    ],
    client: ClientOpt = None,
    system: SystemOpt = None,
    yes: Yes = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Delete an inbound certificate: it no longer authenticates anyone (revoked for good).

    With --client or --system, only if it belongs to that owner. Asks for confirmation at a
    terminal; --yes (-y) answers yes (needed without a terminal).
    """
    _one_owner(client, system, required=False)
    confirm_or_yes(yes, f"Delete {fingerprint}? It will never authenticate its owner again.")
    with connect(server, profile) as remote:
        remote.certificates.delete_inbound(fingerprint, client=client, system=system)
    _say(f"Deleted {escape(fingerprint)}.")
