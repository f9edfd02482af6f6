"""SQL of the Local Identity Directory: users, groups, members, unique values, custom schemas.

Every function takes the caller's transaction (``Database.read(ctx)`` or
``Database.write(ctx)``) and commits nothing; every statement on a table goes through
``tx.scoped`` (selects, updates, deletes) or ``tx.tenant_values`` (inserts). Documents go in
and out as JSON text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from provisor.errors import ConflictError
from provisor.storage import tables as t
from provisor.storage.database import Transaction
from provisor.storage.jsonsql import JSONSQL
from provisor.types import EntityType


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResource:
    """A user or group as stored: its document (JSON text, no meta) and meta values."""

    id: str
    doc: str
    version: int
    created: str
    last_modified: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Indexed:
    """The values of a resource that the directory keeps indexed or unique."""

    name: str  # userName (User) or displayName (Group)
    display_name: str | None = None
    external_id: str | None = None
    emails: frozenset[str] = frozenset()  # case-folded
    unique: frozenset[tuple[str, str]] = frozenset()  # (scope, folded value)


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: str
    type: str  # "User" | "Group" (a member), "direct" | "indirect" (a user's group)
    display: str | None


_RESOURCE_COLUMNS = ("id", "doc", "version", "created", "last_modified")


def _table(kind: EntityType) -> Table:
    return t.users if kind is EntityType.USER else t.groups


def id_column(kind: EntityType) -> Any:
    return _table(kind).c.id


def _columns(table: Table) -> list[Any]:
    return [table.c[name] for name in _RESOURCE_COLUMNS]


# Statements built once: SQLAlchemy then reuses their cache keys and compiled forms.
_KINDS = ((EntityType.USER, t.users), (EntityType.GROUP, t.groups))
_GET = {
    kind: select(*_columns(table)).where(table.c.id == bindparam("id")) for kind, table in _KINDS
}
_GET_FOR_UPDATE = {kind: stmt.with_for_update() for kind, stmt in _GET.items()}
_INSERT = {EntityType.USER: insert(t.users), EntityType.GROUP: insert(t.groups)}
_UPDATE = {kind: update(table).where(table.c.id == bindparam("rid")) for kind, table in _KINDS}
_INSERT_EMAILS = insert(t.user_emails)
_INSERT_MEMBERS = insert(t.group_members)
_INSERT_UNIQUE = insert(t.unique_values)
_COUNTER = select(t.counters.c.value).where(t.counters.c.name == bindparam("name"))


def _resource(row: Any) -> StoredResource:
    return StoredResource(
        id=row.id,
        doc=row.doc,
        version=row.version,
        created=row.created,
        last_modified=row.last_modified,
    )


# -- reading ---------------------------------------------------------------------------------


def get(
    tx: Transaction, kind: EntityType, resource_id: str, *, lock: bool = False
) -> StoredResource | None:
    stmt = tx.scoped((_GET_FOR_UPDATE if lock else _GET)[kind], _table(kind))
    row = tx.execute(stmt, {"id": resource_id}).first()
    return _resource(row) if row else None


def query(
    tx: Transaction,
    kind: EntityType,
    where: ColumnElement[bool] | None,
    *,
    order_by: Sequence[Any] = (),
    offset: int = 0,
    limit: int | None = None,
) -> list[StoredResource]:
    table = _table(kind)
    stmt = select(*_columns(table))
    if where is not None:
        stmt = stmt.where(where)
    stmt = stmt.order_by(*order_by, table.c.id).offset(offset or None).limit(limit)
    stmt = tx.scoped(stmt, table)
    return [_resource(row) for row in tx.execute(stmt)]


def holding(tx: Transaction, kind: EntityType, key: str) -> list[StoredResource]:
    """The resources whose document has a top-level ``key`` (e.g. an extension URN)."""
    table = _table(kind)
    has_key = JSONSQL(tx.conn.dialect.name).has_key(table.c.doc, key)
    return query(tx, kind, has_key)


def count(tx: Transaction, kind: EntityType, where: ColumnElement[bool] | None) -> int:
    table = _table(kind)
    stmt = select(func.count()).select_from(table)
    if where is not None:
        stmt = stmt.where(where)
    return int(tx.execute(tx.scoped(stmt, table)).scalar_one())


def kinds_of(tx: Transaction, ids: Iterable[str]) -> dict[str, EntityType]:
    """Which of ``ids`` exist, and whether each is a User or a Group.

    The rows found stay locked (FOR SHARE on PostgreSQL) until the transaction ends, so
    that a member cannot be deleted while it is being added: deleting takes the row lock
    first (SQLite has one writer at a time).
    """
    wanted = sorted(set(ids))
    found: dict[str, EntityType] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for kind, table in _KINDS:
            stmt = select(table.c.id).where(table.c.id.in_(chunk)).with_for_update(read=True)
            stmt = tx.scoped(stmt, table)
            found.update(dict.fromkeys(tx.execute(stmt).scalars(), kind))
    return found


def _walk(seed: Any) -> Any:
    """(user_id, group_id, depth) of every group a user is in: directly (depth 0) or
    through nested groups (depth 1); ``seed`` selects the users' own memberships."""
    gm = t.group_members
    walk = (
        select(gm.c.member_id.label("user_id"), gm.c.group_id, literal(0).label("depth"))
        .where(seed)
        .cte("walk", recursive=True)
    )
    parent = gm.alias("parent")
    return walk.union(
        select(walk.c.user_id, parent.c.group_id, literal(1)).where(
            parent.c.member_id == walk.c.group_id
        )
    )


