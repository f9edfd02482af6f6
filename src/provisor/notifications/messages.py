"""What a notification says: the payload of each event (JSON, what webhooks receive) and
its plain-text body (what e-mails say)."""

from __future__ import annotations

from typing import Any

from provisor.context import DEFAULT_TENANT
from provisor.jobs.export import LogType
from provisor.jobs.model import Job

COUNTS = ("read", "created", "updated", "deleted", "skipped", "failed")
LOG_LINKS = (
    ("failed", LogType.FAILED),
    ("skipped", LogType.SKIPPED),
    ("created", LogType.CREATED),
    ("updated", LogType.UPDATED),
    ("deleted", LogType.DELETED),
)


def tenant_base(base_url: str | None, tenant: str) -> str | None:
    """The tenant's base URL under the installation's (``PROVISOR_BASE_URL``); None when
    there is none."""
    if not base_url:
        return None
    base = base_url.rstrip("/")
    return base if tenant == DEFAULT_TENANT else f"{base}/t/{tenant}"


def job_payload(job: Job, base_url: str | None) -> dict[str, Any]:
    """A job's notification: source and targets, type, read mode, times, status, what the
    deletions did, its statistics, the console's page and the log exports."""
    base = tenant_base(base_url, job.tenant)
    targets = sorted({s.system_name for s in job.statistics if s.role == "target"})
    links: dict[str, Any] = {}
    if base is not None:
        links["details"] = f"{base}/console/jobs/{job.id}"
        links["logs"] = {
            name: f"{base}/api/v1/jobs/{job.id}/logs?logType={kind.value}"
            for name, kind in LOG_LINKS
        }
    return {
        "jobId": job.id,
        "sourceSystemId": job.source_id,
        "sourceSystemName": job.source_name,
        "targetSystems": targets,
        "jobType": job.type.value,
        "readMode": job.read_mode.value if job.read_mode else None,
        "triggerType": job.trigger.value,
        "startTime": job.started,
        "endTime": job.ended,
        "status": job.status.value,
        "errorMessage": job.error,
        "executionOutcome": job.outcome,
        "statistics": [s.to_dict() for s in job.statistics],
        "links": links,
    }


def _job_text(data: dict[str, Any]) -> list[str]:
    lines = [
        f"Source system: {data['sourceSystemName']}",
        f"Target systems: {', '.join(data['targetSystems']) or '-'}",
        f"Job type: {data['jobType']}",
        f"Read mode: {data['readMode'] or '-'}",
        f"Start time (UTC): {data['startTime'] or '-'}",
        f"Status: {data['status']}",
    ]
    if data.get("endTime"):
        lines.append(f"End time (UTC): {data['endTime']}")
    if data.get("errorMessage"):
        lines.append(f"Error: {data['errorMessage']}")
    lines.append(f"Deletions: {data.get('executionOutcome') or 'nothing to report'}")
    for s in data.get("statistics", []):
        counts = ", ".join(f"{k} {s[k]}" for k in COUNTS if s.get(k)) or "nothing"
        lines.append(f"  {s['entityType']}s in {s['systemName']} ({s['role']}): {counts}")
    links = data.get("links") or {}
    if links.get("details"):
        lines += ["", f"Navigate to details: {links['details']}", "Logs:"]
        lines += [f"  {name}: {url}" for name, url in links.get("logs", {}).items()]
    return lines


def text_body(event: str, subject: str, data: dict[str, Any]) -> str:
    """The plain-text body of a message."""
    if event.startswith("job."):
        lines = _job_text(data)
    elif event.startswith("certificate."):
        lines = [
            f"System: {data.get('systemName')}",
            f"Certificate: {data.get('fingerprint')}",
            str(data.get("detail", "")),
        ]
    elif event == "login.burst":
        lines = [
            f"Failed sign-ins or authentications from {data.get('who')} exhausted their "
            f"budget at {data.get('at')} (tenant {data.get('tenant')}).",
            "Further attempts wait; this is told once an hour at most per address or name.",
        ]
    else:
        lines = [str(data.get("message", ""))]
    return "\n".join([subject, "", *lines, "", "-- provisor"]) + "\n"
