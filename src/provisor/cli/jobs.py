"""``provisor jobs`` and ``provisor worker``: start, watch, stop and inspect jobs; run them."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from provisor.cli.common import (
    AsJSON,
    DatabaseURL,
    DataDir,
    err,
    fail,
    open_services,
    operator_context,
    out,
    print_json,
    settings_from,
)
from provisor.context import Context
from provisor.jobs import present
from provisor.jobs.model import Job, JobStatus, JobType
from provisor.jobs.ports import Hold

if TYPE_CHECKING:
    from provisor.runtime import Services

app = typer.Typer(help="Provisioning jobs: start, watch, stop, inspect.", no_args_is_help=True)

JobArg = Annotated[str, typer.Argument(help="Job id.")]


def _totals(job: Job) -> dict[str, int]:
    totals = {"read": 0, "skipped": 0, "failed": 0, "created": 0, "updated": 0, "deleted": 0}
    for row in job.statistics:
        for key in totals:
            totals[key] += getattr(row.counts, key)
    return totals


def _show(job: Job) -> None:
    out.print(f"[bold]{job.type.value}[/] job {job.id} of {job.source_name}", highlight=False)
    for label, value in (
        ("status", job.status.value),
        ("read mode", job.read_mode.value if job.read_mode else "-"),
        ("trigger", f"{job.trigger.value} by {job.triggered_by}"),
        ("started", job.started or "-"),
        ("ended", job.ended or "-"),
        ("error", job.error or "-"),
        ("outcome", job.outcome or "-"),
    ):
        out.print(f"  {label:<10} {value}", highlight=False)
    if job.statistics:
        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in (
            "entity",
            "system",
            "read",
            "created",
            "updated",
            "deleted",
            "skipped",
            "failed",
        ):
            table.add_column(column, justify="left" if column in ("entity", "system") else "right")
        for row in job.statistics:
            table.add_row(
                row.entity_type,
                f"{row.system_name} ({row.role})",
                *(
                    str(getattr(row.counts, k))
                    for k in ("read", "created", "updated", "deleted", "skipped", "failed")
                ),
            )
        out.print(table)


@app.command()
def start(
    source: Annotated[str, typer.Argument(help="Source system id or name.")],
    type: Annotated[JobType, typer.Option("--type", help="READ, RESYNC or SIMULATE.")] = (
        JobType.READ
    ),
    trace: Annotated[bool, typer.Option(help="Keep each entity's transformation trace.")] = False,
    wait: Annotated[
        bool, typer.Option(help="Run or follow the job until it ends, with its progress.")
    ] = False,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Start a job (queued behind a running one). With --wait it runs here when it can."""
    ctx = operator_context()
    with open_services(settings_from(data_dir, database_url)) as services:
        job = services.jobs.start(
            ctx, source, type=type, options={"trace": True} if trace else None
        )
        if not wait:
            if as_json:
                print_json(present.job(job))
            else:
                out.print(f"Started {type.value} job {job.id} of {job.source_name}.")
            return
        final = _follow(services, ctx, job, quiet=as_json)
    if as_json:
        print_json(present.job(final))
    else:
        _show(final)
    if final.status is not JobStatus.SUCCESS:
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
    t = _totals(job)
    counts = (
        f"read {t['read']:,} · created {t['created']:,} · updated {t['updated']:,} · "
        f"deleted {t['deleted']:,} · skipped {t['skipped']:,} · failed {t['failed']:,}"
    )
    bar.update(task, description=job.status.value, counts=counts)


def _follow(services: Services, ctx: Context, job: Job, *, quiet: bool) -> Job:
    """Run the job in this process if no worker took it, showing progress; its final state."""
    claimed = services.jobs.claim(ctx, f"cli:{job.id[:8]}", job.id)

    async def run_here(claimed: Job) -> None:
        run = asyncio.create_task(services.jobs.run(ctx, claimed))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: services.jobs.stop(ctx, job.id))
        with _bar(quiet) as bar:
            task = bar.add_task(job.status.value, total=None, counts="")
            while not run.done():
                await asyncio.wait({run}, timeout=0.5)
                _advance(bar, task, await asyncio.to_thread(services.jobs.get, ctx, job.id))
        await run

    if claimed is not None:
        asyncio.run(run_here(claimed))
        return services.jobs.get(ctx, job.id)
    current = services.jobs.get(ctx, job.id)
    try:
        with _bar(quiet) as bar:
            task = bar.add_task(current.status.value, total=None, counts="")
            while not current.status.finished:
                time.sleep(0.5)
                current = services.jobs.get(ctx, job.id)
                _advance(bar, task, current)
    except KeyboardInterrupt:
        services.jobs.stop(ctx, job.id)
        fail(f"Asked job {job.id} to stop.")
    return current


