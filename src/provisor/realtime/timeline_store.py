"""SQL of the identity timeline: a person's job entity logs and real-time logs, newest first,
and what provisor knows of them in each target. Every query starts from an index on the
entity's id or name in the tenant (``ix_job_entities_tenant_entity_id``,
``ix_job_entities_tenant_name``, ``ix_realtime_logs_tenant_entity``) or from a primary key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, select

from provisor.storage import tables as t
from provisor.storage.database import Transaction

_je = t.job_entities
_jobs = t.jobs
_rt = t.realtime_logs
_od = t.operational_data
_systems = t.systems
_links = t.system_sources

MAX_KEYS = 10  # ids, and names, a person is looked up by
MAX_SCANNED = 500  # log rows read to find the sources that know a person


@dataclass(frozen=True, slots=True)
class Linked:
    """A system as the timeline names it."""

    id: str
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class Key:
    """A person in one source: the source system, entity type and the id there."""

    source_id: str
    entity_type: str
    entity_id: str


# One statement per id or name: each is an equality on an index's leading columns (after the
# tenant), ordered by the index's last column, so the database reads only the rows it returns
# (an OR or IN of several values lets a planner without statistics scan the whole tenant).


def _by_id(entity_id: str) -> ColumnElement[bool]:
    return _je.c.entity_id == entity_id


def _by_name(name: str, ids: Sequence[str]) -> ColumnElement[bool]:
    """Entries of this name not already found by id (each entry counts once)."""
    if not ids:
        return _je.c.name == name
    return and_(_je.c.name == name, _je.c.entity_id.not_in(list(ids)))


def _matches(ids: Sequence[str], names: Sequence[str]) -> list[ColumnElement[bool]]:
    return [_by_id(i) for i in ids] + [_by_name(n, ids) for n in names]


def ids_named(tx: Transaction, names: Sequence[str]) -> list[str]:
    """The source ids job logs gave entities of these names, newest first (a few)."""
    found: dict[str, None] = {}
    for name in names:
        stmt = select(_je.c.entity_id).where(_je.c.name == name)
        stmt = tx.scoped(stmt, _je).order_by(_je.c.id.desc()).limit(MAX_SCANNED)
        found.update(dict.fromkeys(tx.execute(stmt).scalars()))
    return list(found)[:MAX_KEYS]


def names_of(tx: Transaction, ids: Sequence[str]) -> list[str]:
    """The names job logs gave entities of these source ids, newest first (a few)."""
    found: dict[str, None] = {}
    for entity_id in ids:
        stmt = select(_je.c.name).where(_by_id(entity_id))
        stmt = tx.scoped(stmt, _je).order_by(_je.c.id.desc()).limit(MAX_SCANNED)
        found.update(dict.fromkeys(n for n in tx.execute(stmt).scalars() if n))
    return list(found)[:MAX_KEYS]


def job_entries(
    tx: Transaction, ids: Sequence[str], names: Sequence[str], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The newest ``limit`` job entity logs of these ids or names (with their job's source
    and type), and how many there are."""
    rows: list[dict[str, Any]] = []
    total = 0
    for where in _matches(ids, names):
        counted = tx.scoped(select(func.count()).select_from(_je).where(where), _je)
        total += int(tx.execute(counted).scalar() or 0)
        newest = tx.scoped(select(_je).where(where), _je).order_by(_je.c.id.desc()).limit(limit)
        rows.extend(dict(r._mapping) for r in tx.execute(newest))
    rows = sorted({r["id"]: r for r in rows}.values(), key=lambda r: r["id"], reverse=True)
    rows = rows[:limit]
    jobs = _jobs_of(tx, {r["job_id"] for r in rows})
    for row in rows:
        row["job"] = jobs.get(row["job_id"], {})
    return rows, total


