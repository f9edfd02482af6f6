"""``provisor clients``: technical users, through the admin API (``/api/v1/clients``).

``clients create --local`` is the one exception: it writes to the database of an existing
data folder, for the first credentials or to recover when no admin client is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    err,
    fail,
    open_services,
    operator_context,
    out,
    print_json,
    print_table,
    settings_from,
)
from provisor.context import DEFAULT_TENANT, INSTALLATION, INSTALLATION_ONLY, Permission
from provisor.errors import ProvisorError
from provisor.remote.clients import ClientInfo, ClientWithSecret

if TYPE_CHECKING:
    from provisor.settings import Settings

app = typer.Typer(help="Technical users (clients) of the APIs.", no_args_is_help=True)

ClientArg = Annotated[str, typer.Argument(help="Client id or name.")]
ExpiresInDays = Annotated[
    int | None, typer.Option(min=1, help="The secret expires after this many days.")
]


def _expiry(client: ClientInfo) -> str:
    expires = sorted(s["expires"] for s in client["secrets"] if s["expires"])
    return expires[0][:10] if expires else "never"


def _table(clients: list[ClientInfo]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("name", overflow="fold")
    table.add_column("client id", no_wrap=True, overflow="fold")
    table.add_column("permissions", overflow="fold")
    table.add_column("created", no_wrap=True)
    table.add_column("secrets", justify="right")
    table.add_column("expires", no_wrap=True)
    for c in clients:
        table.add_row(
            c["name"],
            c["clientId"],
            " ".join(c["permissions"]),
            c["created"][:10],
            str(len(c["secrets"])),
            _expiry(c),
        )
    return table


def _show(client: ClientInfo) -> None:
    out.print(f"[bold]{client['name']}[/] ({client['clientId']})", highlight=False)
    for label, value in (
        ("permissions", " ".join(client["permissions"])),
        ("description", client["description"] or "-"),
        ("created", client["created"]),
    ):
        out.print(f"  {label:<12} {value}", highlight=False)
    for secret in client["secrets"]:
        expires = f"expires {secret['expires']}" if secret["expires"] else "does not expire"
        out.print(
            f"  secret       {secret['id']}: created {secret['created']}, {expires}",
            highlight=False,
        )


def _credentials(client: ClientWithSecret, as_json: bool, what: str) -> None:
    """A client with its new secret: JSON (what ``provisor login --credentials-file``
    reads), or the id and the secret on their own lines."""
    if as_json:
        print_json(client)
        return
    out.print(what, highlight=False)
    out.print(f"client_id:     {client['clientId']}", highlight=False)
    out.print(f"client_secret: {client['clientSecret']}", highlight=False)
    out.print("The secret is not stored and cannot be shown again.")


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="A unique name for the client.")],
    permission: Annotated[
        list[Permission],
        typer.Option("--permission", "-p", help="A permission (repeat for several)."),
    ],
    description: Annotated[str, typer.Option(help="What the client is for.")] = "",
    expires_in_days: ExpiresInDays = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Write to the database of the data folder instead of calling a server: for "
            "the first credentials, or to recover when no admin client is left.",
        ),
    ] = False,
    tenant: Annotated[
        str | None,
        typer.Option(
            help="With --local: the tenant whose technical user it is (default: the default "
            "tenant; an operator or metrics reader, with the permission operator or metrics, is "
            "the installation's).",
        ),
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Create a technical user; its secret is shown once."""
    permissions = [p.value for p in permission]
    if local:
        created = _create_locally(
            name,
            permissions,
            description,
            expires_in_days,
            settings_from(data_dir, database_url),
            tenant,
        )
    else:
        if data_dir is not None or database_url is not None or tenant is not None:
            fail(
                "--data-dir, --database-url and --tenant go with --local (else the server is "
                "used: a server's tenant is in its URL, e.g. https://host/t/acme)."
            )
        with connect(server, profile) as remote:
            created = remote.clients.create(
                name, permissions, description=description, expires_in_days=expires_in_days
            )
    what = f"Created client {created['name']} with {', '.join(created['permissions'])}."
    _credentials(created, as_json, what)


