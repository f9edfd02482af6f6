"""SQL of systems: their rows, properties, source links and transformation versions.

Every statement goes through the transaction's tenant scoping (``tx.scoped`` for reads,
changes and deletions, ``tx.tenant_values`` for inserts)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from provisor.errors import ConflictError
from provisor.storage import tables as t
from provisor.storage.database import Transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemRow:
    id: str
    name: str
    description: str
    type: str
    role: str
    enabled: bool
    origin: str
    version: int
    created: str
    last_modified: str


@dataclass(frozen=True, slots=True)
class PropertyRow:
    key: str
    value: str  # encrypted when credential
    credential: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformationRow:
    kind: str
    version: int
    text: str
    description: str
    author: str
    created: str


def _system(row: object) -> SystemRow:
    r = row._mapping  # type: ignore[attr-defined]
    return SystemRow(
        id=r["id"],
        name=r["name"],
        description=r["description"],
        type=r["type"],
        role=r["role"],
        enabled=bool(r["enabled"]),
        origin=r["origin"],
        version=r["version"],
        created=r["created"],
        last_modified=r["last_modified"],
    )


def _values(row: SystemRow) -> dict[str, object]:
    return {
        "id": row.id,
        "name": row.name,
        "name_key": row.name.casefold(),
        "description": row.description,
        "type": row.type,
        "role": row.role,
        "enabled": int(row.enabled),
        "origin": row.origin,
        "version": row.version,
        "created": row.created,
        "last_modified": row.last_modified,
    }


def _name_taken(name: str) -> ConflictError:
    return ConflictError(f"A system named {name!r} already exists: choose another name.")


def insert_system(tx: Transaction, row: SystemRow) -> None:
    try:
        tx.execute(insert(t.systems).values(**tx.tenant_values(t.systems, _values(row))))
    except IntegrityError as exc:
        raise _name_taken(row.name) from exc


def update_system(tx: Transaction, row: SystemRow) -> None:
    """Save a new state of a system (its version already moved)."""
    try:
        stmt = update(t.systems).where(t.systems.c.id == row.id).values(**_values(row))
        tx.execute(tx.scoped(stmt, t.systems))
    except IntegrityError as exc:
        raise _name_taken(row.name) from exc


def get_system(tx: Transaction, system_id: str, *, lock: bool = False) -> SystemRow | None:
    query = select(t.systems).where(t.systems.c.id == system_id)
    if lock and tx.conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = tx.execute(tx.scoped(query, t.systems)).first()
    return _system(row) if row is not None else None


def find_system(tx: Transaction, id_or_name: str) -> SystemRow | None:
    query = select(t.systems).where(
        or_(t.systems.c.id == id_or_name, t.systems.c.name_key == id_or_name.casefold())
    )
    row = tx.execute(tx.scoped(query, t.systems)).first()
    return _system(row) if row is not None else None


def list_systems(
    tx: Transaction,
    *,
    role: str | None = None,
    type: str | None = None,
    enabled: bool | None = None,
    name: str | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[SystemRow], int]:
    """A page of systems, enabled ones first, then by name; and how many match. ``name``:
    only those whose name contains it (case-insensitive)."""
    where: list[ColumnElement[bool]] = []
    if name:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", name.casefold()) + "%"
        where.append(t.systems.c.name_key.like(pattern, escape="\\"))
    if role is not None:
        where.append(t.systems.c.role == role)
    if type is not None:
        where.append(t.systems.c.type == type)
    if enabled is not None:
        where.append(t.systems.c.enabled == int(enabled))
    counted = select(func.count()).select_from(t.systems).where(*where)
    total = tx.execute(tx.scoped(counted, t.systems)).scalar_one()
    query = (
        select(t.systems)
        .where(*where)
        .order_by(t.systems.c.enabled.desc(), t.systems.c.name_key)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_system(r) for r in tx.execute(tx.scoped(query, t.systems))], int(total)


def count_role(tx: Transaction, role: str) -> int:
    query = select(func.count()).select_from(t.systems).where(t.systems.c.role == role)
    return int(tx.execute(tx.scoped(query, t.systems)).scalar_one())


def delete_system(tx: Transaction, system_id: str) -> bool:
    stmt = delete(t.systems).where(t.systems.c.id == system_id)
    return tx.execute(tx.scoped(stmt, t.systems)).rowcount > 0


# -- properties ------------------------------------------------------------------------------------


def properties_of(tx: Transaction, system_ids: Sequence[str]) -> dict[str, list[PropertyRow]]:
    found: dict[str, list[PropertyRow]] = {i: [] for i in system_ids}
    if not system_ids:
        return found
    c = t.system_properties.c
    query = (
        select(c.system_id, c.key, c.value, c.credential)
        .where(c.system_id.in_(system_ids))
        .order_by(c.key)
    )
    rows = tx.execute(tx.scoped(query, t.system_properties))
    for row in rows:
        found[row.system_id].append(PropertyRow(row.key, row.value, bool(row.credential)))
    return found


def replace_properties(tx: Transaction, system_id: str, rows: Iterable[PropertyRow]) -> None:
    sp = t.system_properties
    tx.execute(tx.scoped(delete(sp).where(sp.c.system_id == system_id), sp))
    values = [
        tx.tenant_values(
            sp,
            {
                "system_id": system_id,
                "key": r.key,
                "value": r.value,
                "credential": int(r.credential),
            },
        )
        for r in rows
    ]
    if values:
        tx.execute(insert(sp), values)


def plain_properties(tx: Transaction, keys: Iterable[str]) -> list[tuple[str, str, str, str]]:
    """(system id, system type, key, value) of the properties among ``keys`` stored as plain
    text (not credentials)."""
    sp, s = t.system_properties, t.systems
    query = (
        select(sp.c.system_id, s.c.type, sp.c.key, sp.c.value)
        .join(s, s.c.id == sp.c.system_id)
        .where(sp.c.credential == 0, sp.c.key.in_(list(keys)))
    )
    return [tuple(row) for row in tx.execute(tx.scoped(query, sp))]


def seal_property(tx: Transaction, system_id: str, key: str, encrypted: str) -> None:
    """Store a property as a credential, its value encrypted."""
    sp = t.system_properties
    stmt = (
        update(sp)
        .where(sp.c.system_id == system_id, sp.c.key == key)
        .values(value=encrypted, credential=1)
    )
    tx.execute(tx.scoped(stmt, sp))


# -- sources of targets ----------------------------------------------------------------------------


def sources_of(tx: Transaction, target_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in target_ids}
    if not target_ids:
        return found
    c = t.system_sources.c
    query = select(c.target_id, c.source_id).where(c.target_id.in_(target_ids))
    rows = tx.execute(tx.scoped(query.order_by(c.source_id), t.system_sources))
    for row in rows:
        found[row.target_id].append(row.source_id)
    return found


def targets_of(tx: Transaction, source_ids: Sequence[str]) -> dict[str, list[str]]:
    """The targets each source is linked to."""
    found: dict[str, list[str]] = {i: [] for i in source_ids}
    if not source_ids:
        return found
    c = t.system_sources.c
    query = select(c.source_id, c.target_id).where(c.source_id.in_(source_ids))
    for row in tx.execute(tx.scoped(query.order_by(c.target_id), t.system_sources)):
        found[row.source_id].append(row.target_id)
    return found


def names_of(tx: Transaction, system_ids: Iterable[str]) -> dict[str, str]:
    """The names of systems by id (the ids of no system left out)."""
    wanted = set(system_ids)
    if not wanted:
        return {}
    query = select(t.systems.c.id, t.systems.c.name).where(t.systems.c.id.in_(wanted))
    return {row.id: row.name for row in tx.execute(tx.scoped(query, t.systems))}


def set_sources(tx: Transaction, target_id: str, source_ids: Iterable[str]) -> None:
    ss = t.system_sources
    tx.execute(tx.scoped(delete(ss).where(ss.c.target_id == target_id), ss))
    values = [
        tx.tenant_values(ss, {"target_id": target_id, "source_id": s})
        for s in dict.fromkeys(source_ids)
    ]
    if values:
        tx.execute(insert(ss), values)


# -- transformation versions -----------------------------------------------------------------------


def add_transformation(
    tx: Transaction,
    system_id: str,
    kind: str,
    *,
    text: str,
    description: str,
    author: str,
    created: str,
) -> int:
    """Store a new version of a system's transformation; its number."""
    c = t.transformation_versions.c
    tv = t.transformation_versions
    latest = tx.execute(
        tx.scoped(select(func.max(c.version)).where(c.system_id == system_id, c.kind == kind), tv)
    ).scalar()
    version = int(latest or 0) + 1
    row = {
        "system_id": system_id,
        "kind": kind,
        "version": version,
        "text": text,
        "description": description,
        "author": author,
        "created": created,
    }
    tx.execute(insert(tv).values(**tx.tenant_values(tv, row)))
    return version


