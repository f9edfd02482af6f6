"""``provisor realtime``: the real-time provisioning logs, through the admin API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from provisor.cli.common import AsJSON, Profile, Server, connect, out, print_json, print_table
from provisor.remote.realtime import RealtimeLog

app = typer.Typer(help="Real-time provisioning logs.", no_args_is_help=True)


class StatusChoice(StrEnum):
    """SAP's statuses of a real-time call, and short words for them."""

    SUCCESS = "success"
    ERROR = "error"
    FINISHED_SUCCESSFULLY = "Finished Successfully"
    FINISHED_WITH_ERROR = "Finished with Error"

    @property
    def status(self) -> str:
        """SAP's spelling, which the API takes."""
        short = {"success": "Finished Successfully", "error": "Finished with Error"}
        return short.get(self.value, self.value)


class EntityKind(StrEnum):
    USER = "user"
    GROUP = "group"


@app.command()
def logs(
    source: Annotated[str | None, typer.Option(help="Source system id or name.")] = None,
    entity_id: Annotated[str | None, typer.Option("--entity-id", help="The source's id.")] = None,
    entity_type: Annotated[
        EntityKind | None, typer.Option("--entity-type", help="Users or groups only.")
    ] = None,
    status: Annotated[
        StatusChoice | None,
        typer.Option(
            case_sensitive=False,
            help='success ("Finished Successfully") or error ("Finished with Error").',
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    offset: Annotated[int, typer.Option(min=0, help="How many to skip.")] = 0,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Real-time provisioning calls, newest first."""
    with connect(server, profile) as remote:
        page = remote.realtime.logs(
            source=source,
            entity_id=entity_id,
            entity_type=entity_type.value if entity_type else None,
            status=status.status if status else None,
            offset=offset,
            limit=limit,
        )
    if as_json:
        print_json(page)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("id", no_wrap=True, overflow="fold")
    table.add_column("source", overflow="fold")
    table.add_column("entity", overflow="fold")
    for column in ("type", "operation", "status", "started"):
        table.add_column(column)
    for f in page["items"]:
        table.add_row(
            f["id"],
            f["sourceSystemName"],
            f["entityId"] or "-",
            f["entityType"],
            f["operation"],
            f["status"],
            f["startTime"],
        )
    print_table(table)
    total = page["total"]
    shown = f"{offset + 1}-{offset + len(page['items'])} of " if len(page["items"]) < total else ""
    out.print(f"{shown}{total} entr{'y' if total == 1 else 'ies'}.", highlight=False)


@app.command()
def show(
    log_id: Annotated[str, typer.Argument(help="Log id.")],
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """One real-time call: what happened in each system."""
    with connect(server, profile) as remote:
        found = remote.realtime.log(log_id)
    if as_json:
        print_json(found)
        return
    _show(found)


def _show(log: RealtimeLog) -> None:
    out.print(
        f"[bold]{log['operation']}[/] {log['entityType']} {log['entityId'] or '-'}",
        highlight=False,
    )
    for label, value in (
        ("source", f"{log['sourceSystemName']} ({log['sourceSystemId']})"),
        ("status", log["status"]),
        ("started", log["startTime"]),
        ("took", f"{log['durationMs']} ms"),
        ("by", log["triggeredBy"]),
        ("error", log["errorMessage"] or "-"),
    ):
        out.print(f"  {label:<8} {value}", highlight=False)
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("system", overflow="fold")
    for column in ("role", "operation", "state", "reason"):
        table.add_column(column, overflow="fold")
    for s in log["systems"]:
        table.add_row(s["systemName"], s["role"], s["operation"], s["state"], s["reason"] or "")
    print_table(table)
