"""SQL of jobs, their statistics and entity logs, operational data, source state, deletion
holds and the job settings. Every statement goes through the call's transaction: selects,
updates and deletes are scoped by ``tx.scoped``, inserted rows get ``tx.tenant_values``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Table, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from provisor.context import Context
from provisor.jobs.loops import Echo
from provisor.jobs.model import (
    Action,
    Counts,
    EntityLogEntry,
    Job,
    JobRunner,
    JobStatus,
    JobType,
    ReadMode,
    Statistic,
    Trigger,
)
from provisor.jobs.ports import EntityLog, Hold, JobEvents, Record, Settled, SourceState
from provisor.storage import tables as t
from provisor.storage.database import Database, Transaction
from provisor.timestamps import now
from provisor.types import EntityType

_CHUNK = 500  # ids per IN (...) list
_STAT_COLUMNS = ("read", "skipped", "failed", "created", "updated", "deleted", "unchanged")
RETENTION_KEY = "log_retention_days"


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _upsert(tx: Transaction, table: Table, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    changing = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    if "tenant" in table.primary_key.columns:  # a natural key: unique per tenant
        keys = ("tenant", *keys)
    tx.execute(
        statement.on_conflict_do_update(index_elements=list(keys), set_=changing),
        [tx.tenant_values(table, row) for row in rows],
    )


# -- jobs -----------------------------------------------------------------------------------------


def insert_job(tx: Transaction, job: Job, options: Mapping[str, Any]) -> None:
    row = {
        "tenant": job.tenant,  # a worker's context of every tenant restarts it in its own
        "id": job.id,
        "source_id": job.source_id,
        "source_name": job.source_name,
        "type": job.type.value,
        "trigger": job.trigger.value,
        "triggered_by": job.triggered_by,
        "status": job.status.value,
        "read_mode": job.read_mode.value if job.read_mode else None,
        "created": job.created,
        "resumed_from": job.resumed_from,
        "chain_id": job.chain_id,
        "checkpoint": "{}",
        "options": orjson.dumps(dict(options)).decode(),
    }
    tx.execute(insert(t.jobs).values(tx.tenant_values(t.jobs, row)))


def _job(row: Any, statistics: list[Statistic] | None = None) -> Job:
    r = row._mapping
    return Job(
        id=r["id"],
        source_id=r["source_id"],
        source_name=r["source_name"],
        type=JobType(r["type"]),
        trigger=Trigger(r["trigger"]),
        triggered_by=r["triggered_by"],
        status=JobStatus(r["status"]),
        read_mode=ReadMode(r["read_mode"]) if r["read_mode"] else None,
        created=r["created"],
        started=r["started"],
        ended=r["ended"],
        error=r["error"],
        outcome=r["outcome"],
        stop_requested=bool(r["stop_requested"]),
        resumed_from=r["resumed_from"],
        chain_id=r["chain_id"],
        checkpoint=0,
        statistics=statistics or [],
        tenant=r["tenant"],
    )


def get_job(tx: Transaction, job_id: str, *, with_statistics: bool = True) -> Job | None:
    row = tx.execute(tx.scoped(select(t.jobs).where(t.jobs.c.id == job_id), t.jobs)).first()
    if row is None:
        return None
    return _job(row, statistics_of(tx, job_id) if with_statistics else None)


def job_options(tx: Transaction, job_id: str) -> tuple[dict[str, Any], dict[str, int]]:
    """(options, checkpoint) of a job."""
    query = select(t.jobs.c.options, t.jobs.c.checkpoint).where(t.jobs.c.id == job_id)
    row = tx.execute(tx.scoped(query, t.jobs)).one()
    return orjson.loads(row.options), orjson.loads(row.checkpoint)


def list_jobs(
    tx: Transaction,
    *,
    source_id: str | None = None,
    status: JobStatus | None = None,
    type: JobType | None = None,
    trigger: Trigger | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Job], int]:
    where = []
    if source_id is not None:
        where.append(t.jobs.c.source_id == source_id)
    if status is not None:
        where.append(t.jobs.c.status == status.value)
    if type is not None:
        where.append(t.jobs.c.type == type.value)
    if trigger is not None:
        where.append(t.jobs.c.trigger == trigger.value)
    counting = select(func.count()).select_from(t.jobs).where(*where)
    total = tx.execute(tx.scoped(counting, t.jobs)).scalar_one()
    query = (
        select(t.jobs)
        .where(*where)
        .order_by(t.jobs.c.created.desc(), t.jobs.c.id)
        .offset(offset)
        .limit(limit)
    )
    rows = tx.execute(tx.scoped(query, t.jobs)).all()
    return [_job(r) for r in rows], int(total)


def latest_jobs(tx: Transaction, limit: int) -> list[Job]:
    """The newest job of each source (at most ``limit`` sources, newest first), with its
    statistics."""
    c = t.jobs.c
    newest = (
        tx.scoped(select(c.source_id, func.max(c.created).label("created")), t.jobs)
        .group_by(c.source_id)
        .subquery()
    )
    query = (
        select(t.jobs)
        .join(newest, and_(c.source_id == newest.c.source_id, c.created == newest.c.created))
        .order_by(c.created.desc(), c.id)
        .limit(limit)
    )
    jobs: dict[str, Job] = {}
    for row in tx.execute(tx.scoped(query, t.jobs)).all():
        jobs.setdefault(row.source_id, _job(row))
    figures = statistics_of_jobs(tx, [j.id for j in jobs.values()])
    return [replace(j, statistics=figures.get(j.id, [])) for j in jobs.values()]


def active_jobs(tx: Transaction, source_id: str) -> list[Job]:
    query = (
        select(t.jobs)
        .where(
            t.jobs.c.source_id == source_id,
            t.jobs.c.status.in_([s.value for s in JobStatus if s.active]),
        )
        .order_by(t.jobs.c.created)
    )
    return [_job(r) for r in tx.execute(tx.scoped(query, t.jobs)).all()]


def any_running(tx: Transaction) -> bool:
    """Whether a job of any source is running (not merely queued)."""
    query = select(t.jobs.c.id).where(t.jobs.c.status.in_(_RUNNING)).limit(1)
    return tx.execute(tx.scoped(query, t.jobs)).first() is not None


_RUNNING = (JobStatus.RUNNING.value, JobStatus.RUNNING_WITH_ERROR.value)


def update_job(tx: Transaction, job_id: str, **fields: Any) -> None:
    values = dict(fields)
    for key in ("checkpoint", "options"):
        if key in values and not isinstance(values[key], str):
            values[key] = orjson.dumps(values[key]).decode()
    for key in ("status", "read_mode", "type", "trigger"):
        if key in values and values[key] is not None:
            values[key] = str(values[key])
    tx.execute(tx.scoped(update(t.jobs).where(t.jobs.c.id == job_id), t.jobs).values(**values))


def job_worker(tx: Transaction, job_id: str) -> str | None:
    """The worker running a job."""
    query = select(t.jobs.c.worker).where(t.jobs.c.id == job_id)
    worker: str | None = tx.execute(tx.scoped(query, t.jobs)).scalar()
    return worker


def stop_requested(tx: Transaction, job_id: str) -> bool:
    query = select(t.jobs.c.stop_requested).where(t.jobs.c.id == job_id)
    return bool(tx.execute(tx.scoped(query, t.jobs)).scalar())


def claim_next(
    tx: Transaction,
    worker: str,
    stamp: str,
    job_id: str | None = None,
    *,
    concurrency: int | None,
) -> Job | None:
    """Take the oldest queued job (or ``job_id``) of the transaction's tenants whose source
    has no running job and whose tenant runs fewer jobs than its quota (``concurrency``
    unless the tenant's ``jobConcurrency`` says otherwise; None: no quota, a job taken over
    from a dead worker keeps the place it had): it is marked running for ``worker``."""
    running = tx.scoped(select(t.jobs.c.source_id).where(t.jobs.c.status.in_(_RUNNING)), t.jobs)
    query = (
        select(t.jobs)
        .where(t.jobs.c.status == JobStatus.QUEUED.value, t.jobs.c.source_id.not_in(running))
        .order_by(t.jobs.c.created)
        .limit(1)
    )
    if job_id is not None:
        query = query.where(t.jobs.c.id == job_id)
    if concurrency is not None:
        if tx.conn.dialect.name == "postgresql":
            # Claims take turns, so that two workers never both take a tenant's last place
            # (SQLite's writers take turns already); the lock ends with the transaction.
            tx.execute(_CLAIMING)
        full = tenants_at_quota(tx, concurrency)
        if full:
            query = query.where(t.jobs.c.tenant.not_in(full))
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = tx.execute(tx.scoped(query, t.jobs)).first()
    if row is None:
        return None
    claiming = update(t.jobs).where(
        t.jobs.c.id == row.id, t.jobs.c.status == JobStatus.QUEUED.value
    )
    claimed = tx.execute(
        tx.scoped(claiming, t.jobs).values(
            status=JobStatus.RUNNING.value, started=stamp, heartbeat=stamp, worker=worker
        )
    )
    if claimed.rowcount != 1:
        return None
    return get_job(tx, row.id, with_statistics=False)


# pg_advisory_xact_lock's two-key space (entity locks use the one-key space): claims' turn
_CLAIMING = text("SELECT pg_advisory_xact_lock(7466011, 1)")
QUOTA_KEY = "jobConcurrency"  # tenants.quotas: how many of the tenant's jobs run at once


def running_per_tenant(tx: Transaction) -> dict[str, int]:
    """How many jobs of each of the transaction's tenants run (none: absent)."""
    query = (
        select(t.jobs.c.tenant, func.count().label("running"))
        .where(t.jobs.c.status.in_(_RUNNING))
        .group_by(t.jobs.c.tenant)
    )
    return {r.tenant: int(r.running) for r in tx.execute(tx.scoped(query, t.jobs)).all()}


