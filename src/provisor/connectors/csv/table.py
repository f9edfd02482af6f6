"""One CSV file of a system (users or groups): its changes waiting, and their flush.

A flush writes the whole new file to a temporary file in the same folder, fsyncs it, renames
it over the old one and fsyncs the folder, holding an exclusive ``flock`` on ``<file>.lock``
(other processes) and the table's ``asyncio.Lock`` (this process). So a crash loses at most
the changes waiting (fewer than ``csv.page.size``), never what an earlier flush wrote, and the
file is never half-written. A flush that fails leaves the file as it was and keeps the changes
waiting.

A flush of new rows only, into a file nobody else changed since, copies the old bytes and
appends; any other flush merges the changes into the rows it streams from the current file
(what another process wrote meanwhile is kept; for the same id, the last flush wins). The
header keeps its columns in order and new ones are appended; a new file starts with the id
column. To check ids and unique values at once, a table that is written keeps the file's ids
and the values of its unique columns in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeAlias

from provisor.connectors.base import BackendError, ConnectionFailed, Entity
from provisor.connectors.csv.columns import ColumnError, Layout, parse_column
from provisor.connectors.csv.files import (
    Format,
    Identity,
    Rows,
    copy_bytes,
    file_identity,
    flocked,
    replace,
)
from provisor.connectors.paths import reason

Row: TypeAlias = dict[str, str]
Keys: TypeAlias = dict[str, dict[str, set[str]]]  # unique column → value → ids of its rows
Matcher: TypeAlias = Callable[[Layout], Callable[[list[str]], bool]]  # a file's columns → test


def _index(names: list[str], name: str) -> int:
    return names.index(name) if name in names else -1


class Table:
    """One file (users or groups): its changes waiting for a flush and what is known of it.

    Every method but ``open_rows`` runs with ``lock`` held; the ``*_sync`` ones in a thread.
    ``name`` is the path messages show.
    """

    def __init__(
        self,
        path: Path,
        fmt: Format,
        *,
        name: str,
        group: bool,
        id_column: str,
        unique: tuple[str, ...] = (),
    ) -> None:
        self.path, self.fmt, self.group, self.id_column = path, fmt, group, id_column
        self.name = name
        self.unique = unique  # columns whose values identify a row, like its id
        self.lock = asyncio.Lock()
        self.pending: dict[str, Row | None] = {}  # id → its new row, or None: delete it
        self.pending_keys: dict[str, dict[str, str]] = {c: {} for c in unique}  # value → id
        self.file_keys: Keys = {c: {} for c in unique}
        self.loaded = False
        self.layout = Layout((), group=group, separator=fmt.separator)
        self.file_header: list[str] = []  # of the file as last read or written
        self.file_ids: set[str] = set()
        self.identity: Identity | None = None
        self.bom, self.terminator = fmt.bom, "\r\n"

    def open_rows(self, *, missing_ok: bool) -> Rows | None:
        try:
            return Rows(self.path, self.fmt, name=self.name)
        except ConnectionFailed as exc:
            if missing_ok and isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise

    def exists(self, entity_id: str) -> bool:
        if entity_id in self.pending:
            return self.pending[entity_id] is not None
        return entity_id in self.file_ids

    def holder(self, column: str, value: str) -> str | None:
        """The id of a row (waiting or in the file) whose unique ``column`` holds ``value``."""
        key = self.pending_keys[column].get(value)
        if key is not None:
            return key
        return next(
            (k for k in self.file_keys[column].get(value, ()) if k not in self.pending), None
        )

    def put(self, key: str, row: Row | None) -> None:
        """Take a change: the new row of ``key``, or None to delete it."""
        old = self.pending.get(key)
        for column, held in self.pending_keys.items():
            value = old.get(column) if old is not None else None
            if value and held.get(value) == key:
                del held[value]
            value = row.get(column) if row is not None else None
            if value:
                held[value] = key
        self.pending[key] = row

    def load_sync(self) -> None:
        rows = self.open_rows(missing_ok=True)
        if rows is None:
            self._known([], set(), None)
        else:
            with rows:
                column = _index(rows.header, self.id_column)
                rows.layout(group=self.group)  # a bad header fails now, not at the flush
                keys, add = self._keys(rows.header)
                ids = set()
                for _, cells in rows:
                    key = cells[column] if 0 <= column < len(cells) else ""
                    if key:
                        ids.add(key)
                        add(key, cells)
                self.bom, self.terminator = rows.bom, rows.terminator
                self.file_keys = keys
                self._known(rows.header, ids, rows.identity)
        self.loaded = True

    def _keys(self, header: list[str]) -> tuple[Keys, Callable[[str, list[str]], None]]:
        """A new index of unique values, and what adds a row's cells (of ``header``) to it."""
        keys: Keys = {c: {} for c in self.unique}
        columns = [(keys[c], _index(header, c)) for c in self.unique]

        def add(key: str, cells: list[str]) -> None:
            for held, index in columns:
                if 0 <= index < len(cells) and cells[index]:
                    held.setdefault(cells[index], set()).add(key)

        return keys, add

    def _known(self, header: list[str], ids: set[str], identity: Identity | None) -> None:
        self.file_header, self.file_ids, self.identity = header, ids, identity
        try:
            self.layout = Layout(header, group=self.group, separator=self.fmt.separator)
        except ColumnError as exc:
            raise BackendError(f"{self.name}, line 1: {exc}") from None
        if self.id_column not in self.layout.names:
            self.layout.add(self.id_column, parse_column(self.id_column, group=self.group))

    def scan_sync(self, matcher: Matcher, *, missing_ok: bool, first: bool) -> list[Entity]:
        """The entities of the file's rows that match, but those with changes waiting."""
        rows = self.open_rows(missing_ok=missing_ok)
        if rows is None:
            return []
        found = []
        with rows:
            layout = rows.layout(group=self.group)
            match = matcher(layout)
            column = _index(layout.names, self.id_column)
            for _, cells in rows:
                if 0 <= column < len(cells) and cells[column] in self.pending:
                    continue
                if match(cells):
                    found.append(layout.entity(cells))
                    if first:
                        break
        return found

    def flush_sync(self) -> None:
        try:
            with flocked(self.path.with_name(self.path.name + ".lock")):
                current = None
                with contextlib.suppress(FileNotFoundError):
                    current = file_identity(os.stat(self.path))
                appending = (
                    current is not None
                    and current == self.identity
                    and self.fmt.ascii
                    and self.layout.names == self.file_header
                    and all(
                        row is not None and key not in self.file_ids
                        for key, row in self.pending.items()
                    )
                )
                self._append() if appending else self._rewrite()
                self.identity = file_identity(os.stat(self.path))
        except OSError as exc:
            raise BackendError(
                f"{self.name}: cannot write the file ({reason(exc)}); it is unchanged"
            ) from exc
        self.pending.clear()
        for held in self.pending_keys.values():
            held.clear()

    def _writer(self, out: BinaryIO, *, start: bool) -> tuple[io.TextIOWrapper, Any]:
        text = io.TextIOWrapper(out, encoding=self.fmt.write_encoding, newline="")
        if start and self.bom:
            text.write("\ufeff")
        writer = csv.writer(text, delimiter=self.fmt.delimiter, lineterminator=self.terminator)
        return text, writer

    def _append(self) -> None:
        names = self.file_header

        def write(out: BinaryIO) -> None:
            with open(self.path, "rb") as old:
                size = copy_bytes(old, out)
                if size and os.pread(old.fileno(), 1, size - 1) != b"\n":
                    out.write(self.terminator.encode())
            text, writer = self._writer(out, start=False)
            for row in self.pending.values():
                assert row is not None
                writer.writerow([row.get(name, "") for name in names])
            text.flush()
            text.detach()

        replace(self.path, write)
        self.file_ids.update(self.pending)
        for key, row in self.pending.items():
            assert row is not None
            for column, index in self.file_keys.items():
                if row.get(column):
                    index.setdefault(row[column], set()).add(key)

    def _rewrite(self) -> None:
        old = self.open_rows(missing_ok=True)
        try:
            old_header = old.header if old else []
            if old:
                old.layout(group=self.group)
                self.bom, self.terminator = old.bom, old.terminator
            known = set(old_header)
            names = old_header + [n for n in self.layout.names if n not in known]
            column = _index(old_header, self.id_column)
            ids: set[str] = set()
            written: set[str] = set()
            keys, add = self._keys(names)

            def rows() -> Iterator[list[str]]:
                width = len(names)
                for _, cells in old or ():
                    key = cells[column] if 0 <= column < len(cells) else ""
                    if key in self.pending:
                        new = self.pending[key]
                        if key in written or new is None:
                            continue  # deleted, or a second row of this id
                        written.add(key)
                        cells = [new.get(name, "") for name in names]
                    elif len(cells) < width:
                        cells = cells + [""] * (width - len(cells))
                    if key:
                        ids.add(key)
                        add(key, cells)
                    yield cells
                for key, new in self.pending.items():
                    if new is not None and key not in written:
                        ids.add(key)
                        cells = [new.get(name, "") for name in names]
                        add(key, cells)
                        yield cells

            def write(out: BinaryIO) -> None:
                text, writer = self._writer(out, start=True)
                writer.writerow(names)
                writer.writerows(rows())
                text.flush()
                text.detach()

            replace(self.path, write)
        finally:
            if old:
                old.close()
        self._known(names, ids, None)
        self.file_keys = keys


def id_match(table: Table, entity_id: str) -> Matcher:
    """The matcher of the row of ``entity_id`` in the table's file."""

    def matcher(layout: Layout) -> Callable[[list[str]], bool]:
        index = _index(layout.names, table.id_column)
        return lambda cells: 0 <= index < len(cells) and cells[index] == entity_id

    return matcher
