"""``provisor admins sso``: the OpenID Connect provider administrators sign in to the console
with, through the admin API (``/api/v1/console/sso``). The client secret is read from a file
or a hidden prompt, never from the command line, and never shown."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    fail,
    out,
    print_json,
    say,
)
from provisor.remote.sso import SsoInfo

app = typer.Typer(
    help="Single sign-on of the console with an OpenID Connect provider.", no_args_is_help=True
)


def _show(found: SsoInfo, as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    rows = (
        ("button", f"Sign in with {found['label']}"),
        ("issuer", found["issuer"]),
        ("client id", found["clientId"]),
        ("client secret", "stored (never shown)"),
        ("role claim", found["roleClaim"]),
        ("administrators", ", ".join(found["administratorValues"]) or "-"),
        ("viewers", ", ".join(found["viewerValues"]) or "-"),
        ("scopes", found["scopes"]),
        ("changed", found["updated"] or "-"),
    )
    for label, value in rows:
        out.print(f"{label:<15} {value}", highlight=False, markup=False)


def _secret(secret_file: Path | None, ask: bool) -> str:
    """The client secret to set: from the file ('-': standard input), typed at a hidden
    prompt, or empty (keep the stored one)."""
    if secret_file is not None and ask:
        fail("Give --client-secret-file or --ask-client-secret, not both.")
    if secret_file is not None:
        try:
            text = sys.stdin.read() if str(secret_file) == "-" else secret_file.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"Cannot read --client-secret-file {secret_file}: {exc}")
        if not text.strip():
            fail(f"--client-secret-file {secret_file} is empty.")
        return text.strip()
    if ask:
        if not sys.stdin.isatty():
            fail("--ask-client-secret needs a terminal: use --client-secret-file.")
        typed: str = typer.prompt("Client secret", hide_input=True)
        return typed.strip()
    return ""


@app.command()
def show(as_json: AsJSON = False, server: Server = None, profile: Profile = None) -> None:
    """The tenant's provider (never its client secret)."""
    with connect(server, profile) as remote:
        found = remote.sso.show()
    _show(found, as_json)


@app.command("set")
def set_sso(
    label: Annotated[str, typer.Option(help="The sign-in button: Sign in with LABEL.")],
    issuer: Annotated[
        str, typer.Option(help="The issuer URL, exactly as the provider's discovery has it.")
    ],
    client_id: Annotated[str, typer.Option(help="The client registered at the provider.")],
    client_secret_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the client secret ('-': standard input). Without it (and "
            "without --ask-client-secret) the stored secret is kept."
        ),
    ] = None,
    ask_client_secret: Annotated[
        bool, typer.Option(help="Type the client secret at a hidden prompt.")
    ] = False,
    role_claim: Annotated[
        str, typer.Option(help="The ID token's claim holding the role (a dotted path nests).")
    ] = "groups",
    administrator: Annotated[
        list[str] | None,
        typer.Option(
            "--administrator",
            help="A claim value that makes an administrator (repeat for several).",
        ),
    ] = None,
    viewer: Annotated[
        list[str] | None,
        typer.Option("--viewer", help="A claim value that makes a viewer (repeat for several)."),
    ] = None,
    scopes: Annotated[str | None, typer.Option(help="Default: openid profile email.")] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Set the tenant's provider (the redirect URI to register there is
    <console>/login/sso/callback)."""
    secret = _secret(client_secret_file, ask_client_secret)
    with connect(server, profile) as remote:
        found = remote.sso.set(
            label=label,
            issuer=issuer,
            client_id=client_id,
            client_secret=secret,
            role_claim=role_claim,
            administrator_values=administrator or [],
            viewer_values=viewer or [],
            scopes=scopes,
        )
    _show(found, as_json)


@app.command()
def clear(yes: Yes = False, server: Server = None, profile: Profile = None) -> None:
    """Remove single sign-on: administrators sign in with their passwords."""
    confirm_or_yes(yes, "Remove single sign-on from the console?")
    with connect(server, profile) as remote:
        remote.sso.clear()
    say("Single sign-on removed.")