def job_concurrency(tx: Transaction, tenants: Iterable[str], default: int) -> dict[str, int]:
    """How many jobs each of ``tenants`` may run at once: its quota ``jobConcurrency`` (a
    positive whole number in ``tenants.quotas``), else ``default``. The tenants table is the
    installation's: read whatever the transaction's tenant."""
    wanted = list(dict.fromkeys(tenants))
    limits = dict.fromkeys(wanted, default)
    query = select(t.tenants.c.name, t.tenants.c.quotas).where(t.tenants.c.name.in_(wanted))
    for row in tx.execute(tx.scoped(query, t.tenants)).all() if wanted else ():
        limit = _quota(row.quotas)
        if limit is not None:
            limits[row.name] = limit
    return limits


def _quota(quotas: str | None) -> int | None:
    """The ``jobConcurrency`` of a tenant's quotas JSON; None when it sets none (or none
    usable: the tenants' service checks what it stores)."""
    try:
        found = orjson.loads(quotas or "{}").get(QUOTA_KEY)
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(found, bool) or not isinstance(found, int) or found < 1:
        return None
    return found


def tenants_at_quota(tx: Transaction, default: int) -> list[str]:
    """The transaction's tenants running as many jobs as they may (``default`` unless a
    tenant's quota says otherwise), sorted."""
    running = running_per_tenant(tx)
    limits = job_concurrency(tx, running, default)
    return sorted(tenant for tenant, n in running.items() if n >= limits[tenant])


