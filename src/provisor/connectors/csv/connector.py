"""``CSVConnector``: users and groups as the rows of CSV files (see the package).

**Reads** stream the file (one page of ``csv.page.size`` rows in memory; errors: see
:mod:`.files`); for a target, a missing file is an empty one.

**Writes** are buffered: ``create``, ``update``, ``delete`` and ``change_members`` check and
take the change at once (EntityConflict, EntityNotFound, InvalidEntity are raised by the call
itself; no two rows share an id or a value of a unique column, ``csv.user.unique.attribute``
and ``csv.group.unique.attribute``), and ``get`` and ``find`` see it, but the data reaches
the disk only when a flush runs (see :mod:`.table`): on ``flush()``, on ``aclose()``,
before a ``read``, and when a write finds ``csv.page.size`` changes waiting (it flushes them
before taking its own).
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import itertools
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from provisor.connectors.base import (
    Capabilities,
    ConnectionFailed,
    Connector,
    ConnectorConfig,
    ConnectorError,
    Entity,
    EntityConflict,
    EntityNotFound,
    InvalidEntity,
    Page,
    Role,
    Written,
)
from provisor.connectors.csv.columns import Layout, attribute_path, column_name, has_value
from provisor.connectors.csv.files import Format, formula_safe
from provisor.connectors.csv.table import Row, Table, id_match
from provisor.connectors.paths import file_roots, reason
from provisor.errors import ConfigError
from provisor.types import EntityType

DELIMITERS = {",": ",", ";": ";", "\\t": "\t", "\t": "\t", "|": "|"}
FIELD_LIMIT = 1 << 28  # characters in one cell: a big group's member ids fit

_T = TypeVar("_T")


class CSVConnector(Connector):
    """Users (``csv.user.file``) and groups (``csv.group.file``) as CSV rows; see the package."""

    def __init__(self, config: ConnectorConfig) -> None:
        super().__init__(config)
        roots = file_roots(config.services)
        fmt = _format(config)
        self.page_size = config.integer("csv.page.size", 1000)
        if self.page_size < 1:
            raise ConfigError("csv.page.size: at least 1")
        id_column = config.get("csv.id.column", "id") or "id"
        self.id_column = id_column
        self._tables: dict[str, Table] = {}  # by EntityType
        for entity_type in EntityType:
            key = f"csv.{entity_type}.file"
            value = config.get(key)
            if not value:
                if entity_type is EntityType.USER:
                    raise ConfigError(f"{key}: required for a {config.role} CSV File system")
                continue
            file = roots.locate(key, value)  # again: links may have changed since the save
            self._tables[entity_type] = Table(
                file.path,
                fmt,
                name=file.shown,
                group=entity_type is EntityType.GROUP,
                id_column=id_column,
                unique=_unique(config, entity_type, id_column),
            )
        self.capabilities = Capabilities(
            entity_types=frozenset(k for k in EntityType if k in self._tables),
            membership=EntityType.GROUP in self._tables,
        )
        if csv.field_size_limit() < FIELD_LIMIT:
            csv.field_size_limit(FIELD_LIMIT)

    def _table(self, entity_type: str) -> Table:
        table = self._tables.get(entity_type)
        if table is None:
            hint = " (no csv.group.file)" if entity_type == EntityType.GROUP else ""
            raise ConnectorError(f"This CSV File system has no {entity_type}s{hint}.")
        return table

    @property
    def _missing_ok(self) -> bool:
        return self.config.role != Role.SOURCE

    # -- reads --

    async def read(self, entity_type: str, *, delta: str | None = None) -> AsyncIterator[Page]:
        """Every row, page by page (a full read: ``delta`` is not supported and ignored)."""
        table = self._table(entity_type)
        await self._flush(table)
        rows = await _run(table.open_rows, missing_ok=self._missing_ok)
        if rows is None:
            return
        try:
            layout = rows.layout(group=table.group)
            lines = iter(rows)
            while True:
                entities = await _run(_page, layout, lines, self.page_size)
                if entities:
                    yield Page(entities)
                if len(entities) < self.page_size:
                    return
        finally:
            rows.close()

    async def get(self, entity_type: str, entity_id: str) -> Entity | None:
        table = self._table(entity_type)
        async with table.lock:
            if entity_id in table.pending:
                row = table.pending[entity_id]
                return None if row is None else table.layout.entity_of(row)
            found = await _run(
                table.scan_sync,
                id_match(table, entity_id),
                missing_ok=self._missing_ok,
                first=True,
            )
        return found[0] if found else None

    async def find(self, entity_type: str, attribute: str, value: str) -> list[Entity]:
        """The entities with ``value`` at ``attribute`` (a column name, ``name.givenName``,
        ``emails.value`` for any element, ``$['urn:...:User']['department']``); exact match."""
        table = self._table(entity_type)
        steps = attribute_path(attribute, group=table.group)
        if table.fmt.escape_formulas:
            value = formula_safe(value)  # as it was written

        def matcher(layout: Layout) -> Callable[[list[str]], bool]:
            index = next((i for i, c in enumerate(layout.columns) if c.steps == steps), -1)
            if index >= 0 and None not in steps:  # one column: compare cells
                return lambda cells: index < len(cells) and cells[index] == value
            return lambda cells: has_value(layout.entity(cells), steps, value)

        async with table.lock:
            found = await _run(table.scan_sync, matcher, missing_ok=self._missing_ok, first=False)
            for row in table.pending.values():
                if row is not None:
                    entity = table.layout.entity_of(row)
                    if has_value(entity, steps, value):
                        found.append(entity)
        return found

    # -- writes --

    async def create(
        self, entity_type: str, entity: Entity, *, entity_id: str | None = None
    ) -> Written:
        """Create a row; its id is the entity's id column, else ``entity_id``, else a UUID."""
        table = self._table(entity_type)
        async with table.lock:
            await self._ready(table)
            count = len(table.layout.names)
            try:
                row = self._row(table, entity)
                key = row.get(self.id_column) or entity_id or str(uuid.uuid4())
                if table.exists(key):
                    raise EntityConflict(f"{table.path.name}: id {key!r} is taken")
                _check_unique(table, row, key)
            except ConnectorError:
                table.layout = table.layout.rollback(count)
                raise
            row[self.id_column] = key
            table.put(key, row)
        return Written(key)

    async def update(
        self, entity_type: str, entity_id: str, entity: Entity, *, previous: Entity | None = None
    ) -> Written:
        """Replace a row (the whole row; ``previous`` is not needed)."""
        table = self._table(entity_type)
        async with table.lock:
            await self._ready(table)
            if not table.exists(entity_id):
                raise EntityNotFound(f"{table.path.name}: no id {entity_id!r}")
            count = len(table.layout.names)
            try:
                row = self._row(table, entity)
                _check_unique(table, row, entity_id)
            except ConnectorError:
                table.layout = table.layout.rollback(count)
                raise
            row[self.id_column] = entity_id
            table.put(entity_id, row)
        return Written(entity_id)

    async def delete(self, entity_type: str, entity_id: str) -> None:
        table = self._table(entity_type)
        async with table.lock:
            await self._ready(table)
            if not table.exists(entity_id):
                raise EntityNotFound(f"{table.path.name}: no id {entity_id!r}")
            table.put(entity_id, None)

    async def change_members(
        self, group_id: str, *, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> None:
        """Add and remove member ids of a group (``members`` entries ``{"value": id}``)."""
        table = self._tables.get(EntityType.GROUP)
        if table is None:
            raise ConnectorError("This CSV File system has no groups (no csv.group.file).")
        async with table.lock:
            await self._ready(table)
            if not table.exists(group_id):
                raise EntityNotFound(f"{table.path.name}: no id {group_id!r}")
            row = table.pending.get(group_id)
            if row is not None:
                group = table.layout.entity_of(row)
            else:
                found = await _run(
                    table.scan_sync, id_match(table, group_id), missing_ok=True, first=True
                )
                if not found:
                    raise EntityNotFound(f"{table.path.name}: no id {group_id!r}")
                group = found[0]
            gone = set(remove)
            members = [
                m
                for m in group.get("members", [])
                if not (isinstance(m, dict) and m.get("value") in gone)
            ]
            present = {m.get("value") for m in members if isinstance(m, dict)}
            members += [{"value": m} for m in dict.fromkeys(add) if m not in present]
            group["members"] = members
            count = len(table.layout.names)
            try:
                row = self._row(table, group)
            except ConnectorError:
                table.layout = table.layout.rollback(count)
                raise
            row[self.id_column] = group_id
            table.put(group_id, row)

    def _row(self, table: Table, entity: Entity) -> Row:
        row = table.layout.row(entity)
        if table.fmt.escape_formulas:
            row = {name: formula_safe(cell) for name, cell in row.items()}
        text = "".join(row.values())
        if "\x00" in text:
            raise InvalidEntity("A CSV cell cannot hold a NUL character.")
        try:
            text.encode(table.fmt.write_encoding)
        except UnicodeEncodeError:
            for name, cell in row.items():
                try:
                    cell.encode(table.fmt.write_encoding)
                except UnicodeEncodeError:
                    raise InvalidEntity(
                        f"{name}: {cell!r} cannot be written in {table.fmt.encoding}"
                    ) from None
        return row

    async def _ready(self, table: Table) -> None:
        """Load what the table needs to check changes, and flush a full page of them."""
        if not table.loaded:
            await _run(table.load_sync)
        if len(table.pending) >= self.page_size:
            await _run(table.flush_sync)

    async def _flush(self, table: Table) -> None:
        async with table.lock:
            if table.pending:
                await _run(table.flush_sync)

    async def flush(self) -> None:
        """Write the waiting changes to the disk; BackendError (changes kept) when it fails."""
        errors = []
        for table in self._tables.values():
            try:
                await self._flush(table)
            except ConnectorError as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    async def aclose(self) -> None:
        await self.flush()

    # -- checks --

    def unique_attributes(self, entity_type: str) -> tuple[str, ...]:
        return (self.id_column, *self._table(entity_type).unique)

    def entity_id(self, entity_type: str, entity: Entity) -> str | None:
        value = entity.get(self.id_column)
        return value if isinstance(value, str) else None

    async def test_connection(self) -> str:
        checks = [await _run(self._check, t) for t in self._tables.values()]
        return "; ".join(checks)

    def _check(self, table: Table) -> str:
        name, folder = table.name, table.path.parent
        writable = ""
        if self.config.role != Role.SOURCE:
            existing = next(f for f in (folder, *folder.parents) if f.is_dir())
            try:
                fd, probe = tempfile.mkstemp(dir=existing, prefix=".provisor.", suffix=".probe")
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                raise ConnectionFailed(
                    f"{name}: cannot write in its folder ({reason(exc)})"
                ) from exc
            made = "is writable" if existing == folder else "is created on the first write"
            writable = f"; its folder {made}"
        rows = table.open_rows(missing_ok=self._missing_ok)
        if rows is None:
            return f"{name}: not there yet, created with a header on the first write{writable}"
        with rows:
            rows.layout(group=table.group)
            count = sum(1 for _ in rows)
            return f"{name}: {count:,} rows, {len(rows.header)} columns{writable}"


def _unique(config: ConnectorConfig, entity_type: EntityType, id_column: str) -> tuple[str, ...]:
    """The columns of ``csv.<type>.unique.attribute`` (a comma list of attributes, each one
    column: ``userName``, ``emails[0].value``); ``none``: only the id is unique."""
    key = f"csv.{entity_type}.unique.attribute"
    default = "userName" if entity_type is EntityType.USER else "displayName"
    text = (config.get(key, default) or default).strip()
    if text.lower() == "none":
        return ()
    columns: list[str] = []
    for attribute in filter(None, (a.strip() for a in text.split(","))):
        try:
            steps = attribute_path(attribute, group=entity_type is EntityType.GROUP)
        except ConnectorError as exc:
            raise ConfigError(f"{key}: {exc.message}") from None
        if not steps or None in steps:
            raise ConfigError(f"{key}: {attribute!r} is not one column")
        name = column_name(steps)
        if name != id_column and name not in columns:
            columns.append(name)
    return tuple(columns)


def _check_unique(table: Table, row: dict[str, str], key: str) -> None:
    """EntityConflict when another row holds one of the row's unique values."""
    for column in table.unique:
        value = row.get(column)
        holder = table.holder(column, value) if value else None
        if holder is not None and holder != key:
            raise EntityConflict(f"{table.path.name}: {column} {value!r} is taken by id {holder!r}")


def _format(config: ConnectorConfig) -> Format:
    delimiter = DELIMITERS.get(config.get("csv.delimiter", ",") or ",")
    if delimiter is None:
        raise ConfigError("csv.delimiter: one of , ; \\t |")
    name = config.get("csv.encoding", "utf-8") or "utf-8"
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ConfigError(f"csv.encoding: unknown encoding {name!r}") from None
    if not getattr(info, "_is_text_encoding", True):
        raise ConfigError(f"csv.encoding: {name!r} is not a text encoding")
    utf8 = info.name in ("utf-8", "utf-8-sig")
    write = "utf-8" if utf8 else info.name
    separator = config.get("csv.multivalue.separator", "|") or "|"
    return Format(
        encoding=name,
        delimiter=delimiter,
        read_encoding="utf-8-sig" if utf8 else info.name,
        write_encoding=write,
        bom=info.name == "utf-8-sig",
        ascii=f'\n\r{delimiter}"'.encode(write) == f'\n\r{delimiter}"'.encode("ascii"),
        separator=separator,
        escape_formulas=(config.get("csv.escape.formulas", "true") or "true").lower() != "false",
    )


async def _run(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``fn`` in a thread. A caller cancelled meanwhile still waits for the thread to end, so
    that the table it works on is never used by two at once."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


def _page(layout: Layout, lines: Iterator[tuple[int, list[str]]], size: int) -> list[Entity]:
    return [layout.entity(cells) for _, cells in itertools.islice(lines, size)]