@app.command()
def validate(
    source: Annotated[str, typer.Argument(help="Source system id or name.")],
    users: Annotated[
        Path | None, typer.Option(help="Sample users: a CSV (header: attribute paths) or JSON.")
    ] = None,
    groups: Annotated[Path | None, typer.Option(help="Sample groups: CSV or JSON.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Run sample entities through the read and write transformations; nothing is written.
    Prints, per entity and target, what would be sent, with the trace (JSON)."""
    from provisor.jobs.validate import parse_csv, samples_from_json

    if users is None and groups is None:
        fail("Give --users FILE, --groups FILE or both.")
    samples: dict[str, Any] = {}
    for entity_type, path in (("user", users), ("group", groups)):
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8-sig")
        except OSError as exc:
            fail(f"Cannot read {path}: {exc.strerror or exc}")
        if path.suffix.lower() == ".json":
            key = f"{entity_type}s"
            samples.update(samples_from_json(f'{{"{key}": {text}}}' if text.strip() else "{}"))
        else:
            samples[entity_type] = parse_csv(text, entity_type)
    with open_services(settings_from(data_dir, database_url)) as services:
        result = services.jobs.validate(operator_context(), source, samples)
    print_json(result)


@app.command("list")
def list_jobs(
    source: Annotated[str | None, typer.Option(help="Source system id or name.")] = None,
    status: Annotated[str | None, typer.Option(help="e.g. Running, Success.")] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """List jobs, newest first."""
    wanted = _status(status)
    with open_services(settings_from(data_dir, database_url)) as services:
        found, total = services.jobs.all(
            operator_context(), source=source, status=wanted, limit=limit
        )
    if as_json:
        print_json(present.jobs(found, total))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "source", "type", "status", "started", "ended"):
        table.add_column(column, no_wrap=column == "id")
    for job in found:
        table.add_row(
            job.id,
            job.source_name,
            job.type.value,
            job.status.value,
            (job.started or "")[:19],
            (job.ended or "")[:19],
        )
    out.print(table)


def _status(name: str | None) -> JobStatus | None:
    if name is None:
        return None
    try:
        return JobStatus(name)
    except ValueError:
        fail(f"Unknown status {name!r}: use {', '.join(s.value for s in JobStatus)}.")


@app.command()
def show(
    job: JobArg, as_json: AsJSON = False, data_dir: DataDir = None, database_url: DatabaseURL = None
) -> None:
    """A job with its statistics and outcome."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.jobs.get(operator_context(), job)
    if as_json:
        print_json(present.job(found))
    else:
        _show(found)


@app.command()
def stop(job: JobArg, data_dir: DataDir = None, database_url: DatabaseURL = None) -> None:
    """Stop a job at its next safe point."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.jobs.stop(operator_context(), job)
    out.print(f"Job {found.id}: {found.status.value}, stop requested.")


@app.command()
def logs(
    job: JobArg,
    action: Annotated[
        list[str] | None,
        typer.Option(help="failed, skipped, created, updated or deleted (repeat)."),
    ] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """The entities a job failed, skipped, created, updated or deleted."""
    with open_services(settings_from(data_dir, database_url)) as services:
        rows, total = services.jobs.entity_logs(operator_context(), job, action)
    if as_json:
        print_json(present.entity_logs(rows, total))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("action", "entity", "system", "id", "reason"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.action.value,
            row.entity_type,
            row.system_name,
            row.entity_id,
            row.reason or "",
        )
    out.print(table)
    out.print(f"{total} entr{'y' if total == 1 else 'ies'}.")


def _holds_table(holds: list[Hold]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("entity", "target", "held back", "why", "job", "confirmed"):
        table.add_column(column, justify="right" if column == "held back" else "left")
    for hold in holds:
        why = "empty read" if hold.reason == Hold.EMPTY else f"threshold {hold.threshold}"
        confirmed = f"by {hold.confirmed_by} on {hold.confirmed}" if hold.confirmed else "no"
        table.add_row(
            hold.entity_type,
            hold.target_name,
            f"{hold.count:,}",
            why,
            hold.job_id,
            confirmed,
        )
    return table


@app.command()
def holds(
    source: Annotated[str, typer.Argument(help="Source system id or name.")],
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Deletions an empty or shrunken full read held back, per target and entity type."""
    with open_services(settings_from(data_dir, database_url)) as services:
        found = services.jobs.deletion_holds(operator_context(), source)
    if as_json:
        print_json(present.holds(found))
    elif not found:
        out.print("No deletions are held back.")
    else:
        out.print(_holds_table(found))


@app.command("confirm-deletions")
def confirm_deletions(
    source: Annotated[str, typer.Argument(help="Source system id or name.")],
    entity_type: Annotated[
        str | None, typer.Option("--entity-type", help="Only users or groups: user, group.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only those in this target (id or name).")
    ] = None,
    as_json: AsJSON = False,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Let the next run delete what was held back (at most as many, once)."""
    with open_services(settings_from(data_dir, database_url)) as services:
        confirmed = services.jobs.confirm_deletions(
            operator_context(), source, entity_type=entity_type, target=target
        )
    if as_json:
        print_json(present.confirmed(confirmed))
        return
    out.print(_holds_table(confirmed))
    out.print("The next full read deletes them, unless it finds more to delete.")


def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at once (one per source).")] = 4,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Run queued and scheduled jobs until stopped (SIGTERM/Ctrl-C). On PostgreSQL, start
    as many as you like, on any hosts: they share the work through procrastinate."""
    from provisor import logs
    from provisor.runtime import run_jobs

    settings = settings_from(data_dir, database_url)
    with open_services(settings) as services:
        logs.configure(settings.log_level)  # a long-running process: its log, as a server's

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await run_jobs(services, stop, concurrency=concurrency)

        err.print(f"provisor worker: running jobs ({concurrency} at once).")
        asyncio.run(main())


@app.command()
def export(
    job: JobArg,
    log_type: Annotated[
        str,
        typer.Option(
            "--log-type",
            help="commonLog, failedEntitiesLog, skippedEntitiesLog, createdEntitiesLog, "
            "updatedEntitiesLog, deletedEntitiesLog or allErrorsLog.",
        ),
    ] = "commonLog",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Zip file to write. Default: SAP's file name, here."),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseURL = None,
) -> None:
    """Export a job's logs as a zip, as SAP's tenant admin API does."""
    with open_services(settings_from(data_dir, database_url)) as services:
        name, data = services.jobs.export(operator_context(), job, log_type)
    target = output if output is not None else Path(name)
    try:
        target.write_bytes(data)
    except OSError as exc:
        fail(f"Cannot write {target}: {exc.strerror or exc}")
    out.print(f"Wrote {target} ({len(data):,} bytes).", highlight=False)