def stale_jobs(tx: Transaction, before: str, job_id: str | None = None) -> list[Job]:
    """Running jobs (or ``job_id``) whose worker stopped beating before ``before``."""
    query = select(t.jobs).where(t.jobs.c.status.in_(_RUNNING), t.jobs.c.heartbeat < before)
    if job_id is not None:
        query = query.where(t.jobs.c.id == job_id)
    return [_job(r) for r in tx.execute(tx.scoped(query, t.jobs)).all()]


def delete_finished_jobs(tx: Transaction, *, before: Cutoffs | None = None) -> int:
    """Delete the finished jobs of the transaction's tenants (created before their tenant's
    cutoff); how many went."""
    where: list[ColumnElement[bool]] = [
        t.jobs.c.status.in_([s.value for s in JobStatus if s.finished])
    ]
    if before is not None:
        where.append(before.condition(t.jobs.c.tenant, t.jobs.c.created))
    return int(tx.execute(tx.scoped(delete(t.jobs).where(*where), t.jobs)).rowcount)


def delete_realtime_logs(tx: Transaction, *, before: Cutoffs) -> None:
    """Real-time logs started before their tenant's cutoff go with the old job logs (spec
    §6.6)."""
    logs = t.realtime_logs
    old = before.condition(logs.c.tenant, logs.c.started)
    tx.execute(tx.scoped(delete(logs).where(old), logs))


def delete_proxy_activity(tx: Transaction, *, before: Cutoffs) -> None:
    """Proxy calls older than their tenant's cutoff go with the old job logs."""
    calls = t.proxy_activity
    old = before.condition(calls.c.tenant, calls.c.time)
    tx.execute(tx.scoped(delete(calls).where(old), calls))


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """A time per tenant (``per_tenant``), ``otherwise`` for every other tenant: what is
    older goes."""

    per_tenant: Mapping[str, str]
    otherwise: str

    def condition(self, tenant: Any, stamp: Any) -> ColumnElement[bool]:
        """``stamp`` (a column) is older than the cutoff of the row's ``tenant`` (a column)."""
        named = list(self.per_tenant)
        cases = [and_(tenant == name, stamp < self.per_tenant[name]) for name in named]
        others = stamp < self.otherwise
        if named:
            others = and_(tenant.not_in(named), others)
        return or_(*cases, others)


# -- settings and resets --------------------------------------------------------------------------


def retention_days(tx: Transaction) -> int | None:
    s = t.tenant_settings
    query = select(s.c.value).where(s.c.key == RETENTION_KEY)
    value = tx.execute(tx.scoped(query, s)).scalar()
    return None if value is None else int(value)


def retention_per_tenant(tx: Transaction) -> dict[str, int]:
    """The log retention (days) of each of the transaction's tenants that set one."""
    s = t.tenant_settings
    query = select(s.c.tenant, s.c.value).where(s.c.key == RETENTION_KEY)
    return {r.tenant: int(r.value) for r in tx.execute(tx.scoped(query, s)).all()}


