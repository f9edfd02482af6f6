"""``provisor audit``: the audit log through the admin API (list, export, verify), the
operator's with ``--operator`` or ``--tenant``; ``verify --local`` checks every tenant's
chain in the data folder's database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    Profile,
    Server,
    connect,
    fail,
    open_services,
    out,
    print_json,
    print_table,
    settings_from,
)
from provisor.context import ANY_TENANT, Context

app = typer.Typer(
    help="The audit log: who changed what, signed in or failed to; its hash chain checked.",
    no_args_is_help=True,
)

Since = Annotated[str | None, typer.Option(help="From this time (ISO 8601), inclusive.")]
Until = Annotated[str | None, typer.Option(help="Until this time (ISO 8601), exclusive.")]
Actor = Annotated[str | None, typer.Option(help="One actor's records (its name).")]
Action = Annotated[str | None, typer.Option(help="Actions starting with this, e.g. administrator.")]
Target = Annotated[str | None, typer.Option(help="Records of one target (e.g. a system id).")]
Operator = Annotated[
    bool, typer.Option("--operator", help="The installation's log (an operator's profile).")
]
TenantOption = Annotated[
    str | None, typer.Option(help="A tenant's log, read by an operator (implies --operator).")
]


def _detail(detail: Any) -> str:
    if isinstance(detail, dict):
        return ", ".join(f"{k}={v}" for k, v in detail.items())
    return str(detail)


@app.command("list")
def list_records(
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    before: Annotated[
        int | None, typer.Option(help="Records older than this id (the next page's cursor).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Records per page.")] = 50,
    operator: Operator = False,
    tenant: TenantOption = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Audit records, newest first."""
    filters = {"since": since, "until": until, "actor": actor, "action": action, "target": target}
    with connect(server, profile) as remote:
        page = remote.audit.list(
            before=before, limit=limit, operator=operator, tenant=tenant, **filters
        )
    if as_json:
        print_json(page)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "at", "actor", "address", "action", "target", "detail"):
        table.add_column(column, overflow="fold")
    for r in page["items"]:
        table.add_row(
            str(r["id"]),
            r["at"][:19],
            escape(f"{r['actorKind']}:{r['actor']}"),
            r["address"] or "-",
            escape(r["action"]),
            escape(r["target"]),
            escape(_detail(r["detail"])),
        )
    print_table(table)
    if page["next"] is not None:
        out.print(f"More: --before {page['next']}", highlight=False)


@app.command()
def export(
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    format: Annotated[str, typer.Option(help="jsonl (JSON lines) or csv.")] = "jsonl",
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most this many records (server's bound).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    operator: Operator = False,
    tenant: TenantOption = None,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Audit records oldest first, as JSON lines or CSV."""
    if format not in ("jsonl", "csv"):
        fail("--format is jsonl or csv.")
    filters = {"since": since, "until": until, "actor": actor, "action": action, "target": target}
    with connect(server, profile) as remote:
        chunks = remote.audit.export(
            format=format, limit=limit, operator=operator, tenant=tenant, **filters
        )
        if output is None:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            return
        with output.open("wb") as file:
            for chunk in chunks:
                file.write(chunk)


@app.command()
def verify(
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Check every tenant's chain in the data folder's database, not a server's.",
        ),
    ] = False,
    operator: Operator = False,
    tenant: TenantOption = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Check the audit log's hash chain; exit 1 naming the first broken record."""
    verdicts: list[dict[str, Any]]
    if local:
        with open_services(settings_from(data_dir, database_url)) as services:
            ctx = Context.system("cli", tenant=ANY_TENANT)
            verdicts = [v.to_json() for v in services.audit.verify_all(ctx)]
    else:
        if data_dir is not None or database_url is not None:
            fail("--data-dir and --database-url go with --local.")
        with connect(server, profile) as remote:
            verdicts = [dict(remote.audit.verify(operator=operator, tenant=tenant))]
    if as_json:
        print_json(verdicts)
    else:
        for v in verdicts:
            if v["ok"]:
                out.print(f"{v['tenant']}: {v['checked']} records, chain intact", highlight=False)
            else:
                where = f"record {v['brokenId']} (#{v['brokenSeq']})" if v["brokenId"] else "head"
                out.print(f"{v['tenant']}: BROKEN at {where}: {v['reason']}", highlight=False)
    if not all(v["ok"] for v in verdicts):
        raise typer.Exit(1)