def _user_groups_statement() -> Any:
    walk = _walk(t.group_members.c.member_id.in_(bindparam("ids", expanding=True)))
    return (
        select(walk.c.user_id, walk.c.group_id, func.min(walk.c.depth), t.groups.c.display_name)
        .join(t.groups, t.groups.c.id == walk.c.group_id)
        .group_by(walk.c.user_id, walk.c.group_id, t.groups.c.display_name)
        .order_by(t.groups.c.display_name, walk.c.group_id)
    )


def _user_with_groups_statement() -> Any:
    """One user and its groups in one round trip: a row per group (one row without any)."""
    walk = _walk(t.group_members.c.member_id == bindparam("id"))
    mine = (
        select(walk.c.group_id, func.min(walk.c.depth).label("depth"))
        .group_by(walk.c.group_id)
        .subquery("mine")
    )
    users, groups = t.users, t.groups
    return (
        select(*_columns(users), mine.c.group_id, mine.c.depth, groups.c.display_name)
        .select_from(
            users.outerjoin(mine, true()).outerjoin(groups, groups.c.id == mine.c.group_id)
        )
        .where(users.c.id == bindparam("id"))
        .order_by(groups.c.display_name, mine.c.group_id)
    )


_USER_WITH_GROUPS = _user_with_groups_statement()


def get_user_with_groups(
    tx: Transaction, user_id: str
) -> tuple[StoredResource | None, list[MemberRow]]:
    """A user and its groups (direct and indirect), with one statement."""
    rows = tx.execute(tx.scoped(_USER_WITH_GROUPS, t.users), {"id": user_id}).all()
    if not rows:
        return None, []
    groups = [
        MemberRow(row.group_id, "direct" if row.depth == 0 else "indirect", row.display_name)
        for row in rows
        if row.group_id is not None and row.display_name is not None
    ]
    return _resource(rows[0]), groups


_USER_GROUPS = _user_groups_statement()


def user_groups(tx: Transaction, user_ids: Sequence[str]) -> dict[str, list[MemberRow]]:
    """The groups of each user: direct ones (type 'direct') and, through nesting, indirect."""
    out: dict[str, list[MemberRow]] = defaultdict(list)
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        rows: Any = tx.execute(tx.scoped(_USER_GROUPS, t.groups), {"ids": chunk})
        for user_id, group_id, depth, display in rows:
            kind = "direct" if depth == 0 else "indirect"
            out[user_id].append(MemberRow(group_id, kind, display))
    return out


def _members_statement() -> Any:
    gm = t.group_members
    return (
        select(gm.c.group_id, gm.c.member_id, gm.c.member_type, gm.c.display)
        .where(gm.c.group_id.in_(bindparam("ids", expanding=True)))
        .order_by(gm.c.group_id, gm.c.member_id)
    )