def set_retention_days(tx: Transaction, days: int) -> None:
    s = t.tenant_settings
    tx.execute(tx.scoped(delete(s).where(s.c.key == RETENTION_KEY), s))
    tx.execute(insert(s).values(tx.tenant_values(s, {"key": RETENTION_KEY, "value": str(days)})))


def delete_every_system(tx: Transaction) -> int:
    """Delete every system (with what hangs on them: transformations, schedules, jobs, logs,
    operational data) and the tenant's settings; the number of systems deleted."""
    deleted = tx.execute(tx.scoped(delete(t.systems), t.systems)).rowcount
    tx.execute(tx.scoped(delete(t.tenant_settings), t.tenant_settings))
    return int(deleted)


# -- job runners ----------------------------------------------------------------------------------


def beat_runner(tx: Transaction, name: str, started: str, stamp: str) -> None:
    """Runner ``name`` is alive at ``stamp``."""
    _upsert(tx, t.job_runners, [{"name": name, "started": started, "heartbeat": stamp}], ("name",))


def retire_runners(tx: Transaction, *, name: str | None = None, before: str | None = None) -> None:
    """Forget runner ``name`` (it stopped), or those that have not beaten since ``before``."""
    c = t.job_runners.c
    statement = delete(t.job_runners)
    if name is not None:
        statement = statement.where(c.name == name)
    if before is not None:
        statement = statement.where(c.heartbeat < before)
    tx.execute(tx.scoped(statement, t.job_runners))  # every tenant's: runners serve them all


def count_queued(tx: Transaction) -> int:
    """The queued jobs of the transaction's tenants (in the status index)."""
    query = (
        select(func.count()).select_from(t.jobs).where(t.jobs.c.status == JobStatus.QUEUED.value)
    )
    return int(tx.execute(tx.scoped(query, t.jobs)).scalar_one())


def live_runners(tx: Transaction, since: str) -> list[JobRunner]:
    """The runners that have beaten since ``since``, the oldest first."""
    c = t.job_runners.c
    query = select(t.job_runners).where(c.heartbeat >= since).order_by(c.started, c.name)
    return [
        JobRunner(name=r.name, started=r.started, heartbeat=r.heartbeat)
        for r in tx.execute(tx.scoped(query, t.job_runners))
    ]


# -- statistics and entity logs -------------------------------------------------------------------


def _statistics_rows(
    job_id: str, counts: Mapping[tuple[str, str, str, str], Counts]
) -> list[dict[str, Any]]:
    """The ``job_statistics`` rows of ``counts``, in key order (writers committing at once
    lock the rows in the same order)."""
    return [
        {
            "job_id": job_id,
            "entity_type": entity_type,
            "system_id": system_id,
            "system_name": system_name,
            "role": role,
            **c.to_dict(),
        }
        for (entity_type, system_id, system_name, role), c in sorted(counts.items())
    ]


def save_statistics(
    tx: Transaction, job_id: str, counts: Mapping[tuple[str, str, str, str], Counts]
) -> None:
    rows = _statistics_rows(job_id, counts)
    _upsert(tx, t.job_statistics, rows, ("job_id", "entity_type", "system_id"))


def add_statistics(
    tx: Transaction, job_id: str, counts: Mapping[tuple[str, str, str, str], Counts]
) -> None:
    """Add ``counts`` to a job's statistics (the partitions of a job, each committing what
    it did since its last commit, decision 0032)."""
    table = t.job_statistics
    rows = _statistics_rows(job_id, counts)
    if not rows:
        return
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    adding = {c: table.c[c] + statement.excluded[c] for c in _STAT_COLUMNS}
    tx.execute(
        statement.on_conflict_do_update(
            index_elements=["job_id", "entity_type", "system_id"], set_=adding
        ),
        [tx.tenant_values(table, row) for row in rows],
    )


def statistics_of(tx: Transaction, job_id: str) -> list[Statistic]:
    return statistics_of_jobs(tx, [job_id]).get(job_id, [])


def statistics_of_jobs(tx: Transaction, job_ids: Sequence[str]) -> dict[str, list[Statistic]]:
    """The statistics of each of ``job_ids`` (sources first, then by entity type, system)."""
    c = t.job_statistics.c
    out: dict[str, list[Statistic]] = {}
    for chunk in _chunks(job_ids):
        query = (
            select(t.job_statistics)
            .where(c.job_id.in_(chunk))
            .order_by(c.role.desc(), c.entity_type.desc(), c.system_name)
        )
        for row in tx.execute(tx.scoped(query, t.job_statistics)).all():
            r = row._mapping
            out.setdefault(r["job_id"], []).append(
                Statistic(
                    entity_type=r["entity_type"],
                    system_id=r["system_id"],
                    system_name=r["system_name"],
                    role=r["role"],
                    counts=Counts(**{k: r[k] for k in _STAT_COLUMNS}),
                )
            )
    return out


