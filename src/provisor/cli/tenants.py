"""``provisor tenants``: the installation's tenants, through the operator API
(``/operator/v1``), as an operator (``provisor login URL --credentials-file
initial-operator.json --profile operator``, then ``--profile operator``).

``tenants create`` prints the tenant's URLs and its first administrator's client id and
secret once (``--json`` for scripts: what ``provisor login --credentials-file`` reads).
``tenants export`` and ``import`` are ``provisor config export`` and ``apply`` for a tenant
named by the operator (the same files, plans and fingerprints).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from provisor.cli import config as documents  # the configuration files, plans and refusals
from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    fail,
    print_json,
    print_table,
    say,
)
from provisor.remote.tenants import CreatedTenant, Tenant, TenantView, Usage
from provisor.tenants.model import QUOTA_NAMES  # names only: no server module

app = typer.Typer(
    help="Tenants of the installation (an operator's credentials).", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The tenant's name.")]
Title = Annotated[str | None, typer.Option("--title", help="A title for people.")]
QUOTAS_HELP = f"A quota ({', '.join(QUOTA_NAMES)}), e.g. sourceSystems=10"
NewQuotas = Annotated[
    list[str] | None,
    typer.Option(
        "--quota",
        "-q",
        metavar="NAME=N",
        help=f"{QUOTAS_HELP}; the others are the installation's defaults. Repeat for several.",
    ),
]
QuotaChanges = Annotated[
    list[str] | None,
    typer.Option(
        "--quota",
        "-q",
        metavar="NAME=N",
        help=f"{QUOTAS_HELP}, or NAME=default: the installation's default again. Repeat for "
        "several.",
    ),
]


def parse_quotas(values: list[str] | None, *, resets: bool) -> dict[str, int | None]:
    """``NAME=N`` options as a quotas object; ``NAME=default`` (when ``resets``) as null."""
    quotas: dict[str, int | None] = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        name, number = name.strip(), number.strip()
        if not sep or name not in QUOTA_NAMES:
            fail(f"--quota {value!r}: write NAME=N with NAME one of {', '.join(QUOTA_NAMES)}.")
        if resets and number.lower() == "default":
            quotas[name] = None
            continue
        if not number.isdigit():
            also = " or default" if resets else ""
            fail(f"--quota {value!r}: the value is a whole number of 0 or more{also}.")
        quotas[name] = int(number)
    return quotas


def _quotas(tenant: Tenant) -> str:
    set_ = tenant["quotas"]
    return " ".join(f"{k}={v}" for k, v in set_.items()) if set_ else "defaults"


def _urls(tenant: Tenant) -> list[str]:
    urls = tenant.get("urls")
    if urls is None:
        return []
    return [urls["path"], *([urls["host"]] if "host" in urls else [])]


def _holdings(usage: Usage) -> str:
    systems = {
        "source": usage.get("sourceSystems", 0),
        "target": usage.get("targetSystems", 0),
        "proxy": usage.get("proxySystems", 0),
    }
    parts = [f"{n} {role} system{'s' if n != 1 else ''}" for role, n in systems.items()]
    users, groups, clients = usage.get("users", 0), usage.get("groups", 0), usage.get("clients", 0)
    parts += [
        f"{users} user{'s' if users != 1 else ''}",
        f"{groups} group{'s' if groups != 1 else ''}",
        f"{clients} technical user{'s' if clients != 1 else ''}",
    ]
    return ", ".join(parts)


def _created(created: CreatedTenant) -> None:
    admin = created["administrator"]
    title = f" ({created['title']})" if created["title"] else ""
    say(f"Created tenant {created['name']}{title}.")
    for url in _urls(created):
        say(f"URL:           {url}")
    say("Its first administrator (permission admin):")
    say(f"client_id:     {admin['client_id']}")
    say(f"client_secret: {admin['client_secret']}")
    say("The secret is not stored and cannot be shown again. Hand it to the tenant's")
    say("administrator, who logs in with:")
    url = _urls(created)[0] if _urls(created) else "URL/t/" + created["name"]
    say(f"  provisor login {url} --client-id {admin['client_id']} --profile {created['name']}")


@app.command()
def create(
    name: Annotated[
        str,
        typer.Argument(help="A host name label: lower-case letters, digits and inner hyphens."),
    ],
    title: Title = None,
    bundle: Annotated[
        str | None, typer.Option("--bundle", help="Set it up from this bundle template.")
    ] = None,
    quota: NewQuotas = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Create a tenant and its first administrator; the administrator's secret is shown
    once."""
    quotas = parse_quotas(quota, resets=False)
    with connect(server, profile) as remote:
        created = remote.tenants.create(name, title=title or "", bundle=bundle, quotas=quotas)
    if as_json:
        print_json(created)
        return
    _created(created)


