"""SQL of source schedules: their definitions, next and last runs, and taking the due ones.

The ``spec`` column holds the schedule's JSON without ``enabled`` (a column of its own) and
with its ``anchor``, so an interval keeps its grid across reads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from provisor.jobs.schedule import Schedule, SourceSchedule
from provisor.storage import tables as t
from provisor.storage.database import Transaction
from provisor.timestamps import format_datetime, parse_datetime


def _spec(schedule: Schedule) -> str:
    spec = schedule.to_dict()
    del spec["enabled"]
    spec["anchor"] = format_datetime(schedule.anchor)
    return orjson.dumps(spec).decode()


def _schedule(row: Any) -> Schedule:
    spec = orjson.loads(row.spec)
    anchor = parse_datetime(spec.pop("anchor"))
    return Schedule.from_dict({**spec, "enabled": bool(row.enabled)}, anchor=anchor)


def _source_schedule(row: Any) -> SourceSchedule:
    return SourceSchedule(
        source_id=row.source_id,
        source_name=row.source_name,
        schedule=_schedule(row),
        next_run=row.next_run,
        last_run=row.last_run,
    )


_s = t.schedules
_named = select(_s, t.systems.c.name.label("source_name")).join(
    t.systems, t.systems.c.id == _s.c.source_id
)  # schedules with their source's name


def get_schedule(tx: Transaction, source_id: str) -> SourceSchedule | None:
    query = _named.where(_s.c.source_id == source_id)
    row = tx.execute(tx.scoped(query, _s)).first()
    return None if row is None else _source_schedule(row)


def list_schedules(tx: Transaction) -> list[SourceSchedule]:
    query = _named.order_by(t.systems.c.name_key)
    rows = tx.execute(tx.scoped(query, _s)).all()
    return [_source_schedule(r) for r in rows]


def put_schedule(
    tx: Transaction, source_id: str, schedule: Schedule, now: datetime
) -> SourceSchedule:
    """Save a source's schedule; its next run is the first tick after ``now`` (none while
    it is off). The last run stays."""
    next_run = format_datetime(schedule.next_run(now)) if schedule.enabled else None
    values = {"enabled": int(schedule.enabled), "spec": _spec(schedule), "next_run": next_run}
    dialect = postgresql if tx.conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(_s).values(tx.tenant_values(_s, {"source_id": source_id, **values}))
    tx.execute(statement.on_conflict_do_update(index_elements=["source_id"], set_=values))
    found = get_schedule(tx, source_id)
    assert found is not None
    return found


def delete_schedule(tx: Transaction, source_id: str) -> bool:
    """Whether there was a schedule to delete."""
    deleted = tx.execute(tx.scoped(delete(_s).where(_s.c.source_id == source_id), _s))
    return bool(deleted.rowcount)


def any_due(tx: Transaction, now: datetime) -> bool:
    """Whether a schedule is due at ``now`` (a cheap read before ``due``)."""
    query = select(_s.c.source_id).where(*_due_at(now)).limit(1)
    return tx.execute(tx.scoped(query, _s)).first() is not None


def due(tx: Transaction, now: datetime) -> list[tuple[str, str]]:
    """Take the schedules (of the transaction's tenants) due at ``now``: each one's next
    run moves to its first tick after ``now`` (the ticks it missed are skipped) and its last
    run becomes ``now``. The (tenant, source id) pairs to start. Another process in the
    same moment takes none of them (PostgreSQL: rows locked, skipped by others; SQLite: one
    writer at a time)."""
    query = select(_s).where(*_due_at(now)).order_by(_s.c.next_run)
    if tx.conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    taken = []
    for row in tx.execute(tx.scoped(query, _s)).all():
        taking = update(_s).where(_s.c.tenant == row.tenant, _s.c.source_id == row.source_id)
        tx.execute(
            tx.scoped(taking, _s).values(
                next_run=format_datetime(_schedule(row).next_run(now)),
                last_run=format_datetime(now),
            )
        )
        taken.append((row.tenant, row.source_id))
    return taken


def disabled_tenants(tx: Transaction) -> set[str]:
    """The tenants the operator disabled: they run no scheduled job (the installation's
    table, read in any transaction)."""
    query = select(t.tenants.c.name).where(t.tenants.c.enabled == 0)
    return set(tx.execute(tx.scoped(query, t.tenants)).scalars())


def _due_at(now: datetime) -> tuple[Any, ...]:
    return (
        _s.c.enabled == 1,
        _s.c.next_run <= format_datetime(now),
    )