def _transformation(row: object) -> TransformationRow:
    r = row._mapping  # type: ignore[attr-defined]
    return TransformationRow(
        kind=r["kind"],
        version=r["version"],
        text=r["text"],
        description=r["description"],
        author=r["author"],
        created=r["created"],
    )


def get_transformation(
    tx: Transaction, system_id: str, kind: str, version: int | None = None
) -> TransformationRow | None:
    """A version of a transformation; the current (latest) one without ``version``."""
    c = t.transformation_versions.c
    query = select(t.transformation_versions).where(c.system_id == system_id, c.kind == kind)
    if version is None:
        query = query.order_by(c.version.desc()).limit(1)
    else:
        query = query.where(c.version == version)
    row = tx.execute(tx.scoped(query, t.transformation_versions)).first()
    return _transformation(row) if row is not None else None


def current_versions(tx: Transaction, system_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """The current version of each transformation of these systems: system id -> kind ->
    version (one query, without the documents)."""
    if not system_ids:
        return {}
    c = t.transformation_versions.c
    query = (
        select(c.system_id, c.kind, func.max(c.version).label("current"))
        .where(c.system_id.in_(list(system_ids)))
        .group_by(c.system_id, c.kind)
    )
    found: dict[str, dict[str, int]] = {}
    for row in tx.execute(tx.scoped(query, t.transformation_versions)):
        found.setdefault(row.system_id, {})[row.kind] = int(row.current)
    return found


def transformation_history(
    tx: Transaction, system_id: str, kind: str, *, offset: int = 0, limit: int | None = None
) -> tuple[list[TransformationRow], int]:
    """Versions newest first (with their text), and how many there are."""
    c = t.transformation_versions.c
    where = (c.system_id == system_id, c.kind == kind)
    counted = select(func.count()).select_from(t.transformation_versions).where(*where)
    total = tx.execute(tx.scoped(counted, t.transformation_versions)).scalar_one()
    query = (
        select(t.transformation_versions).where(*where).order_by(c.version.desc()).offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    found = tx.execute(tx.scoped(query, t.transformation_versions))
    return [_transformation(r) for r in found], int(total)
