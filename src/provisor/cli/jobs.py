"""``provisor jobs``: start, watch, stop and inspect jobs on a server (its admin API); and
``provisor worker``, which runs them on this machine's database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    ConfigOption,
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
    out,
    print_json,
    print_table,
    settings_from,
    use_config,
)
from provisor.jobs.export import LogType
from provisor.jobs.model import JobStatus, JobType, Logged
from provisor.remote.jobs import EntityAction, Hold, Job, Jobs, Statistic

if TYPE_CHECKING:  # the server stack is imported by the commands that use it
    from provisor.settings import Settings

app = typer.Typer(help="Provisioning jobs: start, watch, stop, inspect.", no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(help="Job id.")]
SourceArg = Annotated[str, typer.Argument(help="Source system name or id.")]

COUNTS = ("read", "created", "updated", "deleted", "skipped", "failed")
POLL_SECONDS = 0.5  # how often --wait asks the server about the job
RUNNERS_SECONDS = 10.0  # how often --wait checks, while the job is queued, that a runner lives
HOW_TO_RUN = (
    "provisor serve runs jobs unless started with --no-jobs; otherwise start provisor worker "
    "(on the server's database)."
)
NO_RUNNER = "No job runner is running, so job {job} waits in the queue until one starts: " + (
    HOW_TO_RUN
)
NO_RUNNERS = "No job runner is running: queued jobs wait until one starts. " + HOW_TO_RUN


FINISHED = {s.value for s in JobStatus if s.finished}


class RetentionDays(StrEnum):
    SEVEN = "7"
    FOURTEEN = "14"
    THIRTY = "30"


def _table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A table of these columns (``right``: aligned right), printed whole by print_table."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left")
    return table


def _figures(row: Statistic) -> tuple[int, ...]:
    """A statistics row's figures, in the order of COUNTS."""
    return (
        row["read"],
        row["created"],
        row["updated"],
        row["deleted"],
        row["skipped"],
        row["failed"],
    )


def _totals(job: Job) -> dict[str, int]:
    sums = [sum(column) for column in zip(*map(_figures, job["statistics"]), strict=True)]
    return dict(zip(COUNTS, sums or [0] * len(COUNTS), strict=True))


def _show(job: Job) -> None:
    out.print(
        f"[bold]{job['type']}[/] job {job['id']} of {job['sourceSystemName']} "
        f"({job['sourceSystemId']})",
        highlight=False,
    )
    for label, value in (
        ("status", job["status"]),
        ("read mode", job["readMode"] or "-"),
        ("trigger", f"{job['triggerType']} by {job['triggeredBy']}"),
        ("started", job["startTime"] or "-"),
        ("ended", job["endTime"] or "-"),
        ("error", job["errorMessage"] or "-"),
        ("outcome", job["executionOutcome"] or "-"),
    ):
        out.print(f"  {label:<10} {value}", highlight=False)
    if job["statistics"]:
        table = _table("entity", "system", *COUNTS, right=COUNTS)
        for row in job["statistics"]:
            table.add_row(
                row["entityType"],
                f"{row['systemName']} ({row['role']})",
                *(f"{figure:,}" for figure in _figures(row)),
            )
        print_table(table)


def _warn_without_runner(jobs: Jobs, job: Job) -> bool:
    """Warn (standard error) when the job is queued and no runner would take it; whether
    it warned."""
    if job["status"] != JobStatus.QUEUED or jobs.runners():
        return False
    err.print(f"[bold yellow]Warning:[/] {NO_RUNNER.format(job=job['id'])}", highlight=False)
    return True


@app.command()
def start(
    source: SourceArg,
    type: Annotated[JobType, typer.Option("--type", help="How the job writes.")] = JobType.READ,
    trace: Annotated[
        bool,
        typer.Option("--trace/--no-trace", help="Log each entity's transformation trace."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait",
            help="Follow the job until it ends, with its progress; exit 1 unless Success. "
            "Ctrl-C asks the job to stop.",
        ),
    ] = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Start a job on a source system: queued, then run by the server's job runner (or a
    provisor worker); a second start while one runs waits its turn."""
    with connect(server, profile) as remote:
        job = remote.jobs.start(source, type=type.value, trace=trace)
        if not wait:
            if as_json:
                print_json(job)
            else:
                out.print(
                    f"{job['status']}: {job['type']} job {job['id']} of {job['sourceSystemName']}.",
                    highlight=False,
                )
            _warn_without_runner(remote.jobs, job)
            return
        final = _follow(remote.jobs, job, quiet=as_json)
    if as_json:
        print_json(final)
    else:
        _show(final)
    if final["status"] != JobStatus.SUCCESS:
        raise typer.Exit(1)


def _bar(quiet: bool) -> Progress:
    """A progress bar pulsing while the job reads (its total is unknown until the end)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=quiet,
    )