def add_entity_logs(tx: Transaction, job_id: str, entries: Sequence[EntityLog]) -> None:
    if not entries:
        return
    stamp = now()
    table = t.job_entities
    tx.execute(
        insert(table),
        [
            tx.tenant_values(
                table,
                {
                    "job_id": job_id,
                    "action": e.action,
                    "entity_type": e.entity_type,
                    "system_id": e.system_id,
                    "system_name": e.system_name,
                    "entity_id": e.entity_id,
                    "reason": e.reason,
                    "content": e.content,
                    "created": stamp,
                    "name": e.name,
                    "target_entity_id": e.target_entity_id,
                },
            )
            for e in entries
        ],
    )


def entity_logs(
    tx: Transaction,
    job_id: str,
    actions: Sequence[str] | None = None,
    *,
    system_id: str | None = None,
    offset: int = 0,
    limit: int | None = None,
    most: int | None = None,
) -> tuple[list[EntityLogEntry], int]:
    """A page of a job's entity logs and how many match (counted up to ``most``, when given:
    a job of millions of entities is not counted whole for a pager)."""
    table = t.job_entities
    c = table.c
    where = [c.job_id == job_id]
    if actions:
        where.append(c.action.in_([str(a) for a in actions]))
    if system_id is not None:
        where.append(c.system_id == system_id)
    counting = select(func.count()).select_from(table).where(*where)
    if most is not None:
        bounded = tx.scoped(select(c.id).where(*where).limit(most), table).subquery()
        counting = select(func.count()).select_from(bounded)
        total = tx.execute(counting).scalar()
        query = tx.scoped(select(table).where(*where).order_by(c.id).offset(offset), table)
        if limit is not None:
            query = query.limit(limit)
        return [_entry(r) for r in tx.execute(query)], int(total or 0)
    total = tx.execute(tx.scoped(counting, table)).scalar()
    query = select(table).where(*where).order_by(c.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = [_entry(r) for r in tx.execute(tx.scoped(query, table))]
    return rows, int(total or 0)


def first_entity_logs(
    tx: Transaction, job_ids: Sequence[str], action: str, limit: int
) -> dict[str, list[EntityLogEntry]]:
    """The first ``limit`` entity logs of ``action`` of each of ``job_ids`` (no count)."""
    c = t.job_entities.c
    found: dict[str, list[EntityLogEntry]] = {}
    for job_id in job_ids:
        query = (
            select(t.job_entities)
            .where(c.job_id == job_id, c.action == action)
            .order_by(c.id)
            .limit(limit)
        )
        found[job_id] = [_entry(r) for r in tx.execute(tx.scoped(query, t.job_entities))]
    return found


def _entry(r: Any) -> EntityLogEntry:
    return EntityLogEntry(
        action=Action(r.action),
        entity_type=r.entity_type,
        system_id=r.system_id,
        system_name=r.system_name,
        entity_id=r.entity_id,
        reason=r.reason,
        content=r.content,
        time=r.created,
        name=r.name,
        target_entity_id=r.target_entity_id,
    )


# -- operational data -----------------------------------------------------------------------------

_od = t.operational_data
_wi = t.write_intents
_dh = t.deletion_holds


def _pair(source_id: str, target_id: str, entity_type: str) -> Any:
    return and_(
        _od.c.source_id == source_id,
        _od.c.target_id == target_id,
        _od.c.entity_type == entity_type,
    )


class OperationalStore:
    """Operational data, source state and deletion holds over the database, for the calls
    of one context (implements the jobs ports)."""

    def __init__(self, db: Database, ctx: Context) -> None:
        self.db = db
        self.ctx = ctx

    def records(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> dict[str, Record]:
        found: dict[str, Record] = {}
        with self.db.read(self.ctx) as tx:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                query = select(
                    _od.c.source_entity_id,
                    _od.c.target_entity_id,
                    _od.c.hash,
                    _od.c.existed_before,
                    _od.c.source_hash,
                ).where(
                    _pair(source_id, target_id, entity_type),
                    _od.c.source_entity_id.in_(chunk),
                )
                for r in tx.execute(tx.scoped(query, _od)):
                    found[r.source_entity_id] = Record(
                        r.source_entity_id,
                        r.target_entity_id,
                        r.hash,
                        bool(r.existed_before),
                        r.source_hash,
                    )
        return found

    def settle(self, pages: Sequence[Settled]) -> None:
        """What pages did, in one transaction: records written, records seen, their write
        intents done."""
        pages = [p for p in pages if p.saved or p.seen or p.intents]
        if not pages:
            return
        with self.db.write(self.ctx) as tx:
            settle_in(tx, pages)

    def intend(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str], job_id: str
    ) -> set[str]:
        pending: set[str] = set()
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return pending
        with self.db.write(self.ctx) as tx:
            for chunk in _chunks(wanted):
                query = select(_wi.c.source_entity_id).where(
                    _intents_of(source_id, target_id, entity_type),
                    _wi.c.source_entity_id.in_(chunk),
                )
                pending.update(tx.execute(tx.scoped(query, _wi)).scalars())
            stamp = now()
            rows = [
                tx.tenant_values(
                    _wi,
                    {
                        "source_id": source_id,
                        "target_id": target_id,
                        "entity_type": entity_type,
                        "source_entity_id": i,
                        "operation": "create",
                        "job_id": job_id,
                        "created": stamp,
                    },
                )
                for i in wanted
                if i not in pending
            ]
            if rows:
                tx.execute(insert(_wi), rows)
        return pending

    def save_echoes(self, endpoint: str, entity_type: str, echoes: Sequence[Echo]) -> None:
        if not echoes:
            return
        stamp = now()
        rows = [
            {
                "endpoint": endpoint,
                "entity_type": entity_type,
                "entity_id": e.entity_id,
                "fingerprint": e.fingerprint,
                "attributes": None if e.keys is None else orjson.dumps(e.keys).decode(),
                "written": stamp,
            }
            for e in echoes
        ]
        with self.db.write(self.ctx) as tx:
            _upsert(tx, t.echoes, rows, ("endpoint", "entity_type", "entity_id"))

    def echo(self, endpoint: str, entity_type: str, entity_id: str) -> Echo | None:
        query = select(t.echoes.c.fingerprint, t.echoes.c.attributes).where(
            t.echoes.c.endpoint == endpoint,
            t.echoes.c.entity_type == entity_type,
            t.echoes.c.entity_id == entity_id,
        )
        with self.db.read(self.ctx) as tx:
            row = tx.execute(tx.scoped(query, t.echoes)).first()
        if row is None:
            return None
        keys = None if row.attributes is None else tuple(orjson.loads(row.attributes))
        return Echo(entity_id, row.fingerprint, keys)

    def unseen(
        self, source_id: str, target_id: str, entity_type: str, seen_by: str, batch: int
    ) -> Iterator[list[Record]]:
        after = ""
        while True:
            query = (
                select(
                    _od.c.source_entity_id,
                    _od.c.target_entity_id,
                    _od.c.hash,
                    _od.c.existed_before,
                )
                .where(
                    _pair(source_id, target_id, entity_type),
                    _od.c.last_seen != seen_by,
                    _od.c.source_entity_id > after,
                )
                .order_by(_od.c.source_entity_id)
                .limit(batch)
            )
            with self.db.read(self.ctx) as tx:
                rows = tx.execute(tx.scoped(query, _od)).all()
            if not rows:
                return
            yield [
                Record(r.source_entity_id, r.target_entity_id, r.hash, bool(r.existed_before))
                for r in rows
            ]
            after = rows[-1].source_entity_id

    def count_unseen(
        self, source_id: str, target_id: str, entity_type: str, seen_by: str
    ) -> tuple[int, int]:
        query = select(func.count(), func.coalesce(func.sum(_od.c.existed_before), 0)).where(
            _pair(source_id, target_id, entity_type), _od.c.last_seen != seen_by
        )
        with self.db.read(self.ctx) as tx:
            row: Any = tx.execute(tx.scoped(query, _od)).one()
        return int(row[0]), int(row[1])

    def remove(self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self.db.write(self.ctx) as tx:
            for chunk in _chunks(list(ids)):
                removing = delete(_od).where(
                    _pair(source_id, target_id, entity_type),
                    _od.c.source_entity_id.in_(chunk),
                )
                tx.execute(tx.scoped(removing, _od))

    def resolve(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> dict[str, str]:
        return {
            k: r.target_entity_id
            for k, r in self.records(source_id, target_id, entity_type, ids).items()
        }

    def source_state(self, source_id: str, entity_type: str) -> SourceState:
        s = t.source_state
        query = select(s).where(s.c.source_id == source_id, s.c.entity_type == entity_type)
        with self.db.read(self.ctx) as tx:
            row = tx.execute(tx.scoped(query, s)).first()
        if row is None:
            return SourceState()
        return SourceState(row.delta_token, row.deltas_since_full, row.last_full_count)

    def save_source_state(self, source_id: str, entity_type: str, state: SourceState) -> None:
        row = {
            "source_id": source_id,
            "entity_type": entity_type,
            "delta_token": state.delta_token,
            "deltas_since_full": state.deltas_since_full,
            "last_full_count": state.last_full_count,
        }
        with self.db.write(self.ctx) as tx:
            _upsert(tx, t.source_state, [row], ("source_id", "entity_type"))

    def hold(self, hold: Hold) -> Hold | None:
        key = (hold.source_id, hold.target_id, hold.entity_type)
        with self.db.write(self.ctx) as tx:
            found = _holds(tx, _hold_key(*key), lock=True)
            confirmed = found[0] if found and found[0].confirmed is not None else None
            if confirmed is not None and confirmed.covers(hold.count):
                tx.execute(tx.scoped(delete(_dh).where(_hold_key(*key)), _dh))
                return confirmed
            row = {
                "source_id": hold.source_id,
                "target_id": hold.target_id,
                "entity_type": hold.entity_type,
                "reason": hold.reason,
                "count": hold.count,
                "read": hold.read,
                "last_full_count": hold.last_full_count,
                "threshold": hold.threshold,
                "job_id": hold.job_id,
                "held": hold.held,
                "confirmed_by": None,
                "confirmed": None,
            }
            _upsert(tx, _dh, [row], ("source_id", "target_id", "entity_type"))
        return confirmed

    def release(self, source_id: str, target_id: str, entity_type: str) -> None:
        with self.db.write(self.ctx) as tx:
            removing = delete(_dh).where(_hold_key(source_id, target_id, entity_type))
            tx.execute(tx.scoped(removing, _dh))

    def holds(self, source_id: str) -> list[Hold]:
        with self.db.read(self.ctx) as tx:
            return _holds(tx, _dh.c.source_id == source_id)


def reset_system(tx: Transaction, system_id: str) -> int:
    """Forget what provisor knows of a system's entities (spec §4.8); records removed."""
    removed = tx.execute(
        tx.scoped(
            delete(_od).where((_od.c.source_id == system_id) | (_od.c.target_id == system_id)),
            _od,
        )
    ).rowcount
    s = t.source_state
    tx.execute(tx.scoped(delete(s).where(s.c.source_id == system_id), s))
    tx.execute(
        tx.scoped(
            delete(_dh).where((_dh.c.source_id == system_id) | (_dh.c.target_id == system_id)),
            _dh,
        )
    )
    tx.execute(
        tx.scoped(
            delete(_wi).where((_wi.c.source_id == system_id) | (_wi.c.target_id == system_id)),
            _wi,
        )
    )
    return int(removed)


class Journal:
    """A running job's row, statistics and entity logs, for the calls of one context
    (implements JobJournal)."""

    def __init__(self, db: Database, ctx: Context, events: JobEvents | None = None) -> None:
        """``events``: told of each change of a job's status, in its transaction."""
        self.db = db
        self.ctx = ctx
        self.events = events

    def update(self, job_id: str, **fields: Any) -> None:
        with self.db.write(self.ctx) as tx:
            self._update(tx, job_id, fields)

    def update_in(self, tx: Transaction, job_id: str, **fields: Any) -> None:
        """Change a job's row in the caller's transaction (its status change told)."""
        self._update(tx, job_id, fields)

    def _update(self, tx: Transaction, job_id: str, fields: Mapping[str, Any]) -> None:
        status = fields.get("status")
        if self.events is None or status is None:
            update_job(tx, job_id, **fields)
            return
        before = get_job(tx, job_id, with_statistics=False)
        update_job(tx, job_id, **fields)
        if before is not None and before.status != status:
            after = get_job(tx, job_id)
            if after is not None:
                self.events.job_changed(tx, after, before.status)

    def set_status(self, job_id: str, status: JobStatus, **fields: Any) -> None:
        self.update(job_id, status=status, **fields)

    def stop_requested(self, job_id: str) -> bool:
        with self.db.read(self.ctx) as tx:
            return stop_requested(tx, job_id)

    def commit(
        self,
        job_id: str,
        entries: Sequence[EntityLog],
        counts: Mapping[tuple[str, str, str, str], Counts],
        **fields: Any,
    ) -> None:
        with self.db.write(self.ctx) as tx:
            add_entity_logs(tx, job_id, entries)
            save_statistics(tx, job_id, counts)
            if fields:
                self._update(tx, job_id, fields)

    def commit_increments(
        self,
        job_id: str,
        entries: Sequence[EntityLog],
        counts: Mapping[tuple[str, str, str, str], Counts],
        **fields: Any,
    ) -> None:
        """As :meth:`commit`, ``counts`` added to the statistics committed (a job whose
        partitions add theirs, decision 0032)."""
        with self.db.write(self.ctx) as tx:
            add_entity_logs(tx, job_id, entries)
            add_statistics(tx, job_id, counts)
            if fields:
                self._update(tx, job_id, fields)


_RECORD_CHANGES = (
    "target_entity_id",
    "hash",
    "source_hash",
    "existed_before",
    "last_seen",
    "modified",
)


def _save(tx: Transaction, page: Settled) -> None:
    if not page.saved:
        return
    stamp = now()
    rows = [
        tx.tenant_values(
            _od,
            {
                "source_id": page.source_id,
                "target_id": page.target_id,
                "entity_type": page.entity_type,
                "source_entity_id": r.source_entity_id,
                "target_entity_id": r.target_entity_id,
                "hash": r.hash,
                "source_hash": r.source_hash,
                "existed_before": int(r.existed_before),
                "last_seen": page.seen_by,
                "created": stamp,
                "modified": stamp,
            },
        )
        for r in page.saved
    ]
    keys = ("source_id", "target_id", "entity_type", "source_entity_id")
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_od)
    changing = {c: statement.excluded[c] for c in _RECORD_CHANGES}
    tx.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changing), rows)


