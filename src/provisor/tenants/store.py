"""SQL of the tenants table (the installation's: read and written across tenants)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from provisor.errors import ConflictError
from provisor.jobs.model import JobStatus
from provisor.storage import auditchain
from provisor.storage import tables as t
from provisor.tenants.model import Kind, Quotas, Tenant

_t = t.tenants
_ACTIVE = [status.value for status in JobStatus if status.active]


def _tenant(row: object) -> Tenant:
    return Tenant(
        name=row.name,  # type: ignore[attr-defined]
        title=row.title,  # type: ignore[attr-defined]
        kind=Kind(row.kind),  # type: ignore[attr-defined]
        bundle=row.bundle,  # type: ignore[attr-defined]
        enabled=bool(row.enabled),  # type: ignore[attr-defined]
        quotas=Quotas.from_json(orjson.loads(row.quotas)),  # type: ignore[attr-defined]
        created=row.created,  # type: ignore[attr-defined]
        last_modified=row.last_modified,  # type: ignore[attr-defined]
    )


def find(conn: Connection, name: str) -> Tenant | None:
    row = conn.execute(select(_t).where(_t.c.name == name)).first()
    return _tenant(row) if row is not None else None


def all_tenants(conn: Connection) -> list[Tenant]:
    return [_tenant(row) for row in conn.execute(select(_t).order_by(_t.c.name))]


def insert_tenant(conn: Connection, tenant: Tenant) -> None:
    try:
        conn.execute(
            insert(_t).values(
                name=tenant.name,
                title=tenant.title,
                kind=tenant.kind.value,
                bundle=tenant.bundle,
                enabled=int(tenant.enabled),
                quotas=orjson.dumps(tenant.quotas.to_json()).decode(),
                created=tenant.created,
                last_modified=tenant.last_modified,
            )
        )
    except IntegrityError as exc:
        raise ConflictError(f"A tenant named {tenant.name!r} already exists.") from exc


def save(conn: Connection, tenant: Tenant) -> None:
    conn.execute(
        update(_t)
        .where(_t.c.name == tenant.name)
        .values(
            title=tenant.title,
            enabled=int(tenant.enabled),
            quotas=orjson.dumps(tenant.quotas.to_json()).decode(),
            last_modified=tenant.last_modified,
        )
    )


def delete_rows(conn: Connection, name: str) -> dict[str, int]:
    """Delete every row of tenant ``name`` in every table (children first); the rows deleted
    per table, those that had some."""
    counts = {}
    auditchain.allow_removal(conn)  # its audit log goes with it (PostgreSQL's trigger allows)
    for table in reversed((*t.TENANT_TABLES,)):
        deleted = conn.execute(delete(table).where(table.c.tenant == name)).rowcount
        if deleted:
            counts[str(table.name)] = deleted  # a quoted_name: orjson takes plain str keys
    return counts


def remove(conn: Connection, name: str) -> None:
    conn.execute(delete(_t).where(_t.c.name == name))


def usage(conn: Connection, name: str) -> dict[str, int]:
    """What the tenant holds: systems by role, users, groups, technical users, jobs running."""
    out: dict[str, int] = {}
    for role, count in conn.execute(
        select(t.systems.c.role, func.count())
        .where(t.systems.c.tenant == name)
        .group_by(t.systems.c.role)
    ):
        out[f"{role}Systems"] = count
    for key, table in (("users", t.users), ("groups", t.groups), ("clients", t.clients)):
        out[key] = conn.execute(
            select(func.count()).select_from(table).where(table.c.tenant == name)
        ).scalar_one()
    out["jobsRunning"] = conn.execute(
        select(func.count())
        .select_from(t.jobs)
        .where(
            t.jobs.c.tenant == name, t.jobs.c.status.in_([s.value for s in JobStatus if s.active])
        )
    ).scalar_one()
    return out


def names(conn: Connection) -> Iterator[str]:
    yield from conn.execute(select(_t.c.name).order_by(_t.c.name)).scalars()


def page(conn: Connection, *, search: str, offset: int, limit: int) -> tuple[list[Tenant], int]:
    """A page of tenants by name (those whose name or title holds ``search``, any case) and
    how many match in all."""
    wanted = select(_t)
    if search:
        text = search.lower()
        wanted = wanted.where(
            func.lower(_t.c.name).contains(text, autoescape=True)
            | func.lower(_t.c.title).contains(text, autoescape=True)
        )
    total = int(conn.execute(select(func.count()).select_from(wanted.subquery())).scalar_one())
    rows = conn.execute(wanted.order_by(_t.c.name).offset(offset).limit(limit))
    return [_tenant(row) for row in rows], total


def health(conn: Connection, names: list[str], *, since: str, latest: int) -> dict[str, Health]:
    """What each tenant of ``names`` holds and how its jobs went: a few grouped queries for
    the whole page, whatever the number of tenants."""
    found = {name: Health() for name in names}
    if not names:
        return found
    s, j = t.systems, t.jobs
    for tenant, role, count in conn.execute(
        select(s.c.tenant, s.c.role, func.count())
        .where(s.c.tenant.in_(names))
        .group_by(s.c.tenant, s.c.role)
    ):
        found[tenant].systems[role] = int(count)
    for table in (t.users, t.groups):
        for tenant, count in conn.execute(
            select(table.c.tenant, func.count())
            .where(table.c.tenant.in_(names))
            .group_by(table.c.tenant)
        ):
            found[tenant].entities += int(count)
    for tenant, status, count in conn.execute(
        select(j.c.tenant, j.c.status, func.count())
        .where(j.c.tenant.in_(names), j.c.status.in_([*_ACTIVE, _FAILED]))
        .where((j.c.status != _FAILED) | (j.c.created >= since))
        .group_by(j.c.tenant, j.c.status)
    ):
        if status == _FAILED:
            found[tenant].failed += int(count)
        else:
            found[tenant].running += int(count)
    ranked = (
        select(
            j.c.tenant,
            j.c.status,
            func.row_number().over(partition_by=j.c.tenant, order_by=j.c.created.desc()).label("n"),
        )
        .where(j.c.tenant.in_(names))
        .subquery()
    )
    for tenant, status in conn.execute(
        select(ranked.c.tenant, ranked.c.status)
        .where(ranked.c.n <= latest)
        .order_by(ranked.c.tenant, ranked.c.n)
    ):
        found[tenant].latest.append(status)
    return found


_FAILED = JobStatus.FINISHED_WITH_ERROR.value


@dataclass(slots=True)
class Health:
    """What a tenant holds and how its jobs went."""

    systems: dict[str, int] = field(default_factory=dict)  # by role
    entities: int = 0  # users and groups of the Local Identity Directory
    running: int = 0  # jobs queued or running
    failed: int = 0  # jobs finished with an error since a time
    latest: list[str] = field(default_factory=list)  # the newest jobs' states, newest first
