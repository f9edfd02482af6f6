"""``provisor schedules``: when the READ jobs of source systems start on their own, through
the admin API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    Profile,
    Server,
    Yes,
    confirm_or_yes,
    connect,
    out,
    print_json,
    print_table,
)
from provisor.remote.schedules import ScheduleInfo

app = typer.Typer(
    help="Schedules of source systems: READ jobs every N minutes or on days of the week.",
    no_args_is_help=True,
)

SourceArg = Annotated[str, typer.Argument(help="Source system id or name.")]


def _when(found: ScheduleInfo) -> str:
    if "intervalMinutes" in found:
        return f"every {found['intervalMinutes']} minutes"
    days = ",".join(found.get("daysOfWeek", []))
    return f"{days} at {found.get('time')} ({found.get('timeZone')})"


def _show(found: ScheduleInfo, as_json: bool) -> None:
    if as_json:
        print_json(found)
        return
    state = "on" if found["enabled"] else "off"
    out.print(f"[bold]{found['systemName']}[/] ({found['systemId']})", highlight=False)
    out.print(f"  {_when(found)}, {state}", highlight=False)
    out.print(f"  next run  {found['nextRun'] or '-'}", highlight=False)
    out.print(f"  last run  {found['lastRun'] or '-'}", highlight=False)


@app.command("list")
def list_schedules(as_json: AsJSON = False, server: Server = None, profile: Profile = None) -> None:
    """Every source's schedule."""
    with connect(server, profile) as remote:
        found = remote.schedules.list()
    if as_json:
        print_json(found)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("source", overflow="fold")
    table.add_column("source id", no_wrap=True, overflow="fold")
    for column in ("when", "on", "next run", "last run"):
        table.add_column(column)
    for f in found["items"]:
        table.add_row(
            f["systemName"],
            f["systemId"],
            _when(f),
            "yes" if f["enabled"] else "no",
            f["nextRun"] or "-",
            f["lastRun"] or "-",
        )
    print_table(table)


@app.command()
def show(
    source: SourceArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """A source's schedule with its next and last run."""
    with connect(server, profile) as remote:
        found = remote.schedules.show(source)
    _show(found, as_json)


@app.command("set")
def set_schedule(
    source: SourceArg,
    every: Annotated[
        int | None, typer.Option("--every", help="Minutes between runs (more than 30).")
    ] = None,
    days: Annotated[
        str | None, typer.Option("--days", help="Days of the week, e.g. MON,FRI.")
    ] = None,
    at: Annotated[str | None, typer.Option("--at", help="Local time HH:MM.")] = None,
    time_zone: Annotated[
        str | None, typer.Option("--time-zone", help="IANA time zone. Default: UTC.")
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Run a source's READ jobs --every N minutes, or on --days at a time (--at)."""
    given: dict[str, Any] = {
        "intervalMinutes": every,
        "daysOfWeek": days.split(",") if days is not None else None,
        "time": at,
        "timeZone": time_zone,
    }
    data = {"enabled": True, **{k: v for k, v in given.items() if v is not None}}
    with connect(server, profile) as remote:
        found = remote.schedules.put(source, data)
    _show(found, as_json)


@app.command()
def off(
    source: SourceArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Turn a schedule off and keep it (a running job goes on)."""
    with connect(server, profile) as remote:
        found = remote.schedules.disable(source)
    _show(found, as_json)


@app.command()
def delete(
    source: SourceArg, yes: Yes = False, server: Server = None, profile: Profile = None
) -> None:
    """Delete a source's schedule (asks first, or --yes); `off` keeps it."""
    with connect(server, profile) as remote:
        found = remote.schedules.show(source)
        confirm_or_yes(yes, f"Delete the schedule of {found['systemName']} ({_when(found)})?")
        remote.schedules.delete(found["systemId"])
    out.print(f"Deleted the schedule of {found['systemName']}.", highlight=False)
