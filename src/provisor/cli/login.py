"""``provisor login``, ``logout`` and ``whoami``: the profiles that admin commands connect with."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from provisor.cli.common import AsJSON, Profile, Server, connect, fail, out, print_json
from provisor.remote import Remote, RemoteError, Session
from provisor.remote import profiles as saved
from provisor.remote.clients import Me


def _secret_of(client_secret_file: Path | None) -> str:
    """The client secret: from the file, else standard input (a pipe), else a hidden prompt."""
    if client_secret_file is not None:
        try:
            text = client_secret_file.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"Cannot read --client-secret-file {client_secret_file}: {exc.strerror or exc}")
    elif os.environ.get("PROVISOR_CLIENT_SECRET"):
        text = os.environ["PROVISOR_CLIENT_SECRET"]
    elif not sys.stdin.isatty():
        text = sys.stdin.read()
    else:
        text = typer.prompt("Client secret", hide_input=True)
    secret = text.strip()
    if not secret:
        fail("The client secret is empty.")
    return secret


def _credentials_file(path: Path) -> tuple[str, str]:
    """(client id, secret) of a credentials file: initial-admin.json, initial-operator.json,
    or the output of ``provisor clients create --json`` or ``provisor tenants create
    --json`` (its administrator)."""
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        fail(f"Cannot read --credentials-file {path}: {exc.strerror or exc}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        fail(f"--credentials-file {path} is not JSON.")
    if not isinstance(data, dict):
        fail(f"--credentials-file {path} is not a JSON object.")
    if isinstance(data.get("administrator"), dict):  # provisor tenants create --json
        data = data["administrator"]
    client_id = data.get("client_id") or data.get("clientId")
    secret = data.get("client_secret") or data.get("clientSecret")
    if not isinstance(client_id, str) or not isinstance(secret, str):
        fail(f"--credentials-file {path} has no client_id and client_secret.")
    return client_id, secret


def who(remote: Remote) -> Me:
    """The technical user the session authenticates as: a tenant's (``GET /api/v1/me``) or,
    when the tenant does not know these credentials (401), the installation's operator
    (``GET /operator/v1/me``: the operators' scope is ``/operator/`` at the installation's
    address). When neither knows them, the tenant's refusal."""
    try:
        return remote.clients.me()
    except RemoteError as refused:
        if refused.status != 401:
            raise
        try:
            return remote.tenants.me()
        except RemoteError:
            raise refused from None


def login(
    server: Annotated[str, typer.Argument(help="URL of the server, e.g. http://127.0.0.1:8000.")],
    client_id: Annotated[
        str | None,
        typer.Option(
            "--client-id", envvar="PROVISOR_CLIENT_ID", help="The technical user's client id."
        ),
    ] = None,
    client_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--client-secret-file",
            help="File holding the client secret. Else: PROVISOR_CLIENT_SECRET, standard input, "
            "or a hidden prompt.",
        ),
    ] = None,
    credentials_file: Annotated[
        Path | None,
        typer.Option(
            "--credentials-file",
            help="JSON file with client_id and client_secret (provisor-data/initial-admin.json "
            "or initial-operator.json, or the output of provisor clients create --json or "
            "provisor tenants create --json).",
        ),
    ] = None,
    cert: Annotated[
        Path | None, typer.Option("--cert", help="Client certificate (PEM) instead of a secret.")
    ] = None,
    key: Annotated[Path | None, typer.Option("--key", help="Private key (PEM) of --cert.")] = None,
    cacert: Annotated[
        Path | None,
        typer.Option("--cacert", help="CA certificate(s) (PEM) that issued the server's."),
    ] = None,
    profile: Profile = None,
) -> None:
    """Check credentials against a server and save them as a profile (0600, in
    ~/.config/provisor/), for the admin commands to use."""
    if not server.startswith(("http://", "https://")):
        fail(f"The server {server!r} is not an http:// or https:// URL.")
    secret: str | None = None
    if cert is not None:
        if client_id or client_secret_file or credentials_file:
            fail("--cert authenticates by certificate: leave out --client-id and the secret.")
        if key is None:
            fail("--cert needs --key (the certificate's private key, PEM).")
        cert, key = cert.resolve(), key.resolve()
    elif credentials_file is not None:
        client_id, secret = _credentials_file(credentials_file)
    elif client_id is None:
        fail(
            "Say who logs in: --client-id ID (with its secret), --credentials-file FILE, "
            "or --cert and --key."
        )
    else:
        secret = _secret_of(client_secret_file)
    ca_file = cacert.resolve() if cacert else None
    for option, file in (("--cert", cert), ("--key", key), ("--cacert", ca_file)):
        if file is not None and not file.is_file():
            fail(f"{option}: no file {file}")
    try:
        with Session(
            server, client_id=client_id, client_secret=secret, cert=cert, key=key, ca_file=ca_file
        ) as session:
            me = who(Remote(session))
    except RemoteError as exc:
        fail(f"Login refused: {exc.message}")
    except (OSError, ValueError) as exc:
        fail(f"The client certificate or CA file cannot be used: {exc}")
    name = profile or saved.DEFAULT
    try:
        path = saved.save(
            name,
            saved.Profile(
                server=server.rstrip("/"),
                client_id=client_id,
                client_secret=secret,
                cert=str(cert) if cert else None,
                key=str(key) if key else None,
                ca_file=str(ca_file) if ca_file else None,
            ),
        )
    except (OSError, saved.ProfileError) as exc:
        fail(f"Cannot save the profile: {getattr(exc, 'message', exc)}")
    out.print(
        f"Logged in to {server} as {me['name']} ({', '.join(me['permissions']) or 'no permission'})"
        f"; saved as profile {name!r} in {path}.",
        highlight=False,
        soft_wrap=True,
    )


def logout(profile: Profile = None) -> None:
    """Forget a saved profile and its secret (the technical user keeps working elsewhere)."""
    name = profile or saved.DEFAULT
    try:
        removed = saved.remove(name)
    except saved.ProfileError as exc:
        fail(exc.message)
    if not removed:
        fail(f"No profile {name!r} in {saved.profiles_file()}.")
    out.print(f"Forgot profile {name!r}.", highlight=False)


def whoami(server: Server = None, profile: Profile = None, as_json: AsJSON = False) -> None:
    """Show the server and the technical user the admin commands act as."""
    with connect(server, profile) as remote:
        me = who(remote)
        url = remote.session.server
    if as_json:
        print_json({"server": url, **me})
        return
    out.print(f"{me['name']} ({me['clientId']}) on {url}", highlight=False)
    out.print(f"tenant: {_scope(me['tenant'])}", highlight=False)
    out.print(f"permissions: {', '.join(me['permissions']) or 'none'}", highlight=False)
    out.print(f"authenticated by: {me['authentication']}", highlight=False)


def _scope(tenant: str) -> str:
    """A tenant's name, or what the installation scope of the operators is."""
    return "none (the installation's operator)" if tenant == "_installation" else tenant
