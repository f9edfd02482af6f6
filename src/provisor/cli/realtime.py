"""``provisor realtime``: the real-time provisioning logs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    fail,
    open_services,
    operator_context,
    out,
    print_json,
    settings_from,
)
from provisor.realtime.model import RealtimeLog

app = typer.Typer(help="Real-time provisioning logs.", no_args_is_help=True)


@app.command()
def logs(
    source: Annotated[str | None, typer.Option(help="Source system id or name.")] = None,
    entity_id: Annotated[str | None, typer.Option("--entity-id", help="The source's id.")] = None,
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="user or group.")] = None,
    status: Annotated[
        str | None,
        typer.Option(help='"Finished Successfully" or "Finished with Error".'),
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Real-time provisioning calls, newest first."""
    from provisor.storage.realtime import RealtimeLogStore

    with open_services(settings_from(data_dir, database_url)) as services:
        source_id = services.systems.get(operator_context(), source).id if source else None
        found, total = RealtimeLogStore(services.db).search(
            source_id=source_id,
            entity_id=entity_id,
            entity_type=entity_type,
            status=status,
            limit=limit,
        )
    if as_json:
        print_json({"items": [f.to_dict() for f in found], "total": total})
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "source", "entity", "type", "operation", "status", "started"):
        table.add_column(column)
    for f in found:
        table.add_row(
            f.id, f.source_name, f.entity_id or "-", f.entity_type, f.operation, f.status, f.started
        )
    out.print(table)
    out.print(f"{total} entr{'y' if total == 1 else 'ies'}.")


@app.command()
def show(
    log_id: Annotated[str, typer.Argument(help="Log id.")],
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """One real-time call: what happened in each system."""
    from provisor.storage.realtime import RealtimeLogStore

    with open_services(settings_from(data_dir, database_url)) as services:
        found = RealtimeLogStore(services.db).get(log_id)
    if found is None:
        fail(f"No real-time log {log_id!r}.")
    if as_json:
        print_json(found.to_dict())
        return
    _show(found)


def _show(log: RealtimeLog) -> None:
    out.print(f"[bold]{log.operation}[/] {log.entity_type} {log.entity_id or '-'}", highlight=False)
    for label, value in (
        ("source", log.source_name),
        ("status", log.status),
        ("started", log.started),
        ("took", f"{log.duration_ms} ms"),
        ("by", log.caller),
        ("error", log.error or "-"),
    ):
        out.print(f"  {label:<8} {value}", highlight=False)
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("system", "role", "operation", "state", "reason"):
        table.add_column(column)
    for s in log.systems:
        table.add_row(s.system_name, s.role, s.operation, s.state, s.reason or "")
    out.print(table)