def settle_in(tx: Transaction, pages: Sequence[Settled]) -> None:
    """What pages did, in a transaction of the caller's (``OperationalStore.settle``; a
    real-time change settles with its log, in one commit)."""
    for page in pages:
        _save(tx, page)
        _mark_seen(tx, page)
        _clear_intents(tx, page)


def _mark_seen(tx: Transaction, page: Settled) -> None:
    for chunk in _chunks(list(page.seen)):
        marking = update(_od).where(
            _pair(page.source_id, page.target_id, page.entity_type),
            _od.c.source_entity_id.in_(chunk),
            _od.c.last_seen != page.seen_by,
        )
        tx.execute(tx.scoped(marking, _od).values(last_seen=page.seen_by))


def _intents_of(source_id: str, target_id: str, entity_type: str) -> Any:
    return and_(
        _wi.c.source_id == source_id,
        _wi.c.target_id == target_id,
        _wi.c.entity_type == entity_type,
    )


def _clear_intents(tx: Transaction, page: Settled) -> None:
    for chunk in _chunks(list(page.intents)):
        clearing = delete(_wi).where(
            _intents_of(page.source_id, page.target_id, page.entity_type),
            _wi.c.source_entity_id.in_(chunk),
        )
        tx.execute(tx.scoped(clearing, _wi))