def _create_locally(
    name: str,
    permissions: list[str],
    description: str,
    expires_in_days: int | None,
    settings: Settings,
    tenant: str | None,
) -> ClientWithSecret:
    from provisor.auth import present

    if tenant is None:
        installation = {p.value for p in INSTALLATION_ONLY}
        tenant = INSTALLATION if set(permissions) <= installation else DEFAULT_TENANT
    with open_services(settings) as services:
        ctx = operator_context(tenant)
        if tenant != INSTALLATION and services.tenants.resolve(tenant) is None:
            fail(f"No tenant {tenant!r} in this installation.")
        try:
            row, creds = services.clients.create(
                ctx, name, permissions, description=description, expires_in_days=expires_in_days
            )
        except ProvisorError as exc:
            fail(exc.message)
        created = present.with_secret(services.clients.show(ctx, row.id), creds)
    return cast(ClientWithSecret, created)  # the API's answer, made here


@app.command("list")
def list_clients(as_json: AsJSON = False, server: Server = None, profile: Profile = None) -> None:
    """List the technical users (never their secrets)."""
    with connect(server, profile) as remote:
        found = remote.clients.list()
    if as_json:
        print_json(found)
        return
    print_table(_table(found["items"]))


@app.command()
def show(
    client: ClientArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """A technical user: its permissions and when its secrets were made and expire."""
    with connect(server, profile) as remote:
        found = remote.clients.show(client)
    if as_json:
        print_json(found)
        return
    _show(found)


@app.command()
def update(
    client: ClientArg,
    permission: Annotated[
        list[Permission] | None,
        typer.Option(
            "--permission",
            "-p",
            help="A permission (repeat for several): they replace all the client's permissions.",
        ),
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the client is for.")] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Change a technical user's permissions or description; its secrets and certificates
    stay. The last admin client cannot lose admin through the API."""
    if permission is None and description is None:
        fail("Give --permission (repeat for several) or --description: nothing to change.")
    permissions = None if permission is None else [p.value for p in permission]
    with connect(server, profile) as remote:
        changed = remote.clients.update(client, permissions=permissions, description=description)
    if as_json:
        print_json(changed)
        return
    _show(changed)


@app.command("rotate-secret")
def rotate_secret(
    client: ClientArg,
    keep_previous: Annotated[
        bool,
        typer.Option(
            "--keep-previous/--no-keep-previous",
            help="Keep the newest current secret valid too (two at most), to switch callers "
            "over without downtime.",
        ),
    ] = False,
    expires_in_days: ExpiresInDays = None,
    yes: Yes = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Issue a new secret; the old ones stop working unless --keep-previous (asks first
    then, or --yes)."""
    if not keep_previous:
        confirm_or_yes(yes, f"The current secrets of {client} will stop working. Go on?")
    with connect(server, profile) as remote:
        me = remote.clients.me()
        rotated = remote.clients.rotate_secret(
            client, keep_previous=keep_previous, expires_in_days=expires_in_days
        )
    _credentials(rotated, as_json, f"New secret for {rotated['name']}:")
    if me["clientId"] == rotated["clientId"] and me["authentication"] != "certificate":
        err.print(
            "These commands log in as this client: run provisor login again with the new "
            "secret (or change PROVISOR_CLIENT_SECRET).",
            highlight=False,
        )


@app.command()
def delete(
    client: ClientArg, yes: Yes = False, server: Server = None, profile: Profile = None
) -> None:
    """Delete a technical user; its secrets, tokens and certificates stop working (asks
    first, or --yes). The last admin client cannot be deleted through the API."""
    with connect(server, profile) as remote:
        found = remote.clients.show(client)
        confirm_or_yes(yes, f"Delete the client {found['name']} ({found['clientId']})?")
        remote.clients.delete(found["clientId"])
    out.print(f"Deleted client {found['name']} ({found['clientId']}).", highlight=False)
