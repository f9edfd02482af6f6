"""The metric objects (prometheus-client) and the calls that record them.

Each process records into its own instruments, built on first use: in a process whose
``PROMETHEUS_MULTIPROC_DIR`` is set (the workers and the jobs process of ``provisor serve``,
see :mod:`provisor.metrics.processes`), they write to files there that any process of the
server reads at scrape time; elsewhere they are in memory. :func:`configure` (called by the
composition root from ``PROVISOR_METRICS``) turns recording off: every call here then returns
at once.

Labels are few and bounded: route groups (never paths, ids or names), methods, statuses, job
states, entity actions, and, per target system, the tenant and the system id (systems are
bounded by the tenants' quotas).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: an API call takes milliseconds, a target's write up to its timeouts.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0)
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# What happened to an entity, as a job's statistics say (jobs.model.Action's values).
ACTIONS = ("read", "created", "updated", "deleted", "unchanged", "skipped", "failed")
WRITES = ("created", "updated", "deleted", "failed")  # what a target counts


@dataclass(frozen=True, slots=True)
class Instruments:
    """Every metric provisor records, in one registry of the process."""

    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    jobs_finished: Counter
    jobs_running: Gauge
    job_seconds: Histogram
    entities: Counter
    target_entities: Counter
    realtime_seconds: Histogram
    inbound: Counter
    failed_logins: Counter
    auth_throttled: Counter


def _build() -> Instruments:
    registry = CollectorRegistry(auto_describe=True)
    return Instruments(
        registry=registry,
        requests=Counter(
            "provisor_http_requests",
            "HTTP requests answered, by route group, method and status",
            ["group", "method", "status"],
            registry=registry,
        ),
        request_seconds=Histogram(
            "provisor_http_request_duration_seconds",
            "Time to answer an HTTP request, by route group",
            ["group"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        jobs_finished=Counter(
            "provisor_jobs_finished",
            "Provisioning jobs that ended, by state",
            ["state"],
            registry=registry,
        ),
        jobs_running=Gauge(
            "provisor_jobs_running",
            "Provisioning jobs running now",
            registry=registry,
            multiprocess_mode="livesum",
        ),
        job_seconds=Histogram(
            "provisor_job_duration_seconds",
            "How long a provisioning job ran, by state",
            ["state"],
            buckets=JOB_BUCKETS,
            registry=registry,
        ),
        entities=Counter(
            "provisor_job_entities",
            "Entities of finished jobs, by entity type, role of the system and action",
            ["type", "role", "action"],
            registry=registry,
        ),
        target_entities=Counter(
            "provisor_target_entities",
            "Entities written to a target system by jobs, by tenant, system id and action",
            ["tenant", "system", "action"],
            registry=registry,
        ),
        realtime_seconds=Histogram(
            "provisor_realtime_target_duration_seconds",
            "Time to write one real-time change to a target system, by tenant and system id",
            ["tenant", "system"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        inbound=Counter(
            "provisor_inbound_limited",
            "Proxy and real-time calls over a tenant's budget: throttled (made to wait) or "
            "refused (429)",
            ["outcome"],
            registry=registry,
        ),
        failed_logins=Counter(
            "provisor_failed_logins",
            "Failed sign-ins: technical users (client) and console administrators, by reason",
            ["kind", "reason"],
            registry=registry,
        ),
        auth_throttled=Counter(
            "provisor_auth_throttled",
            "Authentication attempts made to wait or refused (429) after too many failures",
            registry=registry,
        ),
    )


_state: dict[str, Instruments] = {}
_lock = threading.Lock()
_enabled = [True]


def configure(*, enabled: bool) -> None:
    """Record (the default) or not (``PROVISOR_METRICS=false``)."""
    _enabled[0] = enabled


def enabled() -> bool:
    return _enabled[0]


def instruments() -> Instruments:
    """The process's instruments, built on first use (after ``PROMETHEUS_MULTIPROC_DIR`` is
    set, so that they write to its files)."""
    found = _state.get("instruments")
    if found is None:
        with _lock:
            found = _state.get("instruments")
            if found is None:
                found = _state["instruments"] = _build()
    return found


# -- recording -------------------------------------------------------------------------------------


def request(group: str, method: str, status: int, seconds: float) -> None:
    """An HTTP request answered."""
    if not _enabled[0]:
        return
    found = instruments()
    found.requests.labels(group, method if method in METHODS else "other", str(status)).inc()
    found.request_seconds.labels(group).observe(seconds)


def job_started() -> None:
    if _enabled[0]:
        instruments().jobs_running.inc()


def job_interrupted() -> None:
    """A job stopped by its worker's shutdown (another worker continues it)."""
    if _enabled[0]:
        instruments().jobs_running.dec()


def job_ended(
    state: str,
    seconds: float,
    tenant: str,
    counts: Iterable[tuple[str, str, str, Mapping[str, int]]],
) -> None:
    """A job ended in ``state`` after ``seconds``; ``counts``: its statistics, (entity type,
    system id, role, counts by action) per system."""
    if not _enabled[0]:
        return
    found = instruments()
    found.jobs_running.dec()
    found.jobs_finished.labels(state).inc()
    found.job_seconds.labels(state).observe(seconds)
    for entity_type, system, role, by_action in counts:
        for action in ACTIONS:
            n = by_action.get(action, 0)
            if not n:
                continue
            found.entities.labels(entity_type, role, action).inc(n)
            if role == "target" and action in WRITES:
                found.target_entities.labels(tenant, system, action).inc(n)


def realtime_write(tenant: str, system: str, seconds: float) -> None:
    """One real-time change written to a target (whatever the outcome)."""
    if _enabled[0]:
        instruments().realtime_seconds.labels(tenant, system).observe(seconds)


def inbound_limited(outcome: str) -> None:
    """A call over a tenant's budget: ``throttled`` or ``refused``."""
    if _enabled[0]:
        instruments().inbound.labels(outcome).inc()


def failed_login(kind: str, reason: str) -> None:
    """A failed sign-in: ``kind`` client or administrator; ``reason`` what failed (secret,
    token, certificate, missing, password, code)."""
    if _enabled[0]:
        instruments().failed_logins.labels(kind, reason).inc()


def auth_throttled() -> None:
    if _enabled[0]:
        instruments().auth_throttled.inc()
