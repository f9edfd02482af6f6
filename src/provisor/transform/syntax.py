"""The syntax tree of transformation expressions: JSONPaths and conditions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Expr:
    """A condition."""

    __slots__ = ()


class Operand:
    """What a condition compares: a path, a literal, a function call."""

    __slots__ = ()


# -- JSONPath ------------------------------------------------------------------------------


class Segment:
    """One step of a path."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Key(Segment):
    name: str


@dataclass(frozen=True, slots=True)
class Keys(Segment):
    """``['a','b']``: Jayway projects an object onto these keys."""

    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Index(Segment):
    index: int


@dataclass(frozen=True, slots=True)
class Indexes(Segment):
    indexes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Slice(Segment):
    start: int | None
    end: int | None


@dataclass(frozen=True, slots=True)
class Wildcard(Segment):
    pass


@dataclass(frozen=True, slots=True)
class DeepScan(Segment):
    """``..name`` (or ``..*`` when name is None)."""

    name: str | None


@dataclass(frozen=True, slots=True)
class Filter(Segment):
    expr: Expr


@dataclass(frozen=True, slots=True)
class Path(Operand):
    root: str  # "$" (the document) or "@" (the current element)
    segments: tuple[Segment, ...]
    function: str | None = None  # "length", ...

    @property
    def definite(self) -> bool:
        """Whether the path names at most one value (no wildcard, filter, scan, slice)."""
        return all(isinstance(s, Key | Index | Keys) for s in self.segments)


# -- conditions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Literal(Operand):
    value: Any


@dataclass(frozen=True, slots=True)
class ListLiteral(Operand):
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class PropertyKey(Operand):
    """A bare property key given to a condition function: ``s4hana.afc.group.prefix``."""

    name: str


@dataclass(frozen=True, slots=True)
class Call(Operand):
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Or(Expr):
    terms: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class And(Expr):
    terms: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not(Expr):
    expr: Expr


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    op: str
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class RegexMatch(Expr):
    operand: Any
    pattern: str
    flags: str


@dataclass(frozen=True, slots=True)
class Empty(Expr):
    operand: Any
    expected: bool


@dataclass(frozen=True, slots=True)
class In(Expr):
    operand: Any
    values: ListLiteral
    negate: bool


@dataclass(frozen=True, slots=True)
class Contains(Expr):
    left: Any
    right: Any


@dataclass(frozen=True, slots=True)
class Truthy(Expr):
    operand: Any
