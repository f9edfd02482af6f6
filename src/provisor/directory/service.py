"""The Local Identity Directory: a SCIM 2.0 user and group store over provisor's database.

This module holds the SCIM semantics (validation, PATCH, mutability, uniqueness, versions,
paging) and who may use them; :mod:`.store` holds the SQL and :mod:`.render` the output.
Every write runs in one transaction: it is complete or absent, never half done.

Who may: users are managed with ``manage_users``, groups with ``manage_groups`` (``admin``
holds both); ``view`` reads both (read-only administration) and changes neither. An operation
on one resource type declares what admits a caller to the directory (``@requires``: either
manage permission, and ``view`` for reads) and checks the one of its type when called; an
adapter asks :meth:`Directory.permission` (changes) or :meth:`Directory.readers` (reads) for
a type's permissions to refuse a caller before it reads the request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from argon2 import PasswordHasher

from provisor.auth.passwords import STANDARD, hash_secret
from provisor.context import Context, Permission, requires
from provisor.directory import render, store
from provisor.directory.catalog import SchemaCatalog
from provisor.directory.store import Indexed, StoredResource
from provisor.errors import ConflictError, PreconditionFailedError
from provisor.scim import schemas as s
from provisor.scim.attributes import AttrType, Schema, Uniqueness
from provisor.scim.errors import (
    ForbiddenError,
    InvalidFilterError,
    InvalidValueError,
    MemberNotFoundError,
    ResourceNotFoundError,
    SCIMError,
    UniquenessError,
)
from provisor.scim.limits import DEFAULT_LIMITS, Limits
from provisor.scim.members import Member, MemberAction, MemberChange, parse_members, split_members
from provisor.scim.patch import Operation, parse_patch_request
from provisor.scim.projection import Projection
from provisor.scim.registry import Registry, ResourceType
from provisor.storage.database import Database, Transaction
from provisor.timestamps import now
from provisor.types import EntityType, JSONObject

MANAGES = {EntityType.USER: Permission.MANAGE_USERS, EntityType.GROUP: Permission.MANAGE_GROUPS}
MANAGERS = (Permission.MANAGE_USERS, Permission.MANAGE_GROUPS)
"""Either admits a caller to change the directory (each change checks its type's; bulk)."""
READERS = (*MANAGERS, Permission.VIEW)
"""Any admits a caller to read the directory (discovery, searches across types)."""

# How many users and groups together a tenant's directory may hold (its quota
# ``directoryEntities``), None for no limit: given by the composition root.
EntityQuota = Callable[[str], int | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryOptions:
    unique_emails: bool = True
    default_count: int = 100
    max_count: int = 1000
    limits: Limits = DEFAULT_LIMITS
    hasher: PasswordHasher = STANDARD  # how users' passwords are hashed


@dataclass(frozen=True, slots=True)
class Rendered:
    """A resource ready to send: its JSON text (None for 304/204), ETag and location."""

    body: bytes | None
    etag: str
    location: str

    @property
    def id(self) -> str:
        return self.location.rsplit("/", 1)[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedCreate:
    """A resource to create, checked against the schemas of one generation, as stored."""

    kind: EntityType
    body: Any  # as sent: checked again if the schemas change before the write
    generation: int
    res: StoredResource
    values: Indexed
    members: tuple[Member, ...]
    password_hash: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListQuery:
    filter: str | None = None
    sort_by: str | None = None
    sort_order: str | None = None
    start_index: int | None = None
    count: int | None = None
    start_id: str | None = None
    attributes: str | None = None
    excluded_attributes: str | None = None


def etag_matches(header: str, version: int) -> bool:
    """Weak comparison of an If-Match / If-None-Match header with a version."""
    wanted = render.etag(version)
    for tag in (part.strip() for part in header.split(",")):
        if tag == "*" or tag == wanted or tag == wanted[2:]:
            return True
    return False


class Directory:
    """The tenant's users and groups, served with SCIM semantics."""

    def __init__(self, db: Database, options: DirectoryOptions | None = None) -> None:
        self.db = db
        self.options = options or DirectoryOptions()
        self.catalog = SchemaCatalog(db, self.options.limits)
        self.entity_quota: EntityQuota | None = None  # set by the composition root
        # Cursor paging reads large directories in constant time per page: the total
        # counted for the first page (startId=initial) serves the pages after it.
        self._totals = _Totals()

    # -- who may ------------------------------------------------------------------------------

    @staticmethod
    def permission(kind: EntityType) -> Permission:
        """The permission that manages ``kind``: an operation on users needs
        ``manage_users``, on groups ``manage_groups`` (or ``admin``)."""
        return MANAGES[kind]

    @staticmethod
    def readers(kind: EntityType) -> tuple[Permission, Permission]:
        """The permissions that read ``kind``: its manage permission, or ``view``."""
        return MANAGES[kind], Permission.VIEW

    @staticmethod
    def may(ctx: Context, kind: EntityType) -> bool:
        """Whether the call's actor may read and change resources of ``kind``."""
        return ctx.allows(MANAGES[kind])

    @staticmethod
    def may_read(ctx: Context, kind: EntityType) -> bool:
        """Whether the call's actor may read resources of ``kind``."""
        return ctx.allows(*Directory.readers(kind))

    # -- discovery ------------------------------------------------------------------------------

    @requires(*READERS)
    def resource_types(self, ctx: Context) -> Registry:
        """The current schemas, to describe the resource types (any reader)."""
        return self.catalog.registry(ctx)

    @requires(Permission.MANAGE_USERS, Permission.VIEW)
    def schemas(self, ctx: Context) -> Registry:
        """The current schemas, built in and custom (custom schemas extend users)."""
        return self.catalog.registry(ctx)

    @requires(Permission.MANAGE_USERS)
    def create_schema(self, ctx: Context, body: Any) -> Schema:
        """Add a custom schema (it extends User)."""
        return self.catalog.create(ctx, body)

    @requires(Permission.MANAGE_USERS)
    def delete_schema(self, ctx: Context, schema_id: str) -> None:
        """Delete a custom schema and every value users hold in it."""
        self.catalog.delete(ctx, schema_id)

    # -- reading ------------------------------------------------------------------------------

    @requires(*READERS)
    def get(
        self,
        ctx: Context,
        kind: EntityType,
        resource_id: str,
        base_url: str,
        *,
        attributes: str | None = None,
        excluded: str | None = None,
        if_none_match: str | None = None,
    ) -> Rendered:
        ctx.require(*self.readers(kind), action=f"read {kind.value}s")
        with self.db.read(ctx) as tx:
            projection = self._projection(tx, kind, attributes, excluded)
            related: list[store.MemberRow] | None = None
            if kind is EntityType.USER and projection.wants("groups"):
                res, related = store.get_user_with_groups(tx, resource_id)
            else:
                res = store.get(tx, kind, resource_id)
            if res is None:
                raise ResourceNotFoundError(f"{kind.resource_type} {resource_id} not found.")
            location = render.location(kind, res.id, base_url)
            if if_none_match and etag_matches(if_none_match, res.version):
                return Rendered(None, render.etag(res.version), location)
            if kind is EntityType.GROUP:
                related = self._related(tx, kind, [res.id], projection).get(res.id)
        body = render.resource(kind, res, base_url, projection, related)
        return Rendered(body, render.etag(res.version), location)

    def _projection(
        self, tx: Transaction, kind: EntityType, attributes: str | None, excluded: str | None
    ) -> Projection:
        if attributes is None and excluded is None:
            return _DEFAULT[kind]
        rt = self._rt(self.catalog.tools(tx, fresh=False).registry, kind)
        return Projection.parse(rt, attributes, excluded)

    @staticmethod
    def _rt(registry: Registry, kind: EntityType) -> ResourceType:
        return registry.user if kind is EntityType.USER else registry.group

    def _related(
        self, tx: Transaction, kind: EntityType, ids: Sequence[str], projection: Projection
    ) -> dict[str, list[store.MemberRow]]:
        if kind is EntityType.USER:
            return store.user_groups(tx, ids) if projection.wants("groups") else {}
        wanted = projection.wants("members") or projection.requests(s.SAP_GROUP, "children")
        return store.members(tx, ids) if wanted else {}

    def _page(
        self,
        tx: Transaction,
        kind: EntityType,
        where: Any,
        projection: Projection,
        *,
        order: Sequence[Any] = (),
        offset: int = 0,
        limit: int,
    ) -> tuple[list[StoredResource], dict[str, list[store.MemberRow]]]:
        """A page of resources with their groups (User) or members (Group)."""
        if not limit:
            return [], {}
        rows = store.query(tx, kind, where, order_by=order, offset=offset, limit=limit)
        return rows, self._related(tx, kind, [r.id for r in rows], projection)

    def _count(self, q: ListQuery) -> int:
        opts = self.options
        return opts.default_count if q.count is None else max(0, min(q.count, opts.max_count))

    @requires(*READERS)
    def search(self, ctx: Context, kind: EntityType, q: ListQuery, base_url: str) -> bytes:
        """A ListResponse page: index paging (startIndex) or SAP cursor paging (startId)."""
        ctx.require(*self.readers(kind), action=f"list {kind.value}s")
        count = self._count(q)
        with self.db.read(ctx) as tx:
            where = self.catalog.compile(tx, kind, q.filter)
            compiler = self.catalog.tools(tx, fresh=False).filters[kind]
            projection = self._projection(tx, kind, q.attributes, q.excluded_attributes)
            cursor: tuple[str, str] | None = None
            start_index: int | None = None
            if q.start_id is not None:
                paged = where
                if q.start_id != "initial":
                    after = store.id_column(kind) >= q.start_id
                    paged = after if where is None else (where & after)
                rows, related = self._page(tx, kind, paged, projection, limit=count + 1)
                next_id = rows[count].id if len(rows) > count else "end"
                rows = rows[:count]
                cursor = (q.start_id, next_id)
            else:
                start_index = max(1, q.start_index or 1)
                order: list[Any] = []
                if q.sort_by:
                    key = compiler.sort_key(q.sort_by)
                    descending = (q.sort_order or "ascending").lower() == "descending"
                    order.append(key.desc().nulls_last() if descending else key.asc().nulls_last())
                rows, related = self._page(
                    tx,
                    kind,
                    where,
                    projection,
                    order=order,
                    offset=start_index - 1,
                    limit=count,
                )
            first_page = start_index in (None, 1) and q.start_id in (None, "initial")
            totals_key = (ctx.tenant, kind, q.filter)
            if first_page and len(rows) < count:
                total = len(rows)  # the page holds every match: no need to count them
            elif q.start_id not in (None, "initial"):
                total = self._totals.get(totals_key) or store.count(tx, kind, where)
            else:
                total = store.count(tx, kind, where)
            if q.start_id is not None:
                self._totals.put(totals_key, total)
        items = [
            render.resource(kind, res, base_url, projection, related.get(res.id)) for res in rows
        ]
        return render.list_response(items, total, start_index, cursor)

    @requires(*READERS)
    def search_all(self, ctx: Context, q: ListQuery, base_url: str) -> bytes:
        """A search across the resource types the caller may read (POST /.search): users
        first, then groups."""
        kinds = [kind for kind in EntityType if self.may_read(ctx, kind)]
        if q.sort_by or q.start_id:
            raise InvalidValueError(
                "sortBy and startId apply to one resource type: search /Users or /Groups."
            )
        count = self._count(q)
        start_index = max(1, q.start_index or 1)
        items: list[bytes] = []
        total = 0
        with self.db.read(ctx) as tx:
            wheres: dict[EntityType, Any] = {}
            failure: InvalidFilterError | None = None
            for kind in kinds:
                try:
                    wheres[kind] = self.catalog.compile(tx, kind, q.filter)
                except InvalidFilterError as exc:  # names attributes the type does not have
                    failure = failure or exc
            if failure is not None and not wheres:
                raise failure
            skip = start_index - 1
            for kind, where in wheres.items():
                matched = store.count(tx, kind, where)
                total += matched
                take = min(count - len(items), max(0, matched - skip))
                if take > 0:
                    projection = self._projection(tx, kind, q.attributes, q.excluded_attributes)
                    rows = store.query(tx, kind, where, offset=skip, limit=take)
                    related = self._related(tx, kind, [r.id for r in rows], projection)
                    items.extend(
                        render.resource(kind, r, base_url, projection, related.get(r.id))
                        for r in rows
                    )
                skip = max(0, skip - matched)
        return render.list_response(items, total, start_index)

    @requires(*READERS)
    def members(
        self,
        ctx: Context,
        group_id: str,
        *,
        after: str | None = None,
        limit: int = 50,
        most: int = 10_000,
    ) -> tuple[list[store.MemberRow], int, str | None]:
        """A page of a group's members (id, type, name) after the member id ``after``, in
        id order; how many members it has, counted up to ``most`` (more: ``most + 1``); and
        the ``after`` of the next page (None on the last)."""
        ctx.require(*self.readers(EntityType.GROUP), action="read groups")
        limit = max(1, min(limit, self.options.max_count))
        with self.db.read(ctx) as tx:
            if store.get(tx, EntityType.GROUP, group_id) is None:
                raise ResourceNotFoundError(f"Group {group_id} not found.")
            rows, total = store.members_page(
                tx, group_id, after=after, limit=limit + 1, most=max(0, most)
            )
        following = rows[limit - 1].id if len(rows) > limit else None
        return rows[:limit], total, following

    # -- writing ------------------------------------------------------------------------------

    @requires(*MANAGERS)
    def create(
        self,
        ctx: Context,
        kind: EntityType,
        body: Any,
        base_url: str,
        *,
        attributes: str | None = None,
        excluded: str | None = None,
    ) -> Rendered:
        ctx.require(MANAGES[kind], action=f"create {kind.value}s")
        prepared = self._prepare(ctx, kind, body)
        return self.create_prepared(
            ctx, prepared, base_url, attributes=attributes, excluded=excluded
        )

    @requires(*MANAGERS)
    def prepare_create(self, ctx: Context, kind: EntityType, body: Any) -> PreparedCreate:
        """Check a resource to create and build what will be stored, without the writer
        (``create_prepared`` writes it): Bulk prepares its next operations this way while
        another request holds the writer."""
        ctx.require(MANAGES[kind], action=f"create {kind.value}s")
        return self._prepare(ctx, kind, body)

    @requires(*MANAGERS)
    def create_prepared(
        self,
        ctx: Context,
        prepared: PreparedCreate,
        base_url: str,
        *,
        attributes: str | None = None,
        excluded: str | None = None,
        with_body: bool = True,
    ) -> Rendered:
        """Store a prepared resource (checked again if the schemas changed since);
        ``with_body=False``: its ETag and location only."""
        ctx.require(MANAGES[prepared.kind], action=f"create {prepared.kind.value}s")
        while True:
            created = self._store(ctx, prepared, base_url, attributes, excluded, with_body)
            if created is not None:
                return created
            prepared = self._prepare(ctx, prepared.kind, prepared.body)

    def _prepare(self, ctx: Context, kind: EntityType, body: Any) -> PreparedCreate:
        with self.db.read(ctx) as tx:
            tools = self.catalog.tools(tx, fresh=False)  # the write checks their generation
            try:
                doc = tools.checkers[kind].check(body)
            except SCIMError:  # maybe a custom schema this process has not seen yet
                fresh = self.catalog.tools(tx)
                if fresh.generation == tools.generation:
                    raise
                tools = fresh
                doc = tools.checkers[kind].check(body)
        members = self._take_members(doc, kind)
        password = doc.pop("password", None)
        password_hash = hash_secret(password, self.options.hasher) if password is not None else None
        resource_id = str(uuid.uuid4())
        doc = _with_id(doc, resource_id)
        if kind is EntityType.USER:
            _assign_user_uuid(doc, requested=_lists_schema(body, s.SAP_USER))
        stamp = now()
        return PreparedCreate(
            kind=kind,
            body=body,
            generation=tools.generation,
            res=StoredResource(
                id=resource_id,
                doc=orjson.dumps(doc).decode(),
                version=1,
                created=stamp,
                last_modified=stamp,
            ),
            values=self._indexed(kind, self._rt(tools.registry, kind), doc),
            members=members,
            password_hash=password_hash,
        )

    def _store(
        self,
        ctx: Context,
        prepared: PreparedCreate,
        base_url: str,
        attributes: str | None,
        excluded: str | None,
        with_body: bool,
    ) -> Rendered | None:
        """Write a prepared resource; None (nothing written) when the schemas changed
        between its check and the write."""
        kind, res = prepared.kind, prepared.res
        related: list[store.MemberRow] | None = None
        with self.db.write(ctx, grouped=True) as tx:
            if self.catalog.tools(tx).generation != prepared.generation:
                return None
            self._within_quota(tx, kind)
            self._insert(tx, kind, res, prepared.values, prepared.password_hash)
            projection = self._projection(tx, kind, attributes, excluded)
            if prepared.members:
                adding = [MemberChange(MemberAction.ADD, prepared.members)]
                self._apply_members(tx, res.id, adding, res.created)
                if with_body:
                    related = self._related(tx, kind, [res.id], projection).get(res.id)
        location = render.location(kind, res.id, base_url)
        if not with_body:
            return Rendered(None, render.etag(1), location)
        body_out = render.resource(kind, res, base_url, projection, related)
        return Rendered(body_out, render.etag(1), location)

    def _within_quota(self, tx: Transaction, kind: EntityType) -> None:
        """ForbiddenError (403) when the tenant's directory holds as many users and groups
        as its quota allows; no query when the tenant has no quota (the default)."""
        limit = self.entity_quota(tx.ctx.tenant) if self.entity_quota is not None else None
        if limit is None:
            return
        held = store.count(tx, EntityType.USER, None) + store.count(tx, EntityType.GROUP, None)
        if held >= limit:
            raise ForbiddenError(
                f"The directory holds {held} users and groups, its quota (directoryEntities) "
                f"is {limit}: this {kind.value} cannot be created. Delete users or groups, or "
                "ask the installation's operator for a larger quota."
            )

    def _insert(
        self,
        tx: Transaction,
        kind: EntityType,
        res: StoredResource,
        values: Indexed,
        password_hash: str | None,
    ) -> None:
        try:
            store.insert_resource(tx, kind, res, values, password_hash=password_hash)
        except ConflictError as exc:
            raise self._uniqueness(tx, kind, values, res.id) from exc

    def _uniqueness(
        self, tx: Transaction, kind: EntityType, values: Indexed, exclude_id: str | None
    ) -> UniquenessError:
        """What a write that broke a uniqueness constraint conflicts with: read in its own
        transaction on SQLite (which sees the writes before it in its batch), in another
        on PostgreSQL (whose transaction the failed statement aborted)."""
        if self.db.is_sqlite:
            taken = store.conflicts(tx, kind, values, exclude_id)
        else:
            with self.db.read(tx.ctx) as other:
                taken = store.conflicts(other, kind, values, exclude_id)
        what = ", ".join(taken) if taken else "a unique value"
        return UniquenessError(f"Another {kind.value} already has {what}.")

    @requires(*MANAGERS)
    def replace(
        self,
        ctx: Context,
        kind: EntityType,
        resource_id: str,
        body: Any,
        base_url: str,
        if_match: str | None = None,
        *,
        attributes: str | None = None,
        excluded: str | None = None,
    ) -> Rendered:
        """Replace a resource; ``if_match``: the ETag(s) it must be at (If-Match)."""
        ctx.require(MANAGES[kind], action=f"replace {kind.value}s")
        with self.db.read(ctx) as tx:
            self.catalog.tools(tx).checkers[kind].check(body)  # fail fast, before the lock
        password = body.get("password") if isinstance(body, dict) else None
        password_hash = (
            hash_secret(password, self.options.hasher) if isinstance(password, str) else None
        )
        with self.db.write(ctx, grouped=True) as tx:
            checker = self.catalog.tools(tx).checkers[kind]
            current = self._current(tx, kind, resource_id, if_match)
            old = orjson.loads(current.doc)
            doc = _with_id(checker.check(body, existing=old), resource_id)
            members = self._take_members(doc, kind)
            doc.pop("password", None)
            if kind is EntityType.USER:
                _assign_user_uuid(doc, requested=_lists_schema(body, s.SAP_USER))
            changes = (
                [MemberChange(MemberAction.REPLACE, members)] if kind is EntityType.GROUP else []
            )
            res = self._save(tx, kind, current, old, doc, changes, password_hash)
            projection = self._projection(tx, kind, attributes, excluded)
            related = self._related(tx, kind, [resource_id], projection).get(resource_id)
        body_out = render.resource(kind, res, base_url, projection, related)
        return Rendered(body_out, render.etag(res.version), render.location(kind, res.id, base_url))

    @requires(*MANAGERS)
    def patch(
        self,
        ctx: Context,
        kind: EntityType,
        resource_id: str,
        body: Any,
        base_url: str,
        *,
        if_match: str | None = None,
        attributes: str | None = None,
        excluded: str | None = None,
    ) -> Rendered:
        """Modify a resource (PatchOp); ``if_match``: the ETag(s) it must be at."""
        ctx.require(MANAGES[kind], action=f"change {kind.value}s")
        ops = parse_patch_request(body, self.options.limits)
        doc_ops, changes = split_members(ops) if kind is EntityType.GROUP else (ops, [])
        password = _password_in(doc_ops) if kind is EntityType.USER else None
        password_hash = (
            hash_secret(password, self.options.hasher) if password is not None else None
        )  # not in the lock
        with self.db.write(ctx, grouped=True) as tx:
            tools = self.catalog.tools(tx)
            patcher, checker = tools.patchers[kind], tools.checkers[kind]
            current = self._current(tx, kind, resource_id, if_match)
            old = orjson.loads(current.doc)
            doc = old
            if doc_ops:
                doc = _with_id(
                    checker.check(patcher.apply(old, doc_ops), existing=old), resource_id
                )
                doc.pop("password", None)
                if kind is EntityType.USER:
                    _assign_user_uuid(doc)
            res = self._save(tx, kind, current, old, doc, changes, password_hash)
            projection = self._projection(tx, kind, attributes, excluded)
            related = self._related(tx, kind, [resource_id], projection).get(resource_id)
        body_out = render.resource(kind, res, base_url, projection, related)
        return Rendered(body_out, render.etag(res.version), render.location(kind, res.id, base_url))

    @requires(*MANAGERS)
    def delete(
        self, ctx: Context, kind: EntityType, resource_id: str, if_match: str | None = None
    ) -> None:
        """Delete a resource; ``if_match``: the ETag(s) it must be at."""
        ctx.require(MANAGES[kind], action=f"delete {kind.value}s")
        with self.db.write(ctx, grouped=True) as tx:
            store.lock_parents(tx, resource_id)  # groups before members, as every writer
            self._current(tx, kind, resource_id, if_match)
            store.delete_resource(tx, kind, resource_id, now())

    # -- helpers --------------------------------------------------------------------------------

    def _current(
        self, tx: Transaction, kind: EntityType, resource_id: str, if_match: str | None
    ) -> StoredResource:
        current = store.get(tx, kind, resource_id, lock=True)
        if current is None:
            raise ResourceNotFoundError(f"{kind.resource_type} {resource_id} not found.")
        if if_match is not None and not etag_matches(if_match, current.version):
            raise PreconditionFailedError(
                f"{kind.resource_type} {resource_id} is at version {render.etag(current.version)}, "
                f"not {if_match}."
            )
        return current

    def _save(
        self,
        tx: Transaction,
        kind: EntityType,
        current: StoredResource,
        old: JSONObject,
        doc: JSONObject,
        changes: list[MemberChange],
        password_hash: str | None,
    ) -> StoredResource:
        """Write a new state of a resource; the version moves only if something changed."""
        rt = self._rt(self.catalog.tools(tx, fresh=False).registry, kind)
        stamp = now()
        members_changed = self._apply_members(tx, current.id, changes, stamp)
        if doc == old and not members_changed and password_hash is None:
            return current
        res = StoredResource(
            id=current.id,
            doc=orjson.dumps(doc).decode() if doc != old else current.doc,
            version=current.version + 1,
            created=current.created,
            last_modified=stamp,
        )
        values, before = self._indexed(kind, rt, doc), self._indexed(kind, rt, old)
        try:
            store.update_resource(tx, kind, res, values, before, password_hash=password_hash)
        except ConflictError as exc:
            raise self._uniqueness(tx, kind, values, current.id) from exc
        return res

    def _take_members(self, doc: JSONObject, kind: EntityType) -> tuple[Member, ...]:
        if kind is not EntityType.GROUP:
            return ()
        return parse_members(doc.pop("members", None))

    def _apply_members(
        self, tx: Transaction, group_id: str, changes: list[MemberChange], stamp: str
    ) -> bool:
        """Apply membership changes in order, at time ``stamp``; whether the member list
        changed."""
        changed = False
        compiler = self.catalog.tools(tx, fresh=False).filters[EntityType.GROUP]
        for change in changes:
            if change.action in (MemberAction.REPLACE, MemberAction.REMOVE_ALL):
                changed |= self._replace_members(tx, group_id, change.members, stamp)
            elif change.action is MemberAction.ADD:
                changed |= self._add_members(tx, group_id, change.members, stamp)
            elif change.action is MemberAction.REMOVE:
                ids = sorted({m.value for m in change.members})
                changed |= store.remove_members(tx, group_id, ids, stamp) > 0
            elif change.action is MemberAction.REMOVE_MATCHING:
                assert change.value_filter is not None
                cond = compiler.members_filter(change.value_filter)
                ids = store.member_ids(tx, group_id, cond)
                if ids:
                    changed |= store.remove_members(tx, group_id, ids, stamp) > 0
        return changed

    def _replace_members(
        self, tx: Transaction, group_id: str, members: Sequence[Member], stamp: str
    ) -> bool:
        """Make ``members`` the member list, displays included; whether anything changed."""
        wanted = {m.value: m.display for m in members}
        current = store.member_displays(tx, group_id)
        changed = False
        gone = sorted(current.keys() - wanted.keys())
        if gone:
            changed |= store.remove_members(tx, group_id, gone, stamp) > 0
        renamed = {k: v for k, v in wanted.items() if k in current and current[k] != v}
        if renamed:
            changed |= store.set_displays(tx, group_id, renamed) > 0
        to_add = tuple(m for m in members if m.value not in current)
        if to_add:
            changed |= self._add_members(tx, group_id, to_add, stamp)
        return changed

    def _add_members(
        self, tx: Transaction, group_id: str, members: Sequence[Member], stamp: str
    ) -> bool:
        """Add members, each a user or group of the directory: an id that names neither is
        refused (404), so no group ever holds a dangling member. Members already there are
        left as they are, and not locked: deleting one of them, which touches this group,
        does not wait for us while we wait for it."""
        if any(m.value == group_id for m in members):
            raise InvalidValueError("A group cannot be a member of itself.")
        present = store.members_among(tx, group_id, sorted({m.value for m in members}))
        new = [m for m in members if m.value not in present]
        kinds = store.kinds_of(tx, (m.value for m in new))
        rows: dict[str, store.MemberRow] = {}
        for member in new:
            kind = kinds.get(member.value)
            if kind is None:
                raise MemberNotFoundError(
                    f"Member {member.value} is not a user or group of the directory."
                )
            type_name = kind.resource_type
            if member.type is not None and member.type != type_name:
                raise InvalidValueError(
                    f"Member {member.value} is a {type_name}, not a {member.type}."
                )
            rows[member.value] = store.MemberRow(member.value, type_name, member.display)
        return store.add_members(tx, group_id, [rows[k] for k in sorted(rows)], stamp) > 0

    def _indexed(self, kind: EntityType, rt: ResourceType, doc: JSONObject) -> Indexed:
        unique: set[tuple[str, str]] = set()
        emails: frozenset[str] = frozenset()
        if kind is EntityType.USER:
            emails = frozenset(
                e["value"].lower() for e in doc.get("emails", ()) if isinstance(e.get("value"), str)
            )
            if self.options.unique_emails:
                unique.update(("User:emails", e) for e in emails)
        for ext in rt.extensions:
            values = doc.get(ext.id)
            if not values:
                continue
            for attr in ext.attributes:
                if (
                    attr.uniqueness is not Uniqueness.NONE
                    and not attr.multi_valued
                    and attr.type is not AttrType.COMPLEX
                    and attr.name in values
                ):
                    value = values[attr.name]
                    key = value.lower() if isinstance(value, str) and not attr.case_exact else value
                    unique.add((f"{rt.name}:{ext.id}:{attr.name}", str(key)))
        if kind is EntityType.USER:
            return Indexed(
                name=doc["userName"],
                display_name=doc.get("displayName"),
                external_id=doc.get("externalId"),
                emails=emails,
                unique=frozenset(unique),
            )
        return Indexed(
            name=doc["displayName"], external_id=doc.get("externalId"), unique=frozenset(unique)
        )


_TotalsKey = tuple[str, EntityType, str | None]


class _Totals:
    """Recently counted totals of cursor-paged reads, by (tenant, resource type, filter)."""

    def __init__(self, seconds: float = 60.0, size: int = 256) -> None:
        self._entries: dict[_TotalsKey, tuple[float, int]] = {}
        self._seconds = seconds
        self._size = size

    def get(self, key: _TotalsKey) -> int | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: _TotalsKey, total: int) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self._seconds, total)


def _with_id(doc: JSONObject, resource_id: str) -> JSONObject:
    """The document with its id, placed right after ``schemas``."""
    return {
        "schemas": doc["schemas"],
        "id": resource_id,
        **{k: v for k, v in doc.items() if k not in ("schemas", "id")},
    }


def _password_in(ops: list[Operation]) -> str | None:
    """The new password that PATCH operations set, if any (to hash it before writing)."""
    found: str | None = None
    for operation in ops:
        if operation.op == "remove":
            continue
        if operation.path is not None and operation.path.lower() in (
            "password",
            f"{s.USER}:password".lower(),
        ):
            value = operation.value
        elif operation.path is None and isinstance(operation.value, dict):
            value = next((v for k, v in operation.value.items() if k.lower() == "password"), None)
        else:
            continue
        if isinstance(value, str):
            found = value
    return found


def _lists_schema(body: Any, urn: str) -> bool:
    schemas = body.get("schemas") if isinstance(body, dict) else None
    return isinstance(schemas, list) and any(
        isinstance(x, str) and x.lower() == urn.lower() for x in schemas
    )


def _assign_user_uuid(doc: JSONObject, *, requested: bool = False) -> None:
    """Give a user that carries the SAP extension its global user id (userUuid), once."""
    if s.SAP_USER not in doc and not requested:
        return
    doc.setdefault(s.SAP_USER, {}).setdefault("userUuid", str(uuid.uuid4()))
    if s.SAP_USER not in doc["schemas"]:
        doc["schemas"].append(s.SAP_USER)


_BASE = Registry()
_DEFAULT = {
    EntityType.USER: Projection(rt=_BASE.user),
    EntityType.GROUP: Projection(rt=_BASE.group),
}
