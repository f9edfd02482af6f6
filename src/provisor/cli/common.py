"""What the ``provisor`` commands share: consoles, common options, the connection to a
server (admin commands) or to the local database (bootstrap and maintenance commands)."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from provisor.context import DEFAULT_TENANT, Context
from provisor.errors import ProvisorError
from provisor.remote import Remote, RemoteError, Session
from provisor.remote import profiles as saved

if TYPE_CHECKING:  # the server stack is imported by the commands that use it
    from provisor.runtime import Services
    from provisor.settings import Settings

out = Console(soft_wrap=True)  # a line of text is never broken: scripts read whole lines
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar="PROVISOR_DATA_DIR",
        help="Data folder (SQLite database, key file). Default: ./provisor-data",
    ),
]
DatabaseURL = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="PROVISOR_DATABASE_URL",
        help="Database URL, e.g. postgresql://user@host/db. Default: SQLite.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="TOML configuration file whose keys are the settings' names (data_dir, "
        "database_url...); PROVISOR_* variables win over it. Default: PROVISOR_CONFIG.",
        show_default=False,
    ),
]
AsJSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="PROVISOR_SERVER",
        help="URL of the provisor server, e.g. https://provisor.example.org. "
        "Default: the profile's (provisor login).",
        show_envvar=True,
    ),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="PROVISOR_PROFILE",
        help="Profile saved by provisor login. Default: default.",
        show_envvar=True,
    ),
]
Yes = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal)."),
]


def use_config(path: Path | None) -> None:
    """Read the settings from this TOML file too (``--config``): it becomes ``PROVISOR_CONFIG``
    of this process and of those it starts (the server's worker processes read it too)."""
    if path is None:
        return
    if not path.is_file():
        fail(f"--config: no file {path}")
    os.environ["PROVISOR_CONFIG"] = str(path.resolve())


def settings_from(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    """The settings of a local command: its options, then the ``PROVISOR_*`` variables, then
    the configuration file (``PROVISOR_CONFIG``); a problem is one readable line (exit 1)."""
    from provisor.settings import Settings, SettingsFileError  # admin commands start faster

    values: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if database_url is not None:
        values["database_url"] = database_url
    try:
        return Settings(**values)
    except SettingsFileError as exc:
        fail(exc.message)
    except ValidationError as exc:
        fail("Invalid settings: " + "; ".join(_setting_problem(e) for e in exc.errors()) + ".")


def _setting_problem(error: Any) -> str:
    """``PROVISOR_NAME should be ..., not ...`` (a key's or secret's value is not shown); a
    setting from the configuration file is named by its key there."""
    field = "_".join(str(part) for part in error["loc"])
    message = str(error["msg"])
    if not field:  # the whole settings' check (a secret file that cannot be read)
        return message.removeprefix("Value error, ")
    name = "PROVISOR_" + field.upper()
    config = os.environ.get("PROVISOR_CONFIG")
    if config and name not in os.environ:
        name = f"{field} (in {config})"
    if message.startswith("Input should be "):
        wanted = message.removeprefix("Input should be ").split(", unable to")[0]
        secret = "KEY" in name or "SECRET" in name
        return f"{name} should be {wanted}" + ("" if secret else f", not {error.get('input')!r}")
    return f"{name}: {message.removeprefix('Value error, ')}"


def print_table(table: Table) -> None:
    """A table at its natural width, even wider than the terminal: no column is cut or
    folded (ids, fingerprints and names stay whole; a terminal wraps the long lines)."""
    natural = Measurement.get(out, out.options.update_width(10_000), table).maximum
    if natural <= out.width:
        out.print(table)
    else:  # a console as wide as the table (rich clamps a print's width to its console's)
        Console(width=natural).print(table, crop=False)


def say(text: str) -> None:
    """Print a line as it is: no markup, no highlighting, no wrapping."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON on standard output, for scripts (``--json``)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def operator_context(tenant: str = DEFAULT_TENANT) -> Context:
    """The context of the CLI's service calls: the local operator (who holds the data folder
    and its master key) acting as an administrator of ``tenant``, named ``cli:<user>``."""
    try:
        name = f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        name = "cli"
    return Context.administrator(name, tenant=tenant)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def open_services(settings: Settings, *, long_running: bool = False) -> Iterator[Services]:
    """Services on an up-to-date database of an existing installation (its data folder and
    master key: only serve and init make them); ProvisorErrors become readable messages. The
    services' warnings (and, at log level debug, everything) go to standard error as JSON
    lines, as a server's: standard output is the command's. A ``long_running`` process
    (a worker) logs at the configured level, as a server does."""
    from provisor import logs
    from provisor.runtime import Services, require_installation
    from provisor.storage import migrate

    quiet = "debug" if settings.log_level == "debug" else "warning"
    logs.configure(settings.log_level if long_running else quiet)
    try:
        if long_running:
            from provisor import tracing

            tracing.configure(settings.otel_traces_url)
        require_installation(settings)
        services = Services.open(settings)
        try:
            migrate.upgrade(services.db)
            services.master_key.verify()
            yield services
        finally:
            services.close()
    except ProvisorError as exc:
        fail(exc.message)


NOT_LOGGED_IN = (
    "No server to talk to: run provisor login URL --client-id ID --client-secret-file FILE, "
    "or set PROVISOR_SERVER with PROVISOR_CLIENT_ID and PROVISOR_CLIENT_SECRET."
)


def session_for(server: str | None, profile: str | None) -> Session:
    """The session the options, the environment and the saved profiles describe.
    ``PROVISOR_CLIENT_ID`` (with ``PROVISOR_CLIENT_SECRET``) or ``PROVISOR_CLIENT_CERT``
    (with ``PROVISOR_CLIENT_KEY``) in the environment take precedence over a profile; then
    ``--profile`` (or ``default``); ``--server`` overrides the profile's server."""
    env = os.environ
    ca = env.get("PROVISOR_CA_FILE")
    if env.get("PROVISOR_CLIENT_ID") or env.get("PROVISOR_CLIENT_CERT"):
        if not server:
            fail("PROVISOR_CLIENT_ID or PROVISOR_CLIENT_CERT is set: set PROVISOR_SERVER too.")
        return _session(
            server,
            client_id=env.get("PROVISOR_CLIENT_ID"),
            client_secret=env.get("PROVISOR_CLIENT_SECRET"),
            cert=env.get("PROVISOR_CLIENT_CERT"),
            key=env.get("PROVISOR_CLIENT_KEY"),
            ca_file=ca,
        )
    name = profile or saved.DEFAULT
    try:
        found = saved.load(name)
    except saved.ProfileError as exc:
        fail(exc.message)
    if found is None:
        if profile:
            fail(
                f"No profile {profile!r} in {saved.profiles_file()}: run provisor login URL "
                f"--profile {profile} ..."
            )
        fail(NOT_LOGGED_IN)
    return _session(
        server or found.server,
        client_id=found.client_id,
        client_secret=found.client_secret,
        cert=found.cert,
        key=found.key,
        ca_file=ca or found.ca_file,
    )


def _session(
    server: str,
    *,
    client_id: str | None,
    client_secret: str | None,
    cert: str | None,
    key: str | None,
    ca_file: str | None,
) -> Session:
    if not server.startswith(("http://", "https://")):
        fail(f"The server {server!r} is not an http:// or https:// URL.")
    for what, name in ((cert, "client certificate"), (key, "client key"), (ca_file, "CA file")):
        if what and not Path(what).is_file():
            fail(f"No file {what} (the {name}).")
    try:
        return Session(
            server,
            client_id=client_id,
            client_secret=client_secret,
            cert=Path(cert) if cert else None,
            key=Path(key) if key else None,
            ca_file=Path(ca_file) if ca_file else None,
        )
    except (OSError, ValueError) as exc:  # unreadable PEM files, a key that does not match
        fail(f"The client certificate or CA file cannot be used: {exc}")


@contextmanager
def connect(server: str | None, profile: str | None) -> Iterator[Remote]:
    """The server the options name, through its admin API; a refusal or an unreachable
    server becomes one readable line (exit 1)."""
    with session_for(server, profile) as session:
        try:
            yield Remote(session)
        except RemoteError as exc:
            fail(exc.message)


def confirm_or_yes(yes: bool, question: str) -> None:
    """Go on when ``--yes`` was given or the user agrees at a terminal; else stop (exit 1)."""
    if yes:
        return
    if not sys.stdin.isatty():
        fail(f"{question} Not confirmed: run it again with --yes.")
    if not typer.confirm(question, default=False):
        fail("Cancelled.")