@app.command("list")
def list_tenants(as_json: AsJSON = False, server: Server = None, profile: Profile = None) -> None:
    """List the tenants."""
    with connect(server, profile) as remote:
        found = remote.tenants.list()
    if as_json:
        print_json(found)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("name", no_wrap=True)
    table.add_column("title")
    table.add_column("kind", no_wrap=True)
    table.add_column("enabled", no_wrap=True)
    table.add_column("quotas")
    table.add_column("created", no_wrap=True)
    for tenant in found["items"]:
        kind = tenant["kind"] + (f" ({tenant['bundle']})" if tenant["bundle"] else "")
        table.add_row(
            tenant["name"],
            tenant["title"],
            kind,
            "yes" if tenant["enabled"] else "no",
            _quotas(tenant),
            tenant["created"][:10],
        )
    print_table(table)


def _show(tenant: TenantView) -> None:
    title = f" ({tenant['title']})" if tenant["title"] else ""
    say(f"{tenant['name']}{title}")
    kind = tenant["kind"] + (f", bundle {tenant['bundle']}" if tenant["bundle"] else "")
    for label, value in (
        ("kind", kind),
        ("enabled", "yes" if tenant["enabled"] else "no (its URLs answer 404)"),
        *(("url", url) for url in _urls(tenant)),
        ("quotas", _quotas(tenant)),
        ("holds", _holdings(tenant["usage"])),
        ("jobs running", str(tenant["usage"].get("jobsRunning", 0))),
        ("created", tenant["created"]),
        ("modified", tenant["lastModified"]),
    ):
        say(f"  {label:<13} {value}")


@app.command()
def show(
    name: NameArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """A tenant: its URLs, quotas and what it holds."""
    with connect(server, profile) as remote:
        found = remote.tenants.show(name)
    if as_json:
        print_json(found)
        return
    _show(found)


@app.command()
def update(
    name: NameArg,
    title: Title = None,
    quota: QuotaChanges = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Change a tenant's title or quotas (the quotas not named stay as they are)."""
    quotas = parse_quotas(quota, resets=True)
    if title is None and not quotas:
        fail("Nothing to change: give --title or --quota.")
    with connect(server, profile) as remote:
        changed = remote.tenants.update(name, title=title, quotas=quotas or None)
    if as_json:
        print_json(changed)
        return
    say(f"Updated tenant {changed['name']}: quotas {_quotas(changed)}.")


@app.command()
def disable(
    name: NameArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Disable a tenant: its URLs answer 404 and its scheduled jobs do not run (nothing is
    deleted; enable brings it back)."""
    with connect(server, profile) as remote:
        changed = remote.tenants.disable(name)
    if as_json:
        print_json(changed)
        return
    say(f"Disabled tenant {changed['name']}.")


@app.command()
def enable(
    name: NameArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Enable a disabled tenant again."""
    with connect(server, profile) as remote:
        changed = remote.tenants.enable(name)
    if as_json:
        print_json(changed)
        return
    say(f"Enabled tenant {changed['name']}.")


@app.command()
def delete(
    name: NameArg,
    yes: Yes = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Delete a tenant and everything it holds: systems, users, groups, technical users,
    certificates, jobs and logs (asks first, naming what goes, or --yes). The default
    tenant cannot be deleted."""
    with connect(server, profile) as remote:
        found = remote.tenants.show(name)
        running = found["usage"].get("jobsRunning", 0)
        also = f" ({running} job(s) running)" if running else ""
        confirm_or_yes(
            yes,
            f"Delete tenant {name} and everything it holds: {_holdings(found['usage'])}, "
            f"their certificates, jobs and logs{also}? This cannot be undone.",
        )
        deleted = remote.tenants.delete(name)
    if as_json:
        print_json(deleted)
        return
    say(f"Deleted tenant {name}: {deleted['total']} row(s).")


@app.command()
def export(
    name: NameArg, output: documents.Output = None, server: Server = None, profile: Profile = None
) -> None:
    """Export a tenant's configuration: systems (without credentials), transformations,
    links, schedules and custom schemas (the file of provisor config export)."""
    with connect(server, profile) as remote:
        document = remote.tenants.export(name)
    documents.write_document(document, output, f"the configuration of tenant {name}")


@app.command("import")
def import_(
    name: NameArg,
    file: documents.FileArg,
    prune: documents.Prune = False,
    yes: Yes = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Import a configuration file into a tenant: show the plan, ask (or --yes), then apply
    exactly that plan (refused when the tenant's configuration changed in between)."""
    document = documents.read_document(file)
    with connect(server, profile) as remote:
        documents.plan_then_apply(
            lambda: remote.tenants.plan(name, document, prune=prune),
            lambda fingerprint: remote.tenants.apply(
                name, document, prune=prune, expect=fingerprint
            ),
            yes=yes,
            as_json=as_json,
            where=f" to tenant {name}",
        )
