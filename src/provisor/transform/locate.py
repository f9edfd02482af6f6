"""Where a document's problems are in its text: each problem's JSON path mapped to a line and
column range, for an editor to mark.

A problem of :func:`~provisor.transform.document.compile_document` starts with where it is
(``user.mappings[2].sourcePath: ...``, ``document: ...``); a text that is not JSON is located
at the character the parser stopped at. Comments (``/* */``) are blanked, not removed, so
every position is the one in the text as written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_WHERE = re.compile(r"^([^\s.\[:]+)((?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*)")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")
Step = str | int


@dataclass(frozen=True, slots=True)
class Place:
    """A range of the text: lines and columns count from 1; ``end`` is exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True, slots=True)
class Problem:
    message: str
    path: str | None = None
    place: Place | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "path": self.path}
        if self.place is not None:
            out.update(
                line=self.place.line,
                column=self.place.column,
                endLine=self.place.end_line,
                endColumn=self.place.end_column,
            )
        return out


def blank_comments(text: str) -> str:
    """``text`` with every ``/* */`` comment outside strings turned into spaces (line breaks
    kept): the same length, the same positions."""
    if "/*" not in text:
        return text
    out = list(text)
    i, in_string = 0, False
    while i < len(text):
        char = text[i]
        if in_string:
            if char == "\\":
                i += 2
                continue
            in_string = char != '"'
            i += 1
        elif char == '"':
            in_string = True
            i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            stop = len(text) if end < 0 else end + 2
            for j in range(i, stop):
                if out[j] not in "\r\n":
                    out[j] = " "
            i = stop
        else:
            i += 1
    return "".join(out)


class _Scanner:
    """The start and end offsets of every value of a valid JSON text, by path (an object
    member's range starts at its key)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.decoder = json.JSONDecoder()
        self.spans: dict[tuple[Step, ...], tuple[int, int]] = {}

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t\r\n":
            i += 1
        return i

    def value(self, i: int, path: tuple[Step, ...], start: int) -> int:
        i = self.skip(i)
        char = self.text[i] if i < len(self.text) else ""
        if char == "{":
            end = self.members(i + 1, path)
        elif char == "[":
            end = self.items(i + 1, path)
        else:
            _, end = self.decoder.raw_decode(self.text, i)
        self.spans[path] = (start if start >= 0 else i, end)
        return end

    def members(self, i: int, path: tuple[Step, ...]) -> int:
        i = self.skip(i)
        if self.text[i] == "}":
            return i + 1
        while True:
            i = self.skip(i)
            key, after = self.decoder.raw_decode(self.text, i)
            colon = self.skip(after)
            end = self.value(colon + 1, (*path, key), i)
            i = self.skip(end)
            if self.text[i] == "}":
                return i + 1
            i += 1  # the comma

    def items(self, i: int, path: tuple[Step, ...]) -> int:
        i = self.skip(i)
        if self.text[i] == "]":
            return i + 1
        index = 0
        while True:
            end = self.value(i, (*path, index), -1)
            i = self.skip(end)
            if self.text[i] == "]":
                return i + 1
            i += 1
            index += 1


def _place(text: str, start: int, end: int) -> Place:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    end_line = text.count("\n", 0, end) + 1
    end_column = end - (text.rfind("\n", 0, end) + 1) + 1
    return Place(line, column, end_line, end_column)


def _steps(where: str, bare: bool) -> tuple[str, tuple[Step, ...]] | None:
    """The path a problem names (``user.mappings[2].sourcePath``) as steps, or None."""
    found = _WHERE.match(where)
    if found is None:
        return None
    head = found.group(1)
    steps: list[Step] = []
    if head != "document":
        steps.append(head)
    elif not bare:
        return None
    for key, index in _STEP.findall(found.group(2)):
        steps.append(int(index) if index else key)
    return found.group(0), tuple(steps)


def locate(text: str, problems: list[str]) -> list[Problem]:
    """Each problem of ``text`` with its path and its place in the text (when found)."""
    plain = blank_comments(text)
    try:
        data = json.loads(plain)
    except json.JSONDecodeError as exc:
        at = min(exc.pos, len(plain))
        place = _place(plain, at, min(at + 1, len(plain)))
        return [Problem(p, None, place if "not valid JSON" in p else None) for p in problems] or [
            Problem(f"document: not valid JSON ({exc.msg})", None, place)
        ]
    scanner = _Scanner(plain)
    try:
        scanner.value(0, (), -1)
    except (ValueError, IndexError):  # json accepted what the scanner cannot: leave unplaced
        return [Problem(p) for p in problems]
    bare = isinstance(data, dict) and isinstance(data.get("mappings"), list)
    located = []
    for problem in problems:
        named = _steps(problem, bare)
        if named is None:
            located.append(Problem(problem))
            continue
        path, steps = named
        found = steps
        while found and found not in scanner.spans:
            found = found[:-1]
        # Nothing of the path in the text (a placeholder's name): not placed at all.
        span = scanner.spans.get(found) if found or not steps else None
        located.append(Problem(problem, path, _mark(plain, *span) if span else None))
    return located


def _mark(text: str, start: int, end: int) -> Place:
    """A value's range; a value over several lines marks its first line only."""
    newline = text.find("\n", start, end)
    return _place(text, start, end if newline < 0 else newline)


__all__ = ["Place", "Problem", "blank_comments", "locate"]
