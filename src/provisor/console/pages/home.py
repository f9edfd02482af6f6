"""The home page: the tenant's systems by role, the last job of each source, the failed
entities of the last jobs, running jobs with their live progress, certificates expiring soon,
and what needs the administrator (held-back deletions, incomplete systems, failed jobs)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from provisor.connectors.base import Role
from provisor.console.pages.jobs import progress_values
from provisor.console.rendering import ROOT, ConsoleContext, ConsoleRoute, render, services
from provisor.jobs.model import JobStatus

router = APIRouter(prefix=ROOT, route_class=ConsoleRoute, include_in_schema=False)

SHOWN = 50  # systems of each role on the home page (the systems page pages through all)
SOURCES = 50  # sources whose last job is shown
RUNNING = 10  # running jobs shown with their progress
FAILED_JOBS = 5  # last jobs whose failed entities are listed
FAILED_SHOWN = 5  # failed entities listed per job
EXPIRY_DAYS = 30


@router.get("")
@router.get("/")
def home(request: Request, ctx: ConsoleContext) -> Response:
    found = services(request)
    roles = {}
    for role in Role:
        systems, total = found.systems.listing(ctx, role=role, limit=SHOWN)
        roles[role.value] = (systems, total)
    latest = found.jobs.latest(ctx, limit=SOURCES)
    active = [
        job
        for status in (JobStatus.RUNNING, JobStatus.RUNNING_WITH_ERROR)
        for job in found.jobs.all(ctx, status=status, limit=RUNNING)[0]
    ][:RUNNING]
    running = [progress_values(found.jobs.get(ctx, job.id)) for job in active]
    with_failures = [job for job in latest if any(s.counts.failed for s in job.statistics)][
        :FAILED_JOBS
    ]
    first = found.jobs.failures(ctx, [job.id for job in with_failures], limit=FAILED_SHOWN)
    failed = [
        (job, first[job.id], sum(s.counts.failed for s in job.statistics)) for job in with_failures
    ]
    names = {s.id: s.name for systems, _ in roles.values() for s in systems}
    holds = found.jobs.unconfirmed_holds(ctx, limit=SHOWN)
    return render(
        request,
        "home.html",
        roles=roles,
        latest=latest,
        running=running,
        failed=failed,
        expiring=found.certificates.expiring(ctx, days=EXPIRY_DAYS, limit=SHOWN),
        expiry_days=EXPIRY_DAYS,
        holds=[(hold, names.get(hold.source_id, hold.source_id)) for hold in holds],
        incomplete=[s for systems, _ in roles.values() for s in systems if s.problems],
        failed_jobs=[job for job in latest if job.status is JobStatus.FINISHED_WITH_ERROR],
    )
