"""SQL of jobs, their statistics and entity logs, operational data and source state."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from provisor.jobs.loops import Echo
from provisor.jobs.model import Counts, Job, JobStatus, JobType, ReadMode, Trigger
from provisor.jobs.ports import EntityLog, Hold, Record, Settled, SourceState
from provisor.storage import tables as t
from provisor.storage.database import Database
from provisor.timestamps import now

_CHUNK = 500  # ids per IN (...) list
_STAT_COLUMNS = ("read", "skipped", "failed", "created", "updated", "deleted", "unchanged")


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    changing = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changing), rows)


# -- jobs -----------------------------------------------------------------------------------------


def insert_job(conn: Connection, job: Job, options: Mapping[str, Any]) -> None:
    conn.execute(
        insert(t.jobs).values(
            id=job.id,
            source_id=job.source_id,
            source_name=job.source_name,
            type=job.type.value,
            trigger=job.trigger.value,
            triggered_by=job.triggered_by,
            status=job.status.value,
            read_mode=job.read_mode.value if job.read_mode else None,
            created=job.created,
            resumed_from=job.resumed_from,
            chain_id=job.chain_id,
            checkpoint="{}",
            options=orjson.dumps(dict(options)).decode(),
        )
    )


def _job(row: Any, statistics: list[dict[str, Any]] | None = None) -> Job:
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
    )


def get_job(conn: Connection, job_id: str, *, with_statistics: bool = True) -> Job | None:
    row = conn.execute(select(t.jobs).where(t.jobs.c.id == job_id)).first()
    if row is None:
        return None
    return _job(row, statistics_of(conn, job_id) if with_statistics else None)


def job_options(conn: Connection, job_id: str) -> tuple[dict[str, Any], dict[str, int]]:
    """(options, checkpoint) of a job."""
    row = conn.execute(
        select(t.jobs.c.options, t.jobs.c.checkpoint).where(t.jobs.c.id == job_id)
    ).one()
    return orjson.loads(row.options), orjson.loads(row.checkpoint)


def list_jobs(
    conn: Connection,
    *,
    source_id: str | None = None,
    status: str | None = None,
    type: str | None = None,
    offset: int = 0,
    limit: int = 20,
) -> tuple[list[Job], int]:
    where = []
    if source_id is not None:
        where.append(t.jobs.c.source_id == source_id)
    if status is not None:
        where.append(t.jobs.c.status == status)
    if type is not None:
        where.append(t.jobs.c.type == type)
    total = conn.execute(select(func.count()).select_from(t.jobs).where(*where)).scalar_one()
    rows = conn.execute(
        select(t.jobs)
        .where(*where)
        .order_by(t.jobs.c.created.desc(), t.jobs.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [_job(r) for r in rows], int(total)


def active_jobs(conn: Connection, source_id: str) -> list[Job]:
    rows = conn.execute(
        select(t.jobs)
        .where(
            t.jobs.c.source_id == source_id,
            t.jobs.c.status.in_([s.value for s in JobStatus if s.active]),
        )
        .order_by(t.jobs.c.created)
    ).all()
    return [_job(r) for r in rows]


def update_job(conn: Connection, job_id: str, **fields: Any) -> None:
    values = dict(fields)
    for key in ("checkpoint", "options"):
        if key in values and not isinstance(values[key], str):
            values[key] = orjson.dumps(values[key]).decode()
    for key in ("status", "read_mode", "type", "trigger"):
        if key in values and values[key] is not None:
            values[key] = str(values[key])
    conn.execute(update(t.jobs).where(t.jobs.c.id == job_id).values(**values))


def claim_next(conn: Connection, worker: str, stamp: str, job_id: str | None = None) -> Job | None:
    """Take the oldest queued job (or ``job_id``) whose source has no running job: it is
    marked running for ``worker``."""
    running = select(t.jobs.c.source_id).where(
        t.jobs.c.status.in_((JobStatus.RUNNING.value, JobStatus.RUNNING_WITH_ERROR.value))
    )
    query = (
        select(t.jobs)
        .where(t.jobs.c.status == JobStatus.QUEUED.value, t.jobs.c.source_id.not_in(running))
        .order_by(t.jobs.c.created)
        .limit(1)
    )
    if job_id is not None:
        query = query.where(t.jobs.c.id == job_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = conn.execute(query).first()
    if row is None:
        return None
    claimed = conn.execute(
        update(t.jobs)
        .where(t.jobs.c.id == row.id, t.jobs.c.status == JobStatus.QUEUED.value)
        .values(status=JobStatus.RUNNING.value, started=stamp, heartbeat=stamp, worker=worker)
    )
    if claimed.rowcount != 1:
        return None
    return get_job(conn, row.id, with_statistics=False)


def stale_jobs(conn: Connection, before: str, job_id: str | None = None) -> list[Job]:
    """Running jobs (or ``job_id``) whose worker stopped beating before ``before``."""
    query = select(t.jobs).where(
        t.jobs.c.status.in_((JobStatus.RUNNING.value, JobStatus.RUNNING_WITH_ERROR.value)),
        t.jobs.c.heartbeat < before,
    )
    if job_id is not None:
        query = query.where(t.jobs.c.id == job_id)
    rows = conn.execute(query).all()
    return [_job(r) for r in rows]


def delete_finished_jobs(conn: Connection, *, before: str | None = None) -> int:
    where: list[ColumnElement[bool]] = [
        t.jobs.c.status.in_([s.value for s in JobStatus if s.finished])
    ]
    if before is not None:
        where.append(t.jobs.c.created < before)
    return conn.execute(delete(t.jobs).where(*where)).rowcount


# -- statistics and entity logs -------------------------------------------------------------------


def save_statistics(
    conn: Connection, job_id: str, counts: Mapping[tuple[str, str, str, str], Counts]
) -> None:
    rows = [
        {
            "job_id": job_id,
            "entity_type": entity_type,
            "system_id": system_id,
            "system_name": system_name,
            "role": role,
            **c.to_dict(),
        }
        for (entity_type, system_id, system_name, role), c in counts.items()
    ]
    _upsert(conn, t.job_statistics, rows, ("job_id", "entity_type", "system_id"))


def statistics_of(conn: Connection, job_id: str) -> list[dict[str, Any]]:
    c = t.job_statistics.c
    rows = conn.execute(
        select(t.job_statistics)
        .where(c.job_id == job_id)
        .order_by(c.role.desc(), c.entity_type.desc(), c.system_name)
    ).all()
    out = []
    for row in rows:
        r = row._mapping
        out.append(
            {
                "entityType": r["entity_type"],
                "systemId": r["system_id"],
                "systemName": r["system_name"],
                "role": r["role"],
                **{k: r[k] for k in _STAT_COLUMNS},
            }
        )
    return out


def add_entity_logs(conn: Connection, job_id: str, entries: Sequence[EntityLog]) -> None:
    if not entries:
        return
    stamp = now()
    conn.execute(
        insert(t.job_entities),
        [
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
            }
            for e in entries
        ],
    )


def entity_logs(
    conn: Connection,
    job_id: str,
    actions: Sequence[str] | None = None,
    *,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[dict[str, Any]], int]:
    c = t.job_entities.c
    where = [c.job_id == job_id]
    if actions:
        where.append(c.action.in_(list(actions)))
    total = conn.execute(select(func.count()).select_from(t.job_entities).where(*where)).scalar()
    query = select(t.job_entities).where(*where).order_by(c.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = [
        {
            "action": r.action,
            "entityType": r.entity_type,
            "systemId": r.system_id,
            "systemName": r.system_name,
            "entityId": r.entity_id,
            "reason": r.reason,
            "content": r.content,
            "time": r.created,
        }
        for r in conn.execute(query)
    ]
    return rows, int(total or 0)


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
    """Operational data and source state over the database (implements the jobs ports)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def records(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> dict[str, Record]:
        found: dict[str, Record] = {}
        with self.db.read() as conn:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                rows = conn.execute(
                    select(
                        _od.c.source_entity_id,
                        _od.c.target_entity_id,
                        _od.c.hash,
                        _od.c.existed_before,
                        _od.c.source_hash,
                    ).where(
                        _pair(source_id, target_id, entity_type),
                        _od.c.source_entity_id.in_(chunk),
                    )
                )
                for r in rows:
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
        with self.db.write() as conn:
            for page in pages:
                _save(conn, page)
                _mark_seen(conn, page)
                _clear_intents(conn, page)

    def intend(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str], job_id: str
    ) -> set[str]:
        pending: set[str] = set()
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return pending
        with self.db.write() as conn:
            for chunk in _chunks(wanted):
                pending.update(
                    conn.execute(
                        select(_wi.c.source_entity_id).where(
                            _intents_of(source_id, target_id, entity_type),
                            _wi.c.source_entity_id.in_(chunk),
                        )
                    ).scalars()
                )
            stamp = now()
            rows = [
                {
                    "source_id": source_id,
                    "target_id": target_id,
                    "entity_type": entity_type,
                    "source_entity_id": i,
                    "operation": "create",
                    "job_id": job_id,
                    "created": stamp,
                }
                for i in wanted
                if i not in pending
            ]
            if rows:
                conn.execute(insert(_wi), rows)
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
        with self.db.write() as conn:
            _upsert(conn, t.echoes, rows, ("endpoint", "entity_type", "entity_id"))

    def echo(self, endpoint: str, entity_type: str, entity_id: str) -> Echo | None:
        with self.db.read() as conn:
            row = conn.execute(
                select(t.echoes.c.fingerprint, t.echoes.c.attributes).where(
                    t.echoes.c.endpoint == endpoint,
                    t.echoes.c.entity_type == entity_type,
                    t.echoes.c.entity_id == entity_id,
                )
            ).first()
        if row is None:
            return None
        keys = None if row.attributes is None else tuple(orjson.loads(row.attributes))
        return Echo(entity_id, row.fingerprint, keys)

    def unseen(
        self, source_id: str, target_id: str, entity_type: str, seen_by: str, batch: int
    ) -> Iterator[list[Record]]:
        after = ""
        while True:
            with self.db.read() as conn:
                rows = conn.execute(
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
                ).all()
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
        with self.db.read() as conn:
            row = conn.execute(
                select(func.count(), func.coalesce(func.sum(_od.c.existed_before), 0)).where(
                    _pair(source_id, target_id, entity_type), _od.c.last_seen != seen_by
                )
            ).one()
        return int(row[0]), int(row[1])

    def remove(self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        with self.db.write() as conn:
            for chunk in _chunks(list(ids)):
                conn.execute(
                    delete(_od).where(
                        _pair(source_id, target_id, entity_type),
                        _od.c.source_entity_id.in_(chunk),
                    )
                )

    def resolve(
        self, source_id: str, target_id: str, entity_type: str, ids: Sequence[str]
    ) -> dict[str, str]:
        return {
            k: r.target_entity_id
            for k, r in self.records(source_id, target_id, entity_type, ids).items()
        }

    def source_state(self, source_id: str, entity_type: str) -> SourceState:
        s = t.source_state.c
        with self.db.read() as conn:
            row = conn.execute(
                select(t.source_state).where(s.source_id == source_id, s.entity_type == entity_type)
            ).first()
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
        with self.db.write() as conn:
            _upsert(conn, t.source_state, [row], ("source_id", "entity_type"))

    def hold(self, hold: Hold) -> Hold | None:
        key = (hold.source_id, hold.target_id, hold.entity_type)
        with self.db.write() as conn:
            found = _holds(conn, _hold_key(*key), lock=True)
            confirmed = found[0] if found and found[0].confirmed is not None else None
            if confirmed is not None and confirmed.covers(hold.count):
                conn.execute(delete(_dh).where(_hold_key(*key)))
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
            _upsert(conn, _dh, [row], ("source_id", "target_id", "entity_type"))
        return confirmed

    def release(self, source_id: str, target_id: str, entity_type: str) -> None:
        with self.db.write() as conn:
            conn.execute(delete(_dh).where(_hold_key(source_id, target_id, entity_type)))

    def holds(self, source_id: str) -> list[Hold]:
        with self.db.read() as conn:
            return _holds(conn, _dh.c.source_id == source_id)

    def reset_system(self, system_id: str) -> int:
        """Forget what provisor knows of a system's entities (spec §4.8); rows removed."""
        with self.db.write() as conn:
            removed = conn.execute(
                delete(_od).where((_od.c.source_id == system_id) | (_od.c.target_id == system_id))
            ).rowcount
            conn.execute(delete(t.source_state).where(t.source_state.c.source_id == system_id))
            conn.execute(
                delete(_dh).where((_dh.c.source_id == system_id) | (_dh.c.target_id == system_id))
            )
            conn.execute(
                delete(_wi).where((_wi.c.source_id == system_id) | (_wi.c.target_id == system_id))
            )
        return int(removed)


class Journal:
    """A running job's row, statistics and entity logs (implements JobJournal)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def update(self, job_id: str, **fields: Any) -> None:
        with self.db.write() as conn:
            update_job(conn, job_id, **fields)

    def set_status(self, job_id: str, status: JobStatus, **fields: Any) -> None:
        self.update(job_id, status=status, **fields)

    def stop_requested(self, job_id: str) -> bool:
        with self.db.read() as conn:
            value = conn.execute(
                select(t.jobs.c.stop_requested).where(t.jobs.c.id == job_id)
            ).scalar()
        return bool(value)

    def save_statistics(
        self, job_id: str, counts: Mapping[tuple[str, str, str, str], Counts]
    ) -> None:
        with self.db.write() as conn:
            save_statistics(conn, job_id, counts)

    def add_entity_logs(self, job_id: str, entries: Sequence[EntityLog]) -> None:
        with self.db.write() as conn:
            add_entity_logs(conn, job_id, entries)


_RECORD_CHANGES = (
    "target_entity_id",
    "hash",
    "source_hash",
    "existed_before",
    "last_seen",
    "modified",
)


def _save(conn: Connection, page: Settled) -> None:
    if not page.saved:
        return
    stamp = now()
    rows = [
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
        }
        for r in page.saved
    ]
    keys = ("source_id", "target_id", "entity_type", "source_entity_id")
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_od)
    changing = {
        c: statement.excluded[c]
        for c in (
            "target_entity_id",
            "hash",
            "source_hash",
            "existed_before",
            "last_seen",
            "modified",
        )
    }
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=changing), rows)


def _mark_seen(conn: Connection, page: Settled) -> None:
    for chunk in _chunks(list(page.seen)):
        conn.execute(
            update(_od)
            .where(
                _pair(page.source_id, page.target_id, page.entity_type),
                _od.c.source_entity_id.in_(chunk),
                _od.c.last_seen != page.seen_by,
            )
            .values(last_seen=page.seen_by)
        )


def _intents_of(source_id: str, target_id: str, entity_type: str) -> Any:
    return and_(
        _wi.c.source_id == source_id,
        _wi.c.target_id == target_id,
        _wi.c.entity_type == entity_type,
    )


def _clear_intents(conn: Connection, page: Settled) -> None:
    for chunk in _chunks(list(page.intents)):
        conn.execute(
            delete(_wi).where(
                _intents_of(page.source_id, page.target_id, page.entity_type),
                _wi.c.source_entity_id.in_(chunk),
            )
        )


# -- deletion holds -------------------------------------------------------------------------------


def _hold_key(source_id: str, target_id: str, entity_type: str) -> ColumnElement[bool]:
    return and_(
        _dh.c.source_id == source_id,
        _dh.c.target_id == target_id,
        _dh.c.entity_type == entity_type,
    )


def _holds(conn: Connection, where: ColumnElement[bool], *, lock: bool = False) -> list[Hold]:
    """Holds with their target's name, by target name and entity type."""
    query = (
        select(_dh, t.systems.c.name.label("target_name"))
        .join(t.systems, t.systems.c.id == _dh.c.target_id)
        .where(where)
        .order_by(t.systems.c.name, _dh.c.entity_type.desc())
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=_dh)
    holds = []
    for row in conn.execute(query):
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


def confirm_holds(
    conn: Connection, source_id: str, by: str, *, entity_type: str | None, target_id: str | None
) -> list[Hold]:
    """Confirm the deletions held back for a source (of one entity type, in one target) as
    they stand; the holds confirmed."""
    where = [_dh.c.source_id == source_id]
    if entity_type is not None:
        where.append(_dh.c.entity_type == entity_type)
    if target_id is not None:
        where.append(_dh.c.target_id == target_id)
    conn.execute(update(_dh).where(*where).values(confirmed_by=by, confirmed=now()))
    return _holds(conn, and_(*where))