_MEMBERS = _members_statement()


def members(tx: Transaction, group_ids: Sequence[str]) -> dict[str, list[MemberRow]]:
    """The members of each group: value, type and the display the client gave."""
    out: dict[str, list[MemberRow]] = defaultdict(list)
    for start in range(0, len(group_ids), 500):
        chunk = list(group_ids[start : start + 500])
        rows: Any = tx.execute(tx.scoped(_MEMBERS, t.group_members), {"ids": chunk})
        for group_id, member_id, kind, display in rows:
            out[group_id].append(MemberRow(member_id, kind, display))
    return out


def members_page(
    tx: Transaction, group_id: str, *, after: str | None, limit: int, most: int
) -> tuple[list[MemberRow], int]:
    """Up to ``limit`` of a group's members after the member id ``after``, in id order
    (a range of the primary key, however large the group), each with its name (userName
    or displayName; the display the client gave when the member has none); and how many
    members the group has, counted up to ``most`` (more: ``most + 1``)."""
    gm, users, groups = t.group_members, t.users, t.groups
    counted = tx.scoped(select(literal(1)).where(gm.c.group_id == group_id), gm)
    bounded = select(func.count()).select_from(counted.limit(most + 1).subquery())
    total = int(tx.execute(bounded).scalar_one())
    name = func.coalesce(users.c.user_name, groups.c.display_name, gm.c.display)
    stmt = (
        select(gm.c.member_id, gm.c.member_type, name.label("name"))
        .select_from(
            gm.outerjoin(users, users.c.id == gm.c.member_id).outerjoin(
                groups, groups.c.id == gm.c.member_id
            )
        )
        .where(gm.c.group_id == group_id)
        .order_by(gm.c.member_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(gm.c.member_id > after)
    rows = tx.execute(tx.scoped(stmt, gm))
    return [MemberRow(r.member_id, r.member_type, r.name) for r in rows], total


def member_displays(tx: Transaction, group_id: str) -> dict[str, str | None]:
    """The members of a group: member id -> display."""
    gm = t.group_members
    stmt = tx.scoped(select(gm.c.member_id, gm.c.display).where(gm.c.group_id == group_id), gm)
    return {row.member_id: row.display for row in tx.execute(stmt)}


def members_among(tx: Transaction, group_id: str, ids: Sequence[str]) -> set[str]:
    """Which of ``ids`` are members of the group already."""
    gm = t.group_members
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        chunk = list(ids[start : start + 1000])
        stmt = select(gm.c.member_id).where(gm.c.group_id == group_id, gm.c.member_id.in_(chunk))
        stmt = tx.scoped(stmt, gm)
        found.update(tx.execute(stmt).scalars())
    return found


def member_ids(
    tx: Transaction, group_id: str, where: ColumnElement[bool] | None = None
) -> list[str]:
    gm = t.group_members
    stmt = select(gm.c.member_id).where(gm.c.group_id == group_id)
    if where is not None:
        stmt = stmt.where(where)
    return list(tx.execute(tx.scoped(stmt, gm)).scalars())


def conflicts(
    tx: Transaction, kind: EntityType, values: Indexed, exclude_id: str | None
) -> list[str]:
    """Describe which unique values of ``values`` another resource already holds."""
    found: list[str] = []
    if kind is EntityType.USER:
        stmt = select(t.users.c.id).where(t.users.c.user_name_key == values.name.lower())
        stmt = tx.scoped(stmt, t.users)
        if any(row != exclude_id for row in tx.execute(stmt).scalars()):
            found.append(f"userName {values.name!r}")
    for scope, key in sorted(values.unique):
        stmt = select(t.unique_values.c.resource_id).where(
            t.unique_values.c.scope == scope, t.unique_values.c.value_key == key
        )
        stmt = tx.scoped(stmt, t.unique_values)
        if any(row != exclude_id for row in tx.execute(stmt).scalars()):
            found.append(f"{scope.split(':', 1)[1]} {key!r}")
    return found


# -- writing ---------------------------------------------------------------------------------


def _row(kind: EntityType, res: StoredResource, values: Indexed) -> dict[str, Any]:
    row: dict[str, Any] = {
        "doc": res.doc,
        "version": res.version,
        "created": res.created,
        "last_modified": res.last_modified,
        "external_id": values.external_id,
    }
    if kind is EntityType.USER:
        row.update(
            user_name=values.name,
            user_name_key=values.name.lower(),
            display_name=values.display_name,
            display_name_key=values.display_name.lower() if values.display_name else None,
        )
    else:
        row.update(display_name=values.name, display_name_key=values.name.lower())
    return row


def insert_resource(
    tx: Transaction,
    kind: EntityType,
    res: StoredResource,
    values: Indexed,
    *,
    password_hash: str | None = None,
) -> None:
    """Insert a user or group; raise ConflictError if a unique value is taken."""
    row = _row(kind, res, values)
    if kind is EntityType.USER:
        row["password_hash"] = password_hash
    try:
        tx.execute(_INSERT[kind], tx.tenant_values(_table(kind), {"id": res.id, **row}))
        _write_side_values(tx, kind, res.id, values, Indexed(name=""))
    except IntegrityError as exc:
        raise ConflictError("A unique value is already in use.") from exc


def update_resource(
    tx: Transaction,
    kind: EntityType,
    res: StoredResource,
    values: Indexed,
    before: Indexed,
    *,
    password_hash: str | None = None,
) -> None:
    """Rewrite a user or group; raise ConflictError if a unique value is taken. Renaming
    a group changes the ``groups`` of the users below it: they change too."""
    row = _row(kind, res, values)
    if password_hash is not None:
        row["password_hash"] = password_hash
    try:
        tx.execute(tx.scoped(_UPDATE[kind], _table(kind)), {"rid": res.id, **row})
        _write_side_values(tx, kind, res.id, values, before)
    except IntegrityError as exc:
        raise ConflictError("A unique value is already in use.") from exc
    if kind is EntityType.GROUP and values.name != before.name:
        touch_below(tx, [res.id], res.last_modified)


def _write_side_values(
    tx: Transaction, kind: EntityType, resource_id: str, values: Indexed, before: Indexed
) -> None:
    if kind is EntityType.USER and values.emails != before.emails:
        ue = t.user_emails
        gone = before.emails - values.emails
        if gone:
            stmt = delete(ue).where(ue.c.user_id == resource_id, ue.c.value_key.in_(gone))
            tx.execute(tx.scoped(stmt, ue))
        new = values.emails - before.emails
        if new:
            rows = [tx.tenant_values(ue, {"user_id": resource_id, "value_key": v}) for v in new]
            tx.execute(_INSERT_EMAILS, rows)
    if values.unique != before.unique:
        gone_keys = before.unique - values.unique
        uv = t.unique_values
        for scope, key in gone_keys:
            stmt = delete(uv).where(
                uv.c.scope == scope, uv.c.value_key == key, uv.c.resource_id == resource_id
            )
            tx.execute(tx.scoped(stmt, uv))
        new_keys = values.unique - before.unique
        if new_keys:
            tx.execute(
                _INSERT_UNIQUE,
                [
                    tx.tenant_values(uv, {"scope": s, "value_key": k, "resource_id": resource_id})
                    for s, k in new_keys
                ],
            )


def touch(tx: Transaction, kind: EntityType, ids: Iterable[str], now: str) -> None:
    """Mark resources as changed (new version and lastModified) without rewriting them."""
    wanted = list(ids)
    if not wanted:
        return
    table = _table(kind)
    for start in range(0, len(wanted), 500):
        stmt = (
            update(table)
            .where(table.c.id.in_(wanted[start : start + 500]))
            .values(version=table.c.version + 1, last_modified=now)
        )
        tx.execute(tx.scoped(stmt, table))


def _touch_users_statement(wanted: Any) -> Any:
    """A new version and lastModified for the users ``wanted`` selects, locking their rows
    in id order (two transactions touching the same users never deadlock)."""
    users = t.users
    targets = select(users.c.id).where(wanted).order_by(users.c.id).with_for_update()
    return (
        update(users)
        .where(users.c.id.in_(targets.scalar_subquery()))
        .values(version=users.c.version + 1, last_modified=bindparam("now"))
    )


def _below_statement() -> Any:
    """Users below the groups ``ids``: their members and, through nesting, their members'."""
    gm = t.group_members
    seed = select(gm.c.member_id).where(gm.c.group_id.in_(bindparam("ids", expanding=True)))
    down = seed.cte("down", recursive=True)
    down = down.union(select(gm.c.member_id).where(gm.c.group_id == down.c.member_id))
    return _touch_users_statement(t.users.c.id.in_(select(down.c.member_id)))


_TOUCH_USERS = _touch_users_statement(t.users.c.id.in_(bindparam("ids", expanding=True)))
_TOUCH_BELOW = _below_statement()


def touch_members(tx: Transaction, members: Sequence[MemberRow], now: str) -> None:
    """Members joined or left a group: the users among them and the users below the
    groups among them have new ``groups``, so a new version and lastModified."""
    _touch_users(tx, [m.id for m in members if m.type == EntityType.USER.resource_type], now)
    touch_below(tx, [m.id for m in members if m.type == EntityType.GROUP.resource_type], now)


def _touch_users(tx: Transaction, ids: Sequence[str], now: str) -> None:
    for start in range(0, len(ids), 500):
        stmt = tx.scoped(_TOUCH_USERS, t.users)
        tx.execute(stmt, {"ids": list(ids[start : start + 500]), "now": now})


def touch_below(tx: Transaction, group_ids: Sequence[str], now: str) -> None:
    """The users below groups (renamed, deleted, joining or leaving a group) change."""
    for start in range(0, len(group_ids), 500):
        stmt = tx.scoped(_TOUCH_BELOW, t.users)
        tx.execute(stmt, {"ids": list(group_ids[start : start + 500]), "now": now})


def lock_parents(tx: Transaction, member_id: str) -> None:
    """Lock the groups a user or group is a member of, in id order: a writer locks groups
    before users, so deleting a member waits for its groups' writers, not the reverse."""
    gm, groups = t.group_members, t.groups
    parents = select(gm.c.group_id).where(gm.c.member_id == member_id)
    stmt = select(groups.c.id).where(groups.c.id.in_(parents)).order_by(groups.c.id)
    tx.execute(tx.scoped(stmt, groups).with_for_update()).all()


def delete_resource(tx: Transaction, kind: EntityType, resource_id: str, now: str) -> bool:
    """Delete a user or group with its memberships; groups that lose a member change too,
    and so do the users below a deleted group (their ``groups`` lose it)."""
    table = _table(kind)
    gm = t.group_members
    uv = t.unique_values
    parents_of = tx.scoped(select(gm.c.group_id).where(gm.c.member_id == resource_id), gm)
    parents = list(tx.execute(parents_of).scalars())
    touch(tx, EntityType.GROUP, parents, now)
    if kind is EntityType.GROUP:
        touch_below(tx, [resource_id], now)
    tx.execute(tx.scoped(delete(gm).where(gm.c.member_id == resource_id), gm))
    tx.execute(tx.scoped(delete(uv).where(uv.c.resource_id == resource_id), uv))
    deleted = tx.execute(tx.scoped(delete(table).where(table.c.id == resource_id), table)).rowcount
    return bool(deleted)


def add_members(tx: Transaction, group_id: str, new: Sequence[MemberRow], now: str) -> int:
    """Add the members that are not members yet (they change: see touch_members); how
    many were added.

    The caller holds the group's row lock, so no other transaction adds the same member.
    """
    added = 0
    for start in range(0, len(new), 1000):
        chunk = new[start : start + 1000]
        present = members_among(tx, group_id, [m.id for m in chunk])
        fresh = [m for m in chunk if m.id not in present]
        if fresh:
            tx.execute(
                _INSERT_MEMBERS,
                [
                    tx.tenant_values(
                        t.group_members,
                        {
                            "group_id": group_id,
                            "member_id": m.id,
                            "member_type": m.type,
                            "display": m.display,
                        },
                    )
                    for m in fresh
                ],
            )
            touch_members(tx, fresh, now)
            added += len(fresh)
    return added


def set_displays(tx: Transaction, group_id: str, displays: dict[str, str | None]) -> int:
    """Give members of a group new display values (member id -> display)."""
    gm = t.group_members
    changed = 0
    for member_id, display in sorted(displays.items()):
        stmt = (
            update(gm)
            .where(gm.c.group_id == group_id, gm.c.member_id == member_id)
            .values(display=display)
        )
        changed += tx.execute(tx.scoped(stmt, gm)).rowcount
    return changed


def remove_members(tx: Transaction, group_id: str, ids: Sequence[str] | None, now: str) -> int:
    """Remove the given members (all of them when ``ids`` is None); those removed change
    (see touch_members). Returns how many."""
    gm = t.group_members
    if ids is None:
        touch_below(tx, [group_id], now)
        return int(tx.execute(tx.scoped(delete(gm).where(gm.c.group_id == group_id), gm)).rowcount)
    removed = 0
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        gone = [
            MemberRow(row.member_id, row.member_type, None)
            for row in tx.execute(
                tx.scoped(
                    delete(gm).where(gm.c.group_id == group_id, gm.c.member_id.in_(chunk)), gm
                ).returning(gm.c.member_id, gm.c.member_type)
            )
        ]
        touch_members(tx, gone, now)
        removed += len(gone)
    return removed


# -- custom schemas and counters -------------------------------------------------------------


def read_counter(tx: Transaction | Connection, name: str) -> int:
    """A counter that moves when something cached in every process changes (custom schemas,
    inbound certificates); 0 before it first moves."""
    stmt = _COUNTER if isinstance(tx, Connection) else tx.scoped(_COUNTER, t.counters)
    value = tx.execute(stmt, {"name": name}).scalar()
    return int(value or 0)


def bump_counter(tx: Transaction | Connection, name: str) -> None:
    counters = t.counters
    stmt = update(counters).where(counters.c.name == name).values(value=counters.c.value + 1)
    if isinstance(tx, Transaction):
        stmt = tx.scoped(stmt, counters)
        row = tx.tenant_values(counters, {"name": name, "value": 1})
    else:
        row = {"name": name, "value": 1}
    if not tx.execute(stmt).rowcount:
        tx.execute(insert(counters).values(**row))


def custom_schemas(tx: Transaction) -> list[tuple[str, str, str]]:
    """(id, resource type, JSON text) of every custom schema, oldest first."""
    cs = t.custom_schemas
    stmt = select(cs.c.id, cs.c.resource_type, cs.c.doc).order_by(cs.c.created, cs.c.id)
    return [(row.id, row.resource_type, row.doc) for row in tx.execute(tx.scoped(stmt, cs))]


def insert_custom_schema(
    tx: Transaction, schema_id: str, kind: EntityType, doc: str, now: str
) -> None:
    cs = t.custom_schemas
    row = {"id": schema_id, "resource_type": kind.resource_type, "doc": doc, "created": now}
    try:
        tx.execute(insert(cs).values(**tx.tenant_values(cs, row)))
    except IntegrityError as exc:
        raise ConflictError(f"The schema {schema_id} already exists.") from exc


def delete_custom_schema(tx: Transaction, schema_id: str) -> bool:
    cs = t.custom_schemas
    return bool(tx.execute(tx.scoped(delete(cs).where(cs.c.id == schema_id), cs)).rowcount)


def delete_unique_scopes(tx: Transaction, prefix: str) -> None:
    uv = t.unique_values
    tx.execute(tx.scoped(delete(uv).where(uv.c.scope.startswith(prefix, autoescape=True)), uv))


def rewrite_documents(tx: Transaction, kind: EntityType, docs: Sequence[dict[str, Any]]) -> None:
    """Store new documents (``id``, ``doc``, ``version``, ``last_modified``) in one batch."""
    if not docs:
        return
    table = _table(kind)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("rid"))
        .values(
            doc=bindparam("doc"),
            version=bindparam("version"),
            last_modified=bindparam("last_modified"),
        )
    )
    tx.execute(
        tx.scoped(stmt, table),
        [
            {
                "rid": d["id"],
                "doc": d["doc"],
                "version": d["version"],
                "last_modified": d["last_modified"],
            }
            for d in docs
        ],
    )