def _advance(bar: Progress, task: TaskID, job: Job) -> None:
    counts = " · ".join(f"{key} {value:,}" for key, value in _totals(job).items())
    bar.update(task, description=job["status"], counts=counts)


def _follow(jobs: Jobs, job: Job, *, quiet: bool) -> Job:
    """Poll the job until it ends, showing its progress (and the job that continues it when
    its runner died); warn when it waits for a runner that does not exist. Ctrl-C asks it
    to stop."""
    current = job
    warned = _warn_without_runner(jobs, current)
    checked = time.monotonic()
    try:
        with _bar(quiet) as bar:
            task = bar.add_task(current["status"], total=None, counts="")
            while current["status"] not in FINISHED:
                time.sleep(POLL_SECONDS)
                current = jobs.get(current["id"])
                if current["status"] == JobStatus.PENDING_RESTART:
                    current = _successor(jobs, current)
                _advance(bar, task, current)
                if not warned and time.monotonic() - checked > RUNNERS_SECONDS:
                    warned, checked = _warn_without_runner(jobs, current), time.monotonic()
    except KeyboardInterrupt:
        jobs.stop(current["id"])
        fail(f"Asked job {current['id']} to stop.")
    return current


def _successor(jobs: Jobs, job: Job) -> Job:
    """The job that continues one whose runner died (the same job until it is created)."""
    newest = jobs.all(source=job["sourceSystemId"], limit=5)["items"]
    found = next((j for j in newest if j["resumedFrom"] == job["id"]), None)
    if found is None:
        return job
    err.print(f"Job {job['id']} lost its runner: job {found['id']} continues it.")
    return jobs.get(found["id"])