def _jobs_of(tx: Transaction, ids: set[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    stmt = select(
        _jobs.c.id, _jobs.c.source_id, _jobs.c.source_name, _jobs.c.type, _jobs.c.status
    ).where(_jobs.c.id.in_(sorted(ids)))
    return {r.id: dict(r._mapping) for r in tx.execute(tx.scoped(stmt, _jobs))}


def realtime_entries(
    tx: Transaction, ids: Sequence[str], limit: int
) -> tuple[list[dict[str, Any]], int]:
    """The newest ``limit`` real-time logs of these source ids, and how many there are."""
    rows: dict[str, dict[str, Any]] = {}
    total = 0
    for entity_id in ids:
        where = _rt.c.entity_id == entity_id
        counted = tx.scoped(select(func.count()).select_from(_rt).where(where), _rt)
        total += int(tx.execute(counted).scalar() or 0)
        newest = (
            tx.scoped(select(_rt).where(where), _rt).order_by(_rt.c.started.desc()).limit(limit)
        )
        for r in tx.execute(newest):
            row = dict(r._mapping)
            row["systems"] = orjson.loads(row["systems"])
            rows[row["id"]] = row
    newest_first = sorted(rows.values(), key=lambda r: r["started"], reverse=True)
    return newest_first[:limit], total


def keys(tx: Transaction, ids: Sequence[str], names: Sequence[str]) -> list[Key]:
    """The (source, entity type, id) a person has in the sources, from their newest logs."""
    found: dict[Key, None] = {}
    for where in _matches(ids, names):
        logged = (
            tx.scoped(select(_je.c.job_id, _je.c.entity_type, _je.c.entity_id).where(where), _je)
            .order_by(_je.c.id.desc())
            .limit(MAX_SCANNED)
        )
        entries = tx.execute(logged).all()
        jobs = _jobs_of(tx, {r.job_id for r in entries})
        for r in entries:
            source_id = jobs.get(r.job_id, {}).get("source_id")
            if source_id:
                found[Key(source_id, r.entity_type, r.entity_id)] = None
    for entity_id in ids:
        pushed = (
            tx.scoped(select(_rt.c.source_id, _rt.c.entity_type, _rt.c.entity_id), _rt)
            .where(_rt.c.entity_id == entity_id)
            .order_by(_rt.c.started.desc())
            .limit(MAX_SCANNED)
        )
        for r in tx.execute(pushed):
            found[Key(r.source_id, r.entity_type, r.entity_id)] = None
    return list(found)[: MAX_KEYS * 5]


def record(tx: Transaction, key: Key, target_id: str) -> dict[str, Any] | None:
    """The operational data of a person in a target (primary key lookup), or None."""
    stmt = select(_od.c.target_entity_id, _od.c.modified).where(
        _od.c.source_id == key.source_id,
        _od.c.target_id == target_id,
        _od.c.entity_type == key.entity_type,
        _od.c.source_entity_id == key.entity_id,
    )
    row = tx.execute(tx.scoped(stmt, _od)).first()
    return None if row is None else dict(row._mapping)


def last_entry(tx: Transaction, key: Key, target_id: str) -> dict[str, Any] | None:
    """The newest job entity log of a person in a target, or None."""
    stmt = (
        select(_je.c.action, _je.c.reason, _je.c.created, _je.c.job_id)
        .where(
            _je.c.entity_id == key.entity_id,
            _je.c.system_id == target_id,
            _je.c.entity_type == key.entity_type,
        )
        .order_by(_je.c.id.desc())
        .limit(1)
    )
    row = tx.execute(tx.scoped(stmt, _je)).first()
    return None if row is None else dict(row._mapping)


def last_realtime(tx: Transaction, key: Key) -> dict[str, Any] | None:
    """The newest real-time log of a person pushed by their source, or None."""
    stmt = (
        select(_rt.c.id, _rt.c.started, _rt.c.systems)
        .where(_rt.c.source_id == key.source_id, _rt.c.entity_id == key.entity_id)
        .order_by(_rt.c.started.desc())
        .limit(1)
    )
    row = tx.execute(tx.scoped(stmt, _rt)).first()
    if row is None:
        return None
    return {"id": row.id, "started": row.started, "systems": orjson.loads(row.systems)}


def systems_of(tx: Transaction, ids: Sequence[str]) -> dict[str, Linked]:
    """The systems of these ids (sources), by id."""
    if not ids:
        return {}
    stmt = select(_systems.c.id, _systems.c.name, _systems.c.enabled).where(
        _systems.c.id.in_(sorted(set(ids)))
    )
    return {
        r.id: Linked(r.id, r.name, bool(r.enabled)) for r in tx.execute(tx.scoped(stmt, _systems))
    }


def sources_of_type(tx: Transaction, type_id: str) -> list[str]:
    """The ids of the source systems of a connector type."""
    stmt = select(_systems.c.id).where(_systems.c.type == type_id, _systems.c.role == "source")
    return list(tx.execute(tx.scoped(stmt, _systems)).scalars())


def targets_of(tx: Transaction, source_ids: Sequence[str]) -> dict[str, list[Linked]]:
    """Every target linked to each of these sources (enabled or not), by name."""
    if not source_ids:
        return {}
    stmt = (
        select(_links.c.source_id, _systems.c.id, _systems.c.name, _systems.c.enabled)
        .select_from(_links.join(_systems, _systems.c.id == _links.c.target_id))
        .where(_links.c.source_id.in_(sorted(set(source_ids))))
        .order_by(_systems.c.name)
    )
    found: dict[str, list[Linked]] = {}
    for r in tx.execute(tx.scoped(stmt, _links)):
        found.setdefault(r.source_id, []).append(Linked(r.id, r.name, bool(r.enabled)))
    return found
