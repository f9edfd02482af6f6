"""``provisor admins``: the administrators (people) of the console, through the admin API
(``/api/v1/administrators``).

``admins create --local`` and ``admins reset-password --local`` are the exceptions: they write
to the database of an existing data folder as its local operator, for a locked-out
installation (nobody left who can sign in) or the installation's first operator
(``create --local --operator NAME``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from provisor.admins.model import Role
from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    fail,
    open_services,
    operator_context,
    print_json,
    print_table,
    say,
    settings_from,
)
from provisor.context import DEFAULT_TENANT, INSTALLATION
from provisor.errors import ProvisorError
from provisor.remote.administrators import AdministratorInfo

if TYPE_CHECKING:
    from provisor.settings import Settings

app = typer.Typer(help="Administrators: the people who use the console.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The administrator's name.")]
RoleOption = Annotated[
    Role,
    typer.Option(
        "--role",
        help="administrator (everything) or viewer (read-only); operator is the "
        "installation's (see --operator).",
        case_sensitive=False,
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="File holding the password (at least 12 characters). Else --ask-password, or one "
        "is generated and printed once.",
    ),
]
AskPassword = Annotated[
    bool,
    typer.Option("--ask-password", help="Type the password at a hidden prompt."),
]
Local = Annotated[
    bool,
    typer.Option(
        "--local",
        help="Write to the database of the data folder instead of calling a server: for a "
        "locked-out installation, or its first operator.",
    ),
]
Tenant = Annotated[
    str | None,
    typer.Option(help="With --local: the tenant of the administrator (default: the default one)."),
]
PAGE = 200


def _password(password_file: Path | None, ask: bool) -> str | None:
    """The password to set: from the file, typed at a hidden prompt, or None (generated)."""
    if password_file is not None and ask:
        fail("Give --password-file or --ask-password, not both.")
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"Cannot read --password-file {password_file}: {exc}")
        if not text:
            fail(f"--password-file {password_file} is empty.")
        return text
    if ask:
        if not sys.stdin.isatty():
            fail("--ask-password needs a terminal: use --password-file.")
        typed: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return typed
    return None


def _table(admins: list[AdministratorInfo]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "role", "origin", "second factor", "created", "last sign-in"):
        table.add_column(column, overflow="fold")
    for a in admins:
        table.add_row(
            a["name"],
            a["role"],
            a["origin"],
            "on" if a["totpEnabled"] else "off",
            a["created"][:10],
            (a["lastLogin"] or "never")[:19],
        )
    return table


def _show(admin: AdministratorInfo, as_json: bool) -> None:
    if as_json:
        print_json(admin)
        return
    say(f"{admin['name']} ({admin['role']}, {admin['origin']})")
    say(f"  second factor  {'on' if admin['totpEnabled'] else 'off'}")
    say(f"  created        {admin['created']}")
    say(f"  last sign-in   {admin['lastLogin'] or 'never'}")
    if "password" in admin:
        say(f"  password       {admin['password']}")
        say("The password is not stored in clear and cannot be shown again.")


def _remote_only(data_dir: Path | None, database_url: str | None, tenant: str | None) -> None:
    if data_dir is not None or database_url is not None or tenant is not None:
        fail(
            "--data-dir, --database-url and --tenant go with --local (else the server is "
            "used: a server's tenant is in its URL, e.g. https://host/t/acme)."
        )


@app.command()
def create(
    name: NameArg,
    role: RoleOption = Role.ADMINISTRATOR,
    password_file: PasswordFile = None,
    ask_password: AskPassword = False,
    local: Local = False,
    operator: Annotated[
        bool,
        typer.Option(
            "--operator",
            help="With --local: an operator of the installation (manages its tenants in "
            "/operator/console) rather than an administrator of a tenant.",
        ),
    ] = False,
    tenant: Tenant = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Create a local administrator; a generated password is printed once."""
    password = _password(password_file, ask_password)
    if operator and not local:
        fail("--operator goes with --local: an operator is made in the data folder.")
    if local:
        if operator:
            if tenant is not None:
                fail("--operator is the installation's: leave out --tenant.")
            role, tenant = Role.OPERATOR, INSTALLATION
        settings = settings_from(data_dir, database_url)
        created = _create_locally(name, role, password, settings, tenant or DEFAULT_TENANT)
    else:
        _remote_only(data_dir, database_url, tenant)
        with connect(server, profile) as remote:
            created = remote.administrators.create(name, role.value, password)
    _show(created, as_json)