@app.command()
def validate(
    source: SourceArg,
    users: Annotated[
        Path | None, typer.Option(help="Sample users: a CSV (header: attribute paths) or JSON.")
    ] = None,
    groups: Annotated[Path | None, typer.Option(help="Sample groups: CSV or JSON.")] = None,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Run sample entities through the read and write transformations; nothing is written.
    Prints, per entity and target, what would be sent, with the trace (JSON)."""
    if users is None and groups is None:
        fail("Give --users FILE, --groups FILE or both.")
    samples: dict[str, Any] = {}
    for key, file in (("users", users), ("groups", groups)):
        if file is not None:
            samples[key] = _sample(file, key)
    with connect(server, profile) as remote:
        print_json(remote.jobs.validate(source, samples))


def _sample(file: Path, option: str) -> Any:
    """A sample file's entities: JSON as they are, CSV as its text (the server parses it)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        fail(f"Cannot read --{option} {file}: {exc.strerror or exc}")
    if file.suffix.lower() != ".json":
        return text
    try:
        return json.loads(text) if text.strip() else []
    except json.JSONDecodeError as exc:
        fail(f"--{option} {file} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).")


@app.command("list")
def list_jobs(
    source: Annotated[str | None, typer.Option(help="Only this source's (name or id).")] = None,
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")] = None,
    type: Annotated[JobType | None, typer.Option("--type", help="Only jobs of this type.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """List jobs, newest first."""
    with connect(server, profile) as remote:
        page = remote.jobs.all(
            source=source,
            status=status.value if status else None,
            type=type.value if type else None,
            limit=limit,
        )
    if as_json:
        print_json(page)
        return
    table = _table("id", "source", "type", "status", "started", "ended")
    for job in page["items"]:
        table.add_row(
            job["id"],
            job["sourceSystemName"],
            job["type"],
            job["status"],
            (job["startTime"] or "")[:19],
            (job["endTime"] or "")[:19],
        )
    print_table(table)
    out.print(f"{len(page['items'])} of {page['total']} jobs.", highlight=False)


@app.command()
def show(
    job: JobArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """A job with its statistics and outcome."""
    with connect(server, profile) as remote:
        found = remote.jobs.get(job)
    if as_json:
        print_json(found)
    else:
        _show(found)


@app.command()
def stop(job: JobArg, server: Server = None, profile: Profile = None) -> None:
    """Stop a job at its next safe point (a queued one never starts)."""
    with connect(server, profile) as remote:
        found = remote.jobs.stop(job)
    out.print(f"Job {found['id']}: {found['status']}, stop requested.", highlight=False)


@app.command()
def logs(
    job: JobArg,
    action: Annotated[
        list[Logged] | None, typer.Option(help="Only entities with this action (repeat).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="How many entries.")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many entries first.")] = 0,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """The entities a job failed, skipped, created, updated or deleted, with their names and
    ids; their content only when the source's ips.trace.*.entity.content properties ask."""
    actions = cast(list[EntityAction], [a.value for a in action]) if action else None
    with connect(server, profile) as remote:
        page = remote.jobs.entities(job, actions=actions, offset=offset, limit=limit)
    if as_json:
        print_json(page)
        return
    table = _table("action", "entity", "name", "id", "system", "id in target", "reason")
    for row in page["items"]:
        table.add_row(
            row["action"],
            row["entityType"],
            row["name"] or "",
            row["entityId"],
            row["systemName"],
            row["targetEntityId"] or "",
            _text(row["reason"]),
        )
    print_table(table)
    shown, total = len(page["items"]), page["total"]
    entries = f"{total} entr{'y' if total == 1 else 'ies'}"
    if shown < total:
        entries = f"{offset + 1} to {offset + shown} of {entries} (--offset, --limit for more)"
    out.print(f"{entries}.", highlight=False)


def _text(value: Any) -> str:
    """A log field as one line of text (a simulation's reason is a JSON diff)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _holds_table(holds: list[Hold]) -> Table:
    table = _table("entity", "target", "held back", "why", "job", "confirmed", right=("held back",))
    for hold in holds:
        why = "empty read" if hold["reason"] == "empty" else f"threshold {hold['threshold']}"
        confirmed = (
            f"by {hold['confirmedBy']} on {hold['confirmed']}" if hold["confirmed"] else "no"
        )
        table.add_row(
            hold["entityType"],
            hold["targetSystemName"],
            f"{hold['heldBack']:,}",
            why,
            hold["jobId"],
            confirmed,
        )
    return table


@app.command()
def holds(
    source: SourceArg, as_json: AsJSON = False, server: Server = None, profile: Profile = None
) -> None:
    """Deletions an empty or shrunken full read held back, per target and entity type."""
    with connect(server, profile) as remote:
        found = remote.jobs.holds(source)
    if as_json:
        print_json({"items": found})
    elif not found:
        out.print("No deletions are held back.")
    else:
        print_table(_holds_table(found))


class EntityTypeName(StrEnum):
    USER = "user"
    GROUP = "group"


@app.command("confirm-deletions")
def confirm_deletions(
    source: SourceArg,
    entity_type: Annotated[
        EntityTypeName | None, typer.Option("--entity-type", help="Only users or groups.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only those in this target (name or id).")
    ] = None,
    yes: Yes = False,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Let the next run delete what was held back (at most as many, once). Asks first;
    --yes does not."""
    with connect(server, profile) as remote:
        held = [
            h
            for h in remote.jobs.holds(source)
            if (entity_type is None or h["entityType"] == entity_type.value)
            and (target is None or target in (h["targetSystemName"], h["targetSystemId"]))
        ]
        if held:
            print_table(_holds_table(held))
            confirm_or_yes(yes, "Let the next full read of the source delete these?")
        confirmed = remote.jobs.confirm_deletions(
            source, entity_type=entity_type.value if entity_type else None, target=target
        )
    if as_json:
        print_json({"confirmed": confirmed})
        return
    out.print("The next full read deletes them, unless it finds more to delete.")


@app.command()
def export(
    job: JobArg,
    log_type: Annotated[LogType, typer.Option("--log-type", help="Which logs.")] = LogType.COMMON,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Zip file to write. Default: SAP's file name, here."),
    ] = None,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Export a job's logs as a zip, as SAP's tenant admin API does."""
    with connect(server, profile) as remote:
        found = remote.jobs.export(job, log_type.value)
    target = output if output is not None else Path(found["filename"])
    try:
        target.write_bytes(found["data"])
    except OSError as exc:
        fail(f"Cannot write {target}: {exc.strerror or exc}")
    out.print(f"Wrote {target} ({len(found['data']):,} bytes).", highlight=False)


@app.command()
def runners(as_json: AsJSON = False, server: Server = None, profile: Profile = None) -> None:
    """The processes running jobs now (servers with jobs, provisor workers)."""
    with connect(server, profile) as remote:
        found = remote.jobs.runners()
    if as_json:
        print_json({"items": found})
        return
    if not found:
        out.print(NO_RUNNERS, highlight=False)
        return
    table = _table("runner", "started", "last heartbeat")
    for runner in found:
        table.add_row(runner["name"], runner["started"][:19], runner["heartbeat"][:19])
    print_table(table)


@app.command()
def settings(
    retention_days: Annotated[
        RetentionDays | None,
        typer.Option("--retention-days", help="Keep the logs of finished jobs this many days."),
    ] = None,
    as_json: AsJSON = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """How long the logs of finished jobs are kept; --retention-days changes it."""
    with connect(server, profile) as remote:
        if retention_days is None:
            days = remote.jobs.retention_days()
        else:
            days = remote.jobs.set_retention_days(int(retention_days.value))
    if as_json:
        print_json({"logRetentionDays": days})
    else:
        out.print(f"Job logs are kept {days} days.")


@app.command()
def purge(yes: Yes = False, server: Server = None, profile: Profile = None) -> None:
    """Delete the logs of every finished job now (older ones go by themselves after the
    retention). Asks first; --yes does not."""
    confirm_or_yes(yes, "Delete every finished job with its logs?")
    with connect(server, profile) as remote:
        deleted = remote.jobs.delete_logs()
    out.print(f"Deleted {deleted} job{'' if deleted == 1 else 's'} with their logs.")


@app.command()
def reset(
    system: Annotated[str, typer.Argument(help="Source or target system name or id.")],
    yes: Yes = False,
    server: Server = None,
    profile: Profile = None,
) -> None:
    """Forget what provisor knows of a system's entities (operational data): the next job
    compares everything anew. Asks first; --yes does not."""
    confirm_or_yes(yes, f"Forget the operational data of {system}?")
    with connect(server, profile) as remote:
        removed = remote.jobs.reset_system(system)
    out.print(f"Removed {removed} record{'' if removed == 1 else 's'} of {system}.")


@app.command("reset-tenant")
def reset_tenant(yes: Yes = False, server: Server = None, profile: Profile = None) -> None:
    """Delete every system with its transformations, schedules, jobs and logs (technical
    users stay). Asks first; --yes does not."""
    confirm_or_yes(yes, "Delete every system, transformation, schedule, job and log?")
    with connect(server, profile) as remote:
        deleted = remote.jobs.reset_tenant()
    out.print(f"Deleted {deleted} system{'' if deleted == 1 else 's'} and their jobs and logs.")


def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once (one per source).")] = 4,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
    config: ConfigOption = None,
) -> None:
    """Run queued and scheduled jobs until stopped (SIGTERM/Ctrl-C). On PostgreSQL, start
    as many as you like, on any hosts: they share the work through procrastinate."""
    import structlog

    from provisor.runtime import run_jobs, yield_to_requests

    use_config(config)
    settings = settings_from(data_dir, database_url)
    with open_services(settings, long_running=True) as services, _metrics_listener(settings):
        yield_to_requests(settings)  # servers on the same host go first

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run_jobs(services, stop, concurrency=concurrency)

        structlog.get_logger("provisor.worker").info("running jobs", concurrency=concurrency)
        asyncio.run(main())


@contextlib.contextmanager
def _metrics_listener(settings: Settings) -> Iterator[None]:
    """The worker's metrics in plain HTTP on PROVISOR_METRICS_PORT, if set."""
    if settings.metrics_port is None or not settings.metrics:
        yield
        return
    from provisor.metrics.processes import listen

    try:
        stop = listen(settings.metrics_address, settings.metrics_port)
    except OSError as exc:
        fail(
            f"Cannot serve metrics on {settings.metrics_address}:{settings.metrics_port}: "
            f"{exc.strerror or exc}"
        )
    err.print(
        f"provisor worker: metrics on http://{settings.metrics_address}:{settings.metrics_port}/"
    )
    try:
        yield
    finally:
        stop()
