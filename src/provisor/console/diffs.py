"""Two documents side by side: their pretty-printed JSON compared line by line (difflib), as
rows of two columns whose lines are marked kept, removed, added or changed."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import orjson

from provisor.errors import InvalidTransformationError
from provisor.transform.document import read_document

MAX_LINES = 20_000  # lines of each side compared (a larger document is cut, and says so)


@dataclass(frozen=True, slots=True)
class Side:
    number: int | None  # the line's number, None on the side where the line does not exist
    text: str
    state: str  # "same", "removed", "added", "empty"

    @property
    def marker(self) -> str:
        """The state as text (not colour alone): ``-`` removed, ``+`` added."""
        return {"removed": "-", "added": "+"}.get(self.state, "")


@dataclass(frozen=True, slots=True)
class Row:
    left: Side
    right: Side


@dataclass(frozen=True, slots=True)
class Diff:
    rows: tuple[Row, ...]
    added: int
    removed: int
    cut: bool


def pretty(text: str) -> list[str]:
    """A document's lines as JSON indented by two (comments dropped); its text when not JSON."""
    try:
        data = read_document(text)
    except InvalidTransformationError:
        return text.splitlines()
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode().splitlines()


_EMPTY = Side(None, "", "empty")


def side_by_side(old: str, new: str) -> Diff:
    left, right = pretty(old), pretty(new)
    cut = len(left) > MAX_LINES or len(right) > MAX_LINES
    left, right = left[:MAX_LINES], right[:MAX_LINES]
    rows: list[Row] = []
    added = removed = 0
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            rows.extend(
                Row(Side(i + 1, left[i], "same"), Side(j + 1, right[j], "same"))
                for i, j in zip(range(i1, i2), range(j1, j2), strict=True)
            )
            continue
        olds, news = range(i1, i2), range(j1, j2)
        removed += len(olds)
        added += len(news)
        for k in range(max(len(olds), len(news))):
            rows.append(
                Row(
                    Side(olds[k] + 1, left[olds[k]], "removed") if k < len(olds) else _EMPTY,
                    Side(news[k] + 1, right[news[k]], "added") if k < len(news) else _EMPTY,
                )
            )
    return Diff(tuple(rows), added, removed, cut)
