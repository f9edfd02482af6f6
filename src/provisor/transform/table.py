"""A document's mappings as a table (source -> functions -> target, condition, scope), and
a table's edits written back into the document.

Only the cells of the table change: every other key of a mapping, and every other part of
the document, is kept as it was. The rewritten document is checked like any other when saved.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from provisor.errors import InputError
from provisor.transform.document import ANY_ENTITY, SCOPES

EDITABLE = ("sourcePath", "functions", "targetPath", "condition", "scope")


@dataclass(frozen=True, slots=True)
class Row:
    """One mapping of a section: what the table shows and lets change."""

    section: str
    index: int
    type: str
    source: str  # what it reads: a path, a variable, a constant, several paths
    source_editable: bool  # it reads a sourcePath (or nothing yet): the cell is an input
    source_path: str
    functions: str  # the functions array as JSON ("" without functions)
    function_names: tuple[str, ...]
    target_path: str
    target: str  # where it writes: a path or a variable
    condition: str
    scope: str
    ignore: bool

    @property
    def key(self) -> str:
        """The prefix of the row's form fields."""
        return f"{self.section}:{self.index}"


def sections(data: Mapping[str, Any]) -> dict[str, Any]:
    """A document's sections by entity type (a bare document: one section ``*``)."""
    if isinstance(data.get("mappings"), list):
        return {ANY_ENTITY: data}
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def rows(data: Mapping[str, Any]) -> list[Row]:
    """Every mapping of every section, in document order."""
    found = []
    for name, section in sections(data).items():
        mappings = section.get("mappings")
        for index, raw in enumerate(mappings if isinstance(mappings, list) else []):
            if isinstance(raw, dict):
                found.append(_row(name, index, raw))
    return found


def _row(section: str, index: int, raw: Mapping[str, Any]) -> Row:
    calls = raw.get("functions")
    names = tuple(
        str(c.get("function", c.get("type", "?"))) for c in calls or [] if isinstance(c, dict)
    )
    source_path = raw.get("sourcePath")
    if "sourcePaths" in raw:
        source = ", ".join(str(p) for p in raw["sourcePaths"] or [])
    elif "sourceVariable" in raw:
        source = f"variable {raw['sourceVariable']}"
    elif "constant" in raw:
        source = "constant " + orjson.dumps(raw["constant"]).decode()
    else:
        source = str(source_path or "")
    target_path = raw.get("targetPath")
    target = str(target_path or "")
    if "targetVariable" in raw:
        target = (target + " and " if target else "") + f"variable {raw['targetVariable']}"
    return Row(
        section=section,
        index=index,
        type=str(raw.get("type", "set")),
        source=source,
        source_editable=not any(k in raw for k in ("sourcePaths", "sourceVariable", "constant")),
        source_path=source_path if isinstance(source_path, str) else "",
        functions=orjson.dumps(calls).decode() if calls else "",
        function_names=names,
        target_path=target_path if isinstance(target_path, str) else "",
        target=target,
        condition=str(raw.get("condition") or ""),
        scope=str(raw.get("scope") or ""),
        ignore=raw.get("ignore") in (True, "true"),
    )


def rewrite(data: Mapping[str, Any], edits: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The document with the table's ``edits`` (row key -> cell -> text) applied; an empty
    cell removes its key. InputError names the row and the cell that cannot be read."""
    out = copy.deepcopy(dict(data))
    by_section = sections(out)
    for key, cells in edits.items():
        section_name, _, number = key.rpartition(":")
        section = by_section.get(section_name)
        mappings = section.get("mappings") if section is not None else None
        if not number.isdigit() or not isinstance(mappings, list):
            raise InputError(f"The table has no row {key!r}: reload the page.")
        index = int(number)
        if index >= len(mappings) or not isinstance(mappings[index], dict):
            raise InputError(f"The table has no row {key!r}: reload the page.")
        mapping = mappings[index]
        for cell, text in cells.items():
            if cell not in EDITABLE:
                raise InputError(f"{cell!r} is not a column of the table.")
            _set(mapping, cell, text.strip(), f"{_label(section_name)} row {index + 1}")
    return out


def _label(section: str) -> str:
    return "document" if section == ANY_ENTITY else section


def _set(mapping: dict[str, Any], cell: str, text: str, where: str) -> None:
    if cell == "sourcePath" and any(k in mapping for k in ("sourceVariable", "constant")):
        return  # not a path cell for this row (the form shows no input)
    if not text:
        mapping.pop(cell, None)
        return
    if cell == "functions":
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{where}, functions: not JSON ({exc}).") from None
        if not isinstance(value, list):
            raise InputError(f"{where}, functions: a JSON array of functions.")
        mapping[cell] = value
        return
    if cell == "scope" and text not in SCOPES:
        raise InputError(f"{where}, scope: one of {', '.join(SCOPES)}, or none.")
    mapping[cell] = text