# -- deletion holds -------------------------------------------------------------------------------


def _hold_key(source_id: str, target_id: str, entity_type: str) -> ColumnElement[bool]:
    return and_(
        _dh.c.source_id == source_id,
        _dh.c.target_id == target_id,
        _dh.c.entity_type == entity_type,
    )


def _holds(
    tx: Transaction, where: ColumnElement[bool], *, lock: bool = False, limit: int | None = None
) -> list[Hold]:
    """Holds with their target's name, by target name and entity type."""
    query = (
        select(_dh, t.systems.c.name.label("target_name"))
        .join(t.systems, t.systems.c.id == _dh.c.target_id)
        .where(where)
        .order_by(t.systems.c.name, _dh.c.entity_type.desc())
        .limit(limit)
    )
    if lock and tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(of=_dh)
    holds = []
    for row in tx.execute(tx.scoped(query, _dh)):
        r = row._mapping  # "count" is also a method of a row
        holds.append(
            Hold(
                source_id=r["source_id"],
                target_id=r["target_id"],
                entity_type=r["entity_type"],
                reason=r["reason"],
                count=r["count"],
                read=r["read"],
                last_full_count=r["last_full_count"],
                threshold=r["threshold"],
                job_id=r["job_id"],
                held=r["held"],
                target_name=r["target_name"],
                confirmed_by=r["confirmed_by"],
                confirmed=r["confirmed"],
            )
        )
    return holds


def holds(tx: Transaction, source_id: str) -> list[Hold]:
    return _holds(tx, _dh.c.source_id == source_id)


def unconfirmed_holds(tx: Transaction, limit: int) -> list[Hold]:
    """Holds of every source awaiting a confirmation (at most ``limit``)."""
    return _holds(tx, _dh.c.confirmed.is_(None), limit=limit)


def confirm_holds(
    tx: Transaction,
    source_id: str,
    by: str,
    *,
    entity_type: EntityType | None,
    target_id: str | None,
) -> list[Hold]:
    """Confirm the deletions held back for a source (of one entity type, in one target) as
    they stand; the holds confirmed."""
    where = [_dh.c.source_id == source_id]
    if entity_type is not None:
        where.append(_dh.c.entity_type == entity_type.value)
    if target_id is not None:
        where.append(_dh.c.target_id == target_id)
    confirming = tx.scoped(update(_dh).where(*where), _dh)
    tx.execute(confirming.values(confirmed_by=by, confirmed=now()))
    return _holds(tx, and_(*where))
