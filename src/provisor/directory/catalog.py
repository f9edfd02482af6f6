"""The schemas of the directory — built in and the tenant's custom ones — kept current in
every process, with the checkers, patchers and filter compilers built from them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection

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
from provisor.storage import directory as store
from provisor.storage.database import Database
from provisor.storage.filters import FilterCompiler, parse_filter
from provisor.timestamps import now

SCHEMAS_COUNTER = "custom_schemas"
READ_TRUST = 5.0  # seconds a read trusts the registry without asking the database


@dataclass(frozen=True, slots=True)
class Tools:
    """What one generation of the schemas gives, by resource type name (User, Group)."""

    generation: int
    registry: Registry
    checkers: dict[str, ResourceChecker]
    patchers: dict[str, Patcher]
    filters: dict[str, FilterCompiler]


class SchemaCatalog:
    """Custom schemas live in the database; a counter moves whenever they change, and each
    process rebuilds its tools when it sees the counter move.

    Writes and discovery always read the counter (``fresh``, one small query); other reads
    trust tools checked in the last few seconds, and a filter that fails to compile asks
    again before it is refused.
    """

    def __init__(self, db: Database, limits: Limits = DEFAULT_LIMITS) -> None:
        self.db = db
        self.limits = limits
        self._tools: Tools | None = None
        self._checked = 0.0
        self._lock = threading.Lock()

    def tools(self, conn: Connection, *, fresh: bool = True) -> Tools:
        cached = self._tools
        if cached is not None and not fresh and time.monotonic() < self._checked + READ_TRUST:
            return cached
        generation = store.read_counter(conn, SCHEMAS_COUNTER)
        if cached is None or cached.generation != generation:
            cached = self._build(conn, generation)
        with self._lock:
            self._tools = cached
            self._checked = time.monotonic()
        return cached

    def _build(self, conn: Connection, generation: int) -> Tools:
        custom = [
            parse_custom_schema(orjson.loads(doc))
            for _, kind, doc in store.custom_schemas(conn)
            if kind == "User"
        ]
        registry = Registry(custom)
        types = registry.resource_types
        return Tools(
            generation=generation,
            registry=registry,
            checkers={rt.name: ResourceChecker(rt, self.limits) for rt in types},
            patchers={rt.name: Patcher(rt, self.limits) for rt in types},
            filters={rt.name: FilterCompiler(rt, self.db.dialect) for rt in types},
        )

    def compile(self, conn: Connection, kind: str, text: str | None) -> ColumnElement[bool] | None:
        """The SQL condition of a filter on a resource type (None without a filter)."""
        if not text:
            return None
        node = parse_filter(text, self.limits)
        try:
            return self.tools(conn, fresh=False).filters[kind].compile(node)
        except InvalidFilterError:  # maybe a custom schema this process has not seen yet
            return self.tools(conn).filters[kind].compile(node)

    def registry(self) -> Registry:
        """The current registry, for discovery."""
        with self.db.read() as conn:
            return self.tools(conn).registry

    def create(self, body: Any) -> Schema:
        """Add a custom schema (it extends User)."""
        schema = parse_custom_schema(body)
        with self.db.write() as conn:
            store.bump_counter(conn, SCHEMAS_COUNTER)  # first: it serialises schema changes
            if len(store.custom_schemas(conn)) >= MAX_SCHEMAS:
                raise InvalidValueError(f"A tenant has at most {MAX_SCHEMAS} custom schemas.")
            try:
                store.insert_custom_schema(
                    conn, schema.id, "User", orjson.dumps(body).decode(), now()
                )
            except ConflictError as exc:
                raise UniquenessError(f"The schema {schema.id} already exists.") from exc
        return schema

    def delete(self, schema_id: str) -> None:
        """Delete a custom schema and every value users hold in it."""
        with self.db.write() as conn:
            schema = self.tools(conn).registry.schema(schema_id)
            if schema is None:
                raise ResourceNotFoundError(f"Schema {schema_id} not found.")
            if not schema.custom:
                raise InvalidValueError(f"{schema_id} is built in and cannot be deleted.")
            store.delete_custom_schema(conn, schema.id)
            stamp = now()
            rewritten = []
            for res in store.holding(conn, "User", schema.id):
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
            store.rewrite_documents(conn, "User", rewritten)
            store.delete_unique_scopes(conn, f"User:{schema.id}:")
            store.bump_counter(conn, SCHEMAS_COUNTER)
