"""SQL of systems: their rows, properties, source links and transformation versions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from provisor.errors import ConflictError
from provisor.storage import tables as t


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


def insert_system(conn: Connection, row: SystemRow) -> None:
    try:
        conn.execute(insert(t.systems).values(**_values(row)))
    except IntegrityError as exc:
        raise _name_taken(row.name) from exc


def update_system(conn: Connection, row: SystemRow) -> None:
    """Save a new state of a system (its version already moved)."""
    try:
        conn.execute(update(t.systems).where(t.systems.c.id == row.id).values(**_values(row)))
    except IntegrityError as exc:
        raise _name_taken(row.name) from exc


def get_system(conn: Connection, system_id: str, *, lock: bool = False) -> SystemRow | None:
    query = select(t.systems).where(t.systems.c.id == system_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _system(row) if row is not None else None


def find_system(conn: Connection, id_or_name: str) -> SystemRow | None:
    row = conn.execute(
        select(t.systems).where(
            or_(t.systems.c.id == id_or_name, t.systems.c.name_key == id_or_name.casefold())
        )
    ).first()
    return _system(row) if row is not None else None


def list_systems(
    conn: Connection,
    *,
    role: str | None = None,
    type: str | None = None,
    enabled: bool | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[SystemRow], int]:
    """A page of systems, enabled ones first, then by name; and how many match."""
    where = []
    if role is not None:
        where.append(t.systems.c.role == role)
    if type is not None:
        where.append(t.systems.c.type == type)
    if enabled is not None:
        where.append(t.systems.c.enabled == int(enabled))
    total = conn.execute(select(func.count()).select_from(t.systems).where(*where)).scalar_one()
    query = (
        select(t.systems)
        .where(*where)
        .order_by(t.systems.c.enabled.desc(), t.systems.c.name_key)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_system(r) for r in conn.execute(query)], int(total)


def count_role(conn: Connection, role: str) -> int:
    query = select(func.count()).select_from(t.systems).where(t.systems.c.role == role)
    return int(conn.execute(query).scalar_one())


def delete_system(conn: Connection, system_id: str) -> bool:
    return conn.execute(delete(t.systems).where(t.systems.c.id == system_id)).rowcount > 0


# -- properties ------------------------------------------------------------------------------------


def properties_of(conn: Connection, system_ids: Sequence[str]) -> dict[str, list[PropertyRow]]:
    found: dict[str, list[PropertyRow]] = {i: [] for i in system_ids}
    if not system_ids:
        return found
    c = t.system_properties.c
    rows = conn.execute(
        select(c.system_id, c.key, c.value, c.credential)
        .where(c.system_id.in_(system_ids))
        .order_by(c.key)
    )
    for row in rows:
        found[row.system_id].append(PropertyRow(row.key, row.value, bool(row.credential)))
    return found


def replace_properties(conn: Connection, system_id: str, rows: Iterable[PropertyRow]) -> None:
    conn.execute(delete(t.system_properties).where(t.system_properties.c.system_id == system_id))
    values = [
        {"system_id": system_id, "key": r.key, "value": r.value, "credential": int(r.credential)}
        for r in rows
    ]
    if values:
        conn.execute(insert(t.system_properties), values)


# -- sources of targets ----------------------------------------------------------------------------


def sources_of(conn: Connection, target_ids: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {i: [] for i in target_ids}
    if not target_ids:
        return found
    c = t.system_sources.c
    rows = conn.execute(
        select(c.target_id, c.source_id).where(c.target_id.in_(target_ids)).order_by(c.source_id)
    )
    for row in rows:
        found[row.target_id].append(row.source_id)
    return found


def targets_of(conn: Connection, source_id: str) -> list[str]:
    c = t.system_sources.c
    return list(conn.execute(select(c.target_id).where(c.source_id == source_id)).scalars())


def set_sources(conn: Connection, target_id: str, source_ids: Iterable[str]) -> None:
    conn.execute(delete(t.system_sources).where(t.system_sources.c.target_id == target_id))
    values = [{"target_id": target_id, "source_id": s} for s in dict.fromkeys(source_ids)]
    if values:
        conn.execute(insert(t.system_sources), values)


# -- transformation versions -----------------------------------------------------------------------


def add_transformation(
    conn: Connection,
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
    latest = conn.execute(
        select(func.max(c.version)).where(c.system_id == system_id, c.kind == kind)
    ).scalar()
    version = int(latest or 0) + 1
    conn.execute(
        insert(t.transformation_versions).values(
            system_id=system_id,
            kind=kind,
            version=version,
            text=text,
            description=description,
            author=author,
            created=created,
        )
    )
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
    conn: Connection, system_id: str, kind: str, version: int | None = None
) -> TransformationRow | None:
    """A version of a transformation; the current (latest) one without ``version``."""
    c = t.transformation_versions.c
    query = select(t.transformation_versions).where(c.system_id == system_id, c.kind == kind)
    if version is None:
        query = query.order_by(c.version.desc()).limit(1)
    else:
        query = query.where(c.version == version)
    row = conn.execute(query).first()
    return _transformation(row) if row is not None else None


def transformation_history(
    conn: Connection, system_id: str, kind: str, *, offset: int = 0, limit: int | None = None
) -> tuple[list[TransformationRow], int]:
    """Versions newest first (with their text), and how many there are."""
    c = t.transformation_versions.c
    where = (c.system_id == system_id, c.kind == kind)
    total = conn.execute(
        select(func.count()).select_from(t.transformation_versions).where(*where)
    ).scalar_one()
    query = (
        select(t.transformation_versions).where(*where).order_by(c.version.desc()).offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return [_transformation(r) for r in conn.execute(query)], int(total)
