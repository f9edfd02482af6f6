"""CSV columns: a column name is a path into an entity; a layout maps rows ↔ entities.

* ``userName`` is a top-level attribute; ``name.givenName`` nests (``{"name": {"givenName":
  ...}}``); ``emails[0].value``, ``emails[1].value`` build an array, ordered by index (an
  element without any value is left out, so arrays close up and have no holes).
* A name starting with ``urn:`` keeps everything up to its *last* ``:`` as one key, the schema
  URN; what follows is the attribute path, as above:
  ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`` →
  ``{"urn:...:2.0:User": {"manager": {"value": ...}}}``.
* ``[]`` (no index) marks a column holding several values joined by
  ``csv.multivalue.separator``: ``emails[].value`` holds ``a|b``; value *i* is element *i*.
  In the group file the name ``members`` means ``members[].value``: member ids joined ↔
  ``[{"value": id}, ...]``.
* A cell holds a string and stays one (``true``, ``42`` too: a transformation converts
  them); an empty cell is an absent attribute. Written, ``true``/``false`` stand for
  booleans, numbers for themselves; nulls, empty strings, empty arrays and objects are absent.
  Attribute names that no column name can spell (with ``.``, ``[``, ``]``, blanks around them)
  and values holding the separator of a ``[]`` column are refused as InvalidEntity.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from provisor.connectors.base import ConnectorError, Entity, InvalidEntity

Step: TypeAlias = str | int | None  # a key, an array index, or the [] of a multi-valued column
Steps: TypeAlias = tuple[Step, ...]

_PART = re.compile(r"([^.\[\]]+)((?:\[\d*\])*)")
_INDEX = re.compile(r"\[(\d*)\]")
_MEMBERS: Steps = ("members", None, "value")


class ColumnError(ValueError):
    """A column name that cannot be used: not a path, or clashing with another column."""


def parse_column(name: str, *, group: bool = False) -> Steps:
    """The path a column name stands for; ``()`` for a blank name (a column ignored)."""
    text = name.strip()
    if not text:
        return ()
    if group and text == "members":
        return _MEMBERS
    head: Steps = ()
    if text[:4].lower() == "urn:":
        urn, _, text = text.rpartition(":")
        head = (urn,)
    steps: list[Step] = list(head)
    for part in text.split("."):
        match = _PART.fullmatch(part)
        if match is None:
            raise ColumnError(f"column {name!r}: {part!r} is not an attribute name")
        steps.append(match[1])
        steps.extend(int(i) if i else None for i in _INDEX.findall(match[2]))
    if steps.count(None) > 1:
        raise ColumnError(f"column {name!r}: a column has at most one []")
    return tuple(steps)


def column_name(steps: Steps) -> str:
    """The column name of a path (the reverse of ``parse_column``, where one exists)."""
    parts: list[str] = []
    for step in steps:
        if isinstance(step, str):
            parts.append(step)
        else:
            parts[-1] += "[]" if step is None else f"[{step}]"
    if len(parts) > 1 and parts[0][:4].lower() == "urn:":
        return parts[0] + ":" + ".".join(parts[1:])
    return ".".join(parts)


def _shape(steps: Steps) -> Steps:
    return tuple(s if isinstance(s, str) else -1 for s in steps)


class _Sparse(dict[int, Any]):
    """An array being built from indexed cells."""


def _put(node: dict[Any, Any], steps: Steps, value: str) -> None:
    for step, following in itertools.pairwise(steps):
        child = node.get(step)
        if child is None:
            child = {} if isinstance(following, str) else _Sparse()
            node[step] = child
        node = child
    node[steps[-1]] = value


def _closed(value: Any) -> Any:
    if isinstance(value, _Sparse):
        return [_closed(value[i]) for i in sorted(value)]
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict):
                value[key] = _closed(item)
    return value


def _leaves(pairs: Iterable[tuple[Step, Any]], prefix: Steps, out: list[tuple[Steps, str]]) -> None:
    """The paths and texts of the values written (``pairs``: an object's items, or an
    array's ``enumerate``)."""
    for step, item in pairs:
        path = (*prefix, step)
        if type(item) is str:
            if item:
                out.append((path, item))
        elif isinstance(item, dict):
            _leaves(item.items(), path, out)
        elif isinstance(item, list):
            _leaves(enumerate(item), path, out)
        elif isinstance(item, bool):
            out.append((path, "true" if item else "false"))
        elif item is not None and item != "":
            out.append((path, str(item)))


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    steps: Steps
    key: str | None  # the attribute, when the column is one top-level attribute
    each: int | None  # where the [] is, in a multi-valued column


class Layout:
    """The columns of a file: rows to entities and back."""

    def __init__(self, names: Iterable[str], *, group: bool, separator: str) -> None:
        self.group = group
        self.separator = separator
        self.names: list[str] = []
        self.columns: list[_Column] = []
        self.arrays = False
        self._by_steps: dict[Steps, str] = {}
        self._each: dict[Steps, str] = {}  # the path with [] → its column
        self._shapes: dict[Steps, tuple[str, str]] = {}  # path → (object/array/leaf, column)
        self._leaf_each: dict[Steps, bool] = {}  # leaf path → whether a [] column has it
        for name in names:
            self.add(name, parse_column(name, group=group))

    def add(self, name: str, steps: Steps) -> None:
        if steps:
            self._claim(name, steps)
        each = steps.index(None) if None in steps else None
        key = steps[0] if len(steps) == 1 and isinstance(steps[0], str) else None
        self.names.append(name)
        self.columns.append(_Column(name, steps, key, each))
        self.arrays = self.arrays or any(not isinstance(s, str) for s in steps)

    def _claim(self, name: str, steps: Steps) -> None:
        if steps in self._by_steps:
            raise ColumnError(f"columns {self._by_steps[steps]!r} and {name!r} are the same")
        shape = _shape(steps)
        wanted = [
            (shape[:k], "object" if isinstance(steps[k], str) else "array")
            for k in range(1, len(steps))
        ]
        for path, kind in [*wanted, (shape, "leaf")]:
            seen, other = self._shapes.get(path, (kind, ""))
            if seen != kind:
                raise ColumnError(f"columns {other!r} and {name!r} do not fit together")
        each = None in steps
        if shape in self._leaf_each and (each or self._leaf_each[shape]):
            other = self._shapes[shape][1]
            raise ColumnError(f"columns {other!r} and {name!r} overlap")
        for path, kind in wanted:
            self._shapes.setdefault(path, (kind, name))
        self._shapes.setdefault(shape, ("leaf", name))
        self._leaf_each[shape] = self._leaf_each.get(shape, False) or each
        self._by_steps[steps] = name
        if each:
            self._each[steps] = name

    def entity(self, cells: Sequence[str]) -> Entity:
        """The entity of a row (cells in column order; missing cells are empty)."""
        entity: dict[str, Any] = {}
        for column, cell in zip(self.columns, cells, strict=False):
            if not cell:
                continue
            if column.key is not None:
                entity[column.key] = cell
            elif column.each is None:
                if column.steps:
                    _put(entity, column.steps, cell)
            else:
                at, steps = column.each, column.steps
                for index, piece in enumerate(cell.split(self.separator)):
                    if piece:
                        _put(entity, (*steps[:at], index, *steps[at + 1 :]), piece)
        return _closed(entity) if self.arrays else entity

    def entity_of(self, row: dict[str, str]) -> Entity:
        return self.entity([row.get(name, "") for name in self.names])

    def row(self, entity: Entity) -> dict[str, str]:
        """The cells of an entity by column name; adds the columns it needs (see ``rollback``)."""
        leaves: list[tuple[Steps, str]] = []
        _leaves(entity.items(), (), leaves)
        row: dict[str, str] = {}
        joined: dict[str, dict[int, str]] = {}
        for steps, text in leaves:
            name = self._by_steps.get(steps)
            if name is not None:
                row[name] = text
                continue
            name, index = self._each_column(steps) or self._new_column(steps)
            if index is None:
                row[name] = text
            else:
                joined.setdefault(name, {})[index] = text
        for name, pieces in joined.items():
            if any(self.separator in piece for piece in pieces.values()):
                raise InvalidEntity(f"{name}: a value holds the separator {self.separator!r}")
            row[name] = self.separator.join(pieces.get(i, "") for i in range(max(pieces) + 1))
        return row

    def _each_column(self, steps: Steps) -> tuple[str, int] | None:
        if self._each:
            for at, step in enumerate(steps):
                if isinstance(step, int):
                    name = self._each.get((*steps[:at], None, *steps[at + 1 :]))
                    if name is not None:
                        return name, step
        return None

    def _new_column(self, steps: Steps) -> tuple[str, int | None]:
        if (
            self.group
            and len(steps) == 3
            and steps[0] == "members"
            and isinstance(steps[1], int)
            and steps[2] == "value"
            and ("members", -1, "value") not in self._leaf_each
        ):
            self.add("members", _MEMBERS)
            return "members", steps[1]
        name = column_name(steps)
        try:
            if parse_column(name, group=self.group) != steps:
                raise ColumnError(f"attribute {name!r} cannot be a column name")
            self.add(name, steps)
        except ColumnError as exc:
            raise InvalidEntity(str(exc)) from None
        return name, None

    def rollback(self, count: int) -> Layout:
        """The layout without the columns added after the first ``count``."""
        if count == len(self.names):
            return self
        return Layout(self.names[:count], group=self.group, separator=self.separator)


def _values_at(node: Any, steps: Steps) -> Iterator[Any]:
    """The values at a path; arrays on the way fan out (``emails.value``)."""
    if isinstance(node, list) and not (steps and isinstance(steps[0], int)):
        for item in node:
            yield from _values_at(item, steps[1:] if steps and steps[0] is None else steps)
    elif not steps:
        yield node
    elif isinstance(node, list):
        index = steps[0]
        if isinstance(index, int) and 0 <= index < len(node):
            yield from _values_at(node[index], steps[1:])
    elif isinstance(node, dict) and steps[0] in node:
        yield from _values_at(node[steps[0]], steps[1:])


_JSONPATH = re.compile(r"\['([^']*)'\]|\[(\d*)\]|\.?([^.\[\]]+)")


def attribute_path(attribute: str, *, group: bool) -> Steps:
    """A ``find`` attribute: a column name, a dotted path or ``$.a['urn:...'].b``."""
    text = attribute.strip()
    if not text.startswith("$"):
        try:
            return parse_column(text, group=group)
        except ColumnError as exc:
            raise ConnectorError(str(exc)) from None
    steps: list[Step] = []
    rest = text[1:]
    while rest:
        match = _JSONPATH.match(rest)
        if match is None:
            raise ConnectorError(f"{attribute!r} is not an attribute path")
        quoted, index, plain = match.groups()
        if index is not None:
            steps.append(int(index) if index else None)
        else:
            steps.append(quoted if quoted is not None else plain)
        rest = rest[match.end() :]
    return tuple(steps)


def has_value(entity: Entity, steps: Steps, value: str) -> bool:
    """Whether ``value`` is one of the values at a path (``find``'s exact match)."""
    return any(v == value for v in _values_at(entity, steps) if not isinstance(v, dict | list))
