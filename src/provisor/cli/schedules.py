"""``provisor schedules``: when the READ jobs of source systems start on their own."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    open_services,
    operator_context,
    out,
    print_json,
    settings_from,
)
from provisor.jobs import present
from provisor.jobs.schedule import Interval, SourceSchedule

app = typer.Typer(
    help="Schedules of source systems: READ jobs every N minutes or on days of the week.",
    no_args_is_help=True,
)

SourceArg = Annotated[str, typer.Argument(help="Source system id or name.")]


def _when(found: SourceSchedule) -> str:
    rule = found.schedule.rule
    if isinstance(rule, Interval):
        return f"every {rule.minutes} minutes"
    spec = rule.to_dict()
    return f"{','.join(spec['daysOfWeek'])} at {spec['time']} ({spec['timeZone']})"


def _show(found: SourceSchedule, as_json: bool) -> None:
    if as_json:
        print_json(present.schedule(found))
        return
    state = "on" if found.schedule.enabled else "off"
    out.print(f"{_when(found)}, {state}", highlight=False)
    out.print(f"  next run  {found.next_run or '-'}", highlight=False)
    out.print(f"  last run  {found.last_run or '-'}", highlight=False)


@app.command("list")
def list_schedules(
    as_json: AsJSON = False, data_dir: DataDir = None, database_url: DatabaseURL = None
) -> None:
    """Every source's schedule."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.schedules.all(operator_context())
        names = {s.id: s.name for s in services.systems.all(operator_context())[0]}
    if as_json:
        print_json(present.schedules(found))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("source", "when", "on", "next run", "last run"):
        table.add_column(column)
    for f in found:
        table.add_row(
            names.get(f.source_id, f.source_id),
            _when(f),
            "yes" if f.schedule.enabled else "no",
            f.next_run or "-",
            f.last_run or "-",
        )
    out.print(table)


@app.command()
def show(
    source: SourceArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """A source's schedule with its next and last run."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.schedules.get(operator_context(), source)
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
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Run a source's READ jobs --every N minutes, or on --days at a time (--at)."""
    given = {
        "intervalMinutes": every,
        "daysOfWeek": days.split(",") if days is not None else None,
        "time": at,
        "timeZone": time_zone,
    }
    data = {"enabled": True, **{k: v for k, v in given.items() if v is not None}}
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.schedules.put(operator_context(), source, data)
    _show(found, as_json)


@app.command()
def off(
    source: SourceArg,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Turn a schedule off and keep it (a running job goes on)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.schedules.disable(operator_context(), source)
    _show(found, as_json)


@app.command()
def delete(source: SourceArg, data_dir: DataDir = None, database_url: DatabaseURL = None) -> None:
    """Delete a source's schedule."""
    with open_services(settings_from(data_dir, database_url)) as services:
        services.schedules.delete(operator_context(), source)
    out.print(f"Deleted the schedule of {source}.", highlight=False)
