"""The jobs pages: history (filtered, paged), starting a job, a job's live progress, its
statistics and entity logs (with a simulation's diff), stopping it, exporting its logs, and
confirming the deletions a source's runs hold back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import orjson
from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.rendering import (
    ROOT,
    ConsoleContext,
    ConsoleRoute,
    redirect,
    render,
    services,
)
from provisor.context import Context
from provisor.errors import ConflictError, InputError
from provisor.jobs import present
from provisor.jobs.export import LogType
from provisor.jobs.model import Job, JobStatus, JobType, Logged, Statistic, Trigger
from provisor.jobs.ports import Hold
from provisor.systems.model import System
from provisor.timestamps import now, parse_datetime

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

PAGE = 25  # jobs per page
ENTITIES = 50  # entity logs per page
COUNTED = 10_000  # entity logs counted for the pager (a job may log millions)
MAX_LIMIT = 200
SOURCES = 200  # sources offered in the start form and the filter
DIFF_SHOWN = 100  # attribute changes shown per simulated entity


# -- reading the query ----------------------------------------------------------------------------


E = TypeVar("E", JobStatus, JobType, Trigger, Logged)


def choice(kind: type[E], value: str | None, what: str) -> E | None:
    """The member of ``kind`` a filter names, None for no filter; InputError else."""
    if not value:
        return None
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InputError(f"The {what} is one of {allowed}, not {value!r}.") from None


def paging(request: Request, default: int) -> tuple[int, int]:
    """(offset, limit) of the query, bounded; InputError for a value that is no number."""
    values = []
    for name, fallback, top in (("offset", 0, 10**9), ("limit", default, MAX_LIMIT)):
        raw = request.query_params.get(name) or str(fallback)
        try:
            number = int(raw)
        except ValueError:
            raise InputError(f"The {name} is a whole number, not {raw!r}.") from None
        if number < (0 if name == "offset" else 1) or number > top:
            raise InputError(f"The {name} is between {0 if name == 'offset' else 1} and {top}.")
        values.append(number)
    return values[0], values[1]


# -- what a job's page shows ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """One line of a job's progress: a system's figures for one entity type."""

    statistic: Statistic
    done: int  # entities read (source) or handled (target)
    rate: float  # per second since the job started

    @property
    def counts(self) -> dict[str, int]:
        return self.statistic.counts.to_dict()


def seconds_of(job: Job) -> float | None:
    """How long the job has run (or ran), None when it has not started."""
    if not job.started:
        return None
    end = parse_datetime(job.ended or now())
    return max((end - parse_datetime(job.started)).total_seconds(), 0.0)


def duration(job: Job) -> str:
    """The job's run time as people read it ("2 min 5 s"), empty before it starts."""
    seconds = seconds_of(job)
    if seconds is None:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{seconds:.1f} s" if seconds < 10 else f"{secs} s"


def figures(job: Job) -> list[Figures]:
    """Per system and entity type: what was done and how fast."""
    seconds = seconds_of(job) or 0.0
    lines = []
    for statistic in job.statistics:
        c = statistic.counts
        done = (
            c.read
            if statistic.role == Role.SOURCE.value
            else c.created + c.updated + c.deleted + c.unchanged + c.skipped + c.failed
        )
        lines.append(Figures(statistic, done, done / seconds if seconds > 0 else 0.0))
    return lines


def progress_values(job: Job) -> dict[str, Any]:
    """The values of the progress fragment (``jobs/_progress.html``)."""
    return {"job": job, "figures": figures(job), "duration": duration(job)}


@dataclass(frozen=True, slots=True)
class Change:
    """One attribute a simulation would change, its values as JSON text."""

    attribute: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class Entry:
    """An entity log line as the page shows it: a simulated write's diff taken apart."""

    item: dict[str, Any]
    reason: str | None
    changes: list[Change]
    more: int  # changes not shown
    left_out: list[str]


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def entry(item: dict[str, Any]) -> Entry:
    reason = item["reason"]
    if isinstance(reason, dict) and isinstance(reason.get("diff"), list):
        diff = [d for d in reason["diff"] if isinstance(d, dict)]
        changes = [
            Change(
                str(d.get("attribute", "")),
                _json_text(d["before"]) if "before" in d else None,
                _json_text(d["after"]) if "after" in d else None,
            )
            for d in diff[:DIFF_SHOWN]
        ]
        left_out = [str(x) for x in reason.get("leftOut", [])][:DIFF_SHOWN]
        return Entry(item, None, changes, max(len(diff) - DIFF_SHOWN, 0), left_out)
    text = None if reason is None else _json_text(reason)
    return Entry(item, text, [], 0, [])


# -- the history ----------------------------------------------------------------------------------


def sources(ctx: Context, request: Request) -> list[System]:
    return services(request).systems.listing(ctx, role=Role.SOURCE, limit=SOURCES)[0]