def _create_locally(
    name: str, role: Role, password: str | None, settings: Settings, tenant: str
) -> AdministratorInfo:
    from provisor.admins import present

    with open_services(settings) as services:
        if tenant != INSTALLATION and services.tenants.resolve(tenant) is None:
            fail(f"No tenant {tenant!r} in this installation.")
        try:
            admin, made = services.administrators.create(
                operator_context(tenant), name, role, password
            )
        except ProvisorError as exc:
            fail(exc.message)
    body = present.administrator(admin) if password else present.with_password(admin, made)
    return cast(AdministratorInfo, body)  # the API's answer, made here


@app.command("list")
def list_administrators(
    search: Annotated[str, typer.Option(help="Only names containing this.")] = "",
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """List the administrators (every page)."""
    found: list[AdministratorInfo] = []
    after = ""
    with connect(server, profile) as remote:
        while True:
            page = remote.administrators.list(search=search, after=after, count=PAGE)
            found.extend(page["items"])
            if not page["next"]:
                break
            after = page["next"]
    if as_json:
        print_json({"items": found})
        return
    print_table(_table(found))


@app.command()
def show(
    name: NameArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """An administrator: role, origin, second factor, last sign-in."""
    with connect(server, profile) as remote:
        _show(remote.administrators.show(name), as_json)


@app.command("set-role")
def set_role(
    name: NameArg,
    role: Annotated[Role, typer.Argument(help="administrator or viewer.", case_sensitive=False)],
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Change an administrator's role; their sessions end. The last administrator keeps
    theirs."""
    with connect(server, profile) as remote:
        _show(remote.administrators.set_role(name, role.value), as_json)


@app.command()
def delete(name: NameArg, yes: Yes = False, server: Server = None, profile: Profile = None) -> None:
    """Delete an administrator (asks first, or --yes). The last administrator cannot be
    deleted."""
    confirm_or_yes(yes, f"Delete the administrator {name}?")
    with connect(server, profile) as remote:
        remote.administrators.delete(name)
    say(f"Deleted the administrator {name}.")


@app.command("reset-password")
def reset_password(
    name: NameArg,
    password_file: PasswordFile = None,
    ask_password: AskPassword = False,
    local: Local = False,
    tenant: Tenant = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Set a new password (a generated one is printed once); their sessions end."""
    password = _password(password_file, ask_password)
    if local:
        settings = settings_from(data_dir, database_url)
        reset = _reset_locally(name, password, settings, tenant or DEFAULT_TENANT)
    else:
        _remote_only(data_dir, database_url, tenant)
        with connect(server, profile) as remote:
            reset = remote.administrators.reset_password(name, password)
    if as_json:
        print_json(reset)
    elif "password" in reset:
        say(f"New password of {reset['name']}: {reset['password']}")
        say("The password is not stored in clear and cannot be shown again.")
    else:
        say(f"The password of {reset['name']} is set; their sessions ended.")


def _reset_locally(
    name: str, password: str | None, settings: Settings, tenant: str
) -> AdministratorInfo:
    from provisor.admins import present

    with open_services(settings) as services:
        ctx = operator_context(tenant)
        if tenant != INSTALLATION and services.tenants.resolve(tenant) is None:
            fail(f"No tenant {tenant!r} in this installation.")
        try:
            made = services.administrators.reset_password(ctx, name, password)
            admin = services.administrators.show(ctx, name)
        except ProvisorError as exc:
            fail(exc.message)
    body = present.administrator(admin) if password else present.with_password(admin, made)
    return cast(AdministratorInfo, body)


@app.command("reset-second-factor")
def reset_second_factor(
    name: NameArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Remove an administrator's second factor (a lost authenticator); their sessions end."""
    with connect(server, profile) as remote:
        found = remote.administrators.reset_second_factor(name)
    if as_json:
        print_json(found)
        return
    say(f"The second factor of {found['name']} is removed; they set it up again when they wish.")


@app.command("end-sessions")
def end_sessions(name: NameArg, server: Server = None, profile: Profile = None) -> None:
    """Sign an administrator out everywhere."""
    with connect(server, profile) as remote:
        ended = remote.administrators.end_sessions(name)
    say(f"Ended {ended} session{'s' if ended != 1 else ''} of {name}.")


__all__ = ["app"]
