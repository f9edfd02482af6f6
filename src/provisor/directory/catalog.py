"""The schemas of the directory — built in and the tenant's custom ones — kept current in
every process, with the checkers, patchers and filter compilers built from them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement

from provisor.context import Context, PerTenant
from provisor.directory import store
from provisor.errors import ConflictError
from provisor.scim.attributes import Schema
from provisor.scim.custom_schemas import MAX_SCHEMAS, parse_custom_schema
from provisor.scim.errors import (
    InvalidFilterError,
    InvalidValueError,
    ResourceNotFoundError,
    UniquenessError,
)
from provisor.scim.limits import DEFAULT_LIMITS, Limits
from provisor.scim.patch import Patcher
from provisor.scim.registry import Registry
from provisor.scim.values import ResourceChecker
from provisor.storage.database import Database, Transaction
from provisor.storage.filters import FilterCompiler, parse_filter
from provisor.timestamps import now
from provisor.types import EntityType

SCHEMAS_COUNTER = "custom_schemas"
READ_TRUST = 5.0  # seconds a read trusts the registry without asking the database


@dataclass(frozen=True, slots=True)
class Tools:
    """What one generation of the schemas gives, by resource type."""

    generation: int
    registry: Registry
    checkers: dict[EntityType, ResourceChecker]
    patchers: dict[EntityType, Patcher]
    filters: dict[EntityType, FilterCompiler]


class _Cached:
    """A tenant's tools and when the database last confirmed them."""

    __slots__ = ("checked", "lock", "tools")

    def __init__(self) -> None:
        self.tools: Tools | None = None
        self.checked = 0.0
        self.lock = threading.Lock()


class SchemaCatalog:
    """Custom schemas live in the database; a counter moves whenever they change, and each
    process rebuilds its tools when it sees the counter move.

    Writes and discovery always read the counter (``fresh``, one small query); other reads
    trust tools checked in the last few seconds, and a filter that fails to compile asks
    again before it is refused.

    Each tenant has its own schemas, so its own tools. The catalog is internal to the
    directory (whose operations say who may use it) and to services that need the tenant's
    schemas (the proxy): it checks no permission.
    """

    def __init__(self, db: Database, limits: Limits = DEFAULT_LIMITS) -> None:
        self.db = db
        self.limits = limits
        self._cached: PerTenant[_Cached] = PerTenant(lambda _tenant: _Cached())

    def tools(self, tx: Transaction, *, fresh: bool = True) -> Tools:
        """The tools of the call's tenant."""
        mine = self._cached.get(tx.ctx)
        cached = mine.tools
        if cached is not None and not fresh and time.monotonic() < mine.checked + READ_TRUST:
            return cached
        generation = store.read_counter(tx, SCHEMAS_COUNTER)
        if cached is None or cached.generation != generation:
            cached = self._build(tx, generation)
        with mine.lock:
            mine.tools = cached
            mine.checked = time.monotonic()
        return cached

    def _build(self, tx: Transaction, generation: int) -> Tools:
        custom = [
            parse_custom_schema(orjson.loads(doc))
            for _, kind, doc in store.custom_schemas(tx)
            if kind == EntityType.USER.resource_type
        ]
        registry = Registry(custom)
        types = [(EntityType.parse(rt.name), rt) for rt in registry.resource_types]
        return Tools(
            generation=generation,
            registry=registry,
            checkers={kind: ResourceChecker(rt, self.limits) for kind, rt in types},
            patchers={kind: Patcher(rt, self.limits) for kind, rt in types},
            filters={kind: FilterCompiler(rt, self.db.dialect) for kind, rt in types},
        )

    def compile(
        self, tx: Transaction, kind: EntityType, text: str | None
    ) -> ColumnElement[bool] | None:
        """The SQL condition of a filter on a resource type (None without a filter)."""
        if not text:
            return None
        node = parse_filter(text, self.limits)
        try:
            return self.tools(tx, fresh=False).filters[kind].compile(node)
        except InvalidFilterError:  # maybe a custom schema this process has not seen yet
            return self.tools(tx).filters[kind].compile(node)

    def registry(self, ctx: Context | None = None) -> Registry:
        """The current registry of the call's tenant (internal: no permission is checked;
        without a context, the default tenant's, for callers not converted yet)."""
        with self.db.read(ctx or Context.system("directory")) as tx:
            return self.tools(tx).registry

    def create(self, ctx: Context, body: Any) -> Schema:
        """Add a custom schema (it extends User)."""
        schema = parse_custom_schema(body)
        with self.db.write(ctx) as tx:
            store.bump_counter(tx, SCHEMAS_COUNTER)  # first: it serialises schema changes
            if len(store.custom_schemas(tx)) >= MAX_SCHEMAS:
                raise InvalidValueError(f"A tenant has at most {MAX_SCHEMAS} custom schemas.")
            try:
                store.insert_custom_schema(
                    tx, schema.id, EntityType.USER, orjson.dumps(body).decode(), now()
                )
            except ConflictError as exc:
                raise UniquenessError(f"The schema {schema.id} already exists.") from exc
            tx.audit("schema.create", schema.id[:255], {"attributes": len(schema.attributes)})
        return schema

    def delete(self, ctx: Context, schema_id: str) -> None:
        """Delete a custom schema and every value users hold in it."""
        with self.db.write(ctx) as tx:
            schema = self.tools(tx).registry.schema(schema_id)
            if schema is None:
                raise ResourceNotFoundError(f"Schema {schema_id} not found.")
            if not schema.custom:
                raise InvalidValueError(f"{schema_id} is built in and cannot be deleted.")
            store.delete_custom_schema(tx, schema.id)
            tx.audit("schema.delete", schema.id[:255])
            stamp = now()
            rewritten = []
            for res in store.holding(tx, EntityType.USER, schema.id):
                doc = orjson.loads(res.doc)
                doc.pop(schema.id, None)
                doc["schemas"] = [x for x in doc["schemas"] if x != schema.id]
                rewritten.append(
                    {
                        "id": res.id,
                        "doc": orjson.dumps(doc).decode(),
                        "version": res.version + 1,
                        "last_modified": stamp,
                    }
                )
            store.rewrite_documents(tx, EntityType.USER, rewritten)
            store.delete_unique_scopes(tx, f"{EntityType.USER.resource_type}:{schema.id}:")
            store.bump_counter(tx, SCHEMAS_COUNTER)