def _history(
    request: Request, ctx: Context, status: int = 200, error: str = "", **typed: str
) -> Response:
    query = request.query_params
    source = query.get("source") or None
    status_ = choice(JobStatus, query.get("state"), "state")
    type_ = choice(JobType, query.get("type"), "job type")
    trigger = choice(Trigger, query.get("trigger"), "trigger")
    offset, limit = paging(request, PAGE)
    found = services(request)
    chosen = found.systems.show(ctx, source) if source else None
    jobs, total = found.jobs.all(
        ctx,
        source=chosen.id if chosen else None,
        status=status_,
        type=type_,
        trigger=trigger,
        offset=offset,
        limit=limit,
    )
    holds: list[Hold] = []
    if chosen is not None and chosen.role is Role.SOURCE:
        holds = found.jobs.deletion_holds(ctx, chosen.id)
    shown = {k: v for k, v in query.items() if k in ("source", "state", "type", "trigger") and v}
    return render(
        request,
        "jobs/list.html",
        status=status,
        jobs=[(job, duration(job)) for job in jobs],
        total=total,
        offset=offset,
        limit=limit,
        filters=shown,
        chosen=chosen,
        holds=holds,
        sources=sources(ctx, request),
        states=list(JobStatus),
        types=list(JobType),
        triggers=list(Trigger),
        error=error,
        typed=typed,
    )


@router.get("/jobs")
def history(request: Request, ctx: ConsoleContext) -> Response:
    return _history(request, ctx)


@router.post("/jobs/start")
def start(
    request: Request,
    ctx: ConsoleContext,
    source: Annotated[str, Form(max_length=255)] = "",
    type: Annotated[str, Form(max_length=16)] = "READ",
    trace: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        if not source:
            raise InputError("Choose the source system to read.")
        kind = choice(JobType, type, "job type") or JobType.READ
        options = {"trace": True} if trace and kind is JobType.SIMULATE else None
        job = services(request).jobs.start(ctx, source, type=kind, options=options)
    except (InputError, ConflictError) as exc:
        status = 409 if isinstance(exc, ConflictError) else 400
        return _history(request, ctx, status, exc.message, source=source, type=type)
    return redirect(
        request, f"/jobs/{job.id}", notice=f"{job.type.value} job of {job.source_name} started."
    )


@router.post("/jobs/sources/{source_id}/confirm-deletions")
def confirm_deletions(
    request: Request,
    source_id: str,
    ctx: ConsoleContext,
    target: Annotated[str, Form(max_length=255)] = "",
    entity_type: Annotated[str, Form(max_length=16)] = "",
    back: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    confirmed = services(request).jobs.confirm_deletions(
        ctx, source_id, entity_type=entity_type or None, target=target or None
    )
    count = sum(h.count for h in confirmed)
    notice = f"{count} held-back deletions confirmed: the next full read may do them."
    if back.startswith("/jobs/") and back[len("/jobs/") :].replace("-", "").isalnum():
        return redirect(request, back, notice=notice)
    return redirect(request, "/jobs", notice=notice, source=source_id)


# -- one job --------------------------------------------------------------------------------------


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, ctx: ConsoleContext) -> Response:
    found = services(request)
    job = found.jobs.get(ctx, job_id)
    query = request.query_params
    action = choice(Logged, query.get("state"), "entity state")
    systems = {s.system_id: s.system_name for s in job.statistics}
    system_id = query.get("system") or None
    if system_id is not None and system_id not in systems:
        raise InputError("That system took no part in this job.")
    offset, limit = paging(request, ENTITIES)
    offset = min(offset, COUNTED - limit)  # the pager counts this far
    rows, total = found.jobs.entity_logs(
        ctx,
        job.id,
        [action] if action else None,
        system_id=system_id,
        offset=offset,
        limit=limit,
        most=COUNTED,
    )
    items = present.entity_logs(rows, total)["items"]
    return render(
        request,
        "jobs/job.html",
        **progress_values(job),
        entries=[entry(i) for i in items],
        total=total,
        more=total >= COUNTED,
        offset=offset,
        limit=limit,
        actions=list(Logged),
        systems=systems,
        filters={
            k: v for k, v in (("state", action.value if action else ""), ("system", system_id)) if v
        },
        holds=found.jobs.deletion_holds(ctx, job.source_id),
        log_types=list(LogType),
    )


@router.get("/jobs/{job_id}/progress")
def progress(request: Request, job_id: str, ctx: ConsoleContext) -> Response:
    """The live progress fragment, polled every second while the job is active (then
    returned without its trigger, which ends the polling)."""
    job = services(request).jobs.get(ctx, job_id)
    return render(request, "jobs/_progress.html", **progress_values(job))


@router.post("/jobs/{job_id}/stop")
def stop(request: Request, job_id: str, ctx: ConsoleContext) -> Response:
    job = services(request).jobs.stop(ctx, job_id)
    return redirect(
        request, f"/jobs/{job.id}", notice="Stop requested: the job stops at its next safe point."
    )


@router.get("/jobs/{job_id}/export")
def export(request: Request, job_id: str, ctx: ConsoleContext) -> Response:
    log_type = request.query_params.get("logType") or LogType.COMMON.value
    name, data = services(request).jobs.export(ctx, job_id, log_type)
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, 200, headers=headers, media_type="application/zip")
