"""Jayway JSONPath reading, compiled to Python closures.

A *definite* path (keys and indexes only) names one value or none (``MISSING``); any other
path (wildcards, filters, slices, deep scans) yields the list of what it matches. Paths made of
keys and indexes only — most paths of real transformations — compile to a plain loop over
dictionary and list lookups.

A filter step ``[?(...)]`` holds a condition, and a condition's operands are paths: the
caller passes the compiler of conditions (``conditions.compile_reader`` does), so that this
module does not import the conditions that import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from provisor.transform import syntax as x
from provisor.transform.grammar import parse_path


class _Missing:
    """A path that names nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(slots=True)
class Env:
    """What expressions can refer to besides the document: variables and properties."""

    variables: dict[str, Any]
    properties: dict[str, str]
    gaps: bool = False  # a write left Gap placeholders in the output


Reader = Callable[[Any, Any, Env], Any]
"""read(root, current, env): a definite path's value or MISSING, else the list of matches."""

Test = Callable[[Any, Any, Env], bool]
"""test(root, current, env): whether a condition holds (``@`` is ``current``)."""

Filters = Callable[[x.Expr], Test]
"""Compiles a filter's expression (``conditions.compile_expression``)."""


# -- reading ---------------------------------------------------------------------------------


def compile_path(path: x.Path | str, filters: Filters) -> Reader:
    """A reader of ``path``; ``filters`` compiles the expressions of its ``[?(...)]`` steps."""
    if isinstance(path, str):
        path = parse_path(path)
    steps = path.segments
    at_current = path.root == "@"
    keys = tuple(
        s.name if isinstance(s, x.Key) else s.index if isinstance(s, x.Index) else None
        for s in steps
    )
    if None not in keys:
        read = _plain_reader(keys, at_current)  # type: ignore[arg-type]
    else:
        read = _general_reader(path, at_current, filters)
    if path.function is None:
        return read
    return _with_function(read, path.function, path.definite)


def _plain_reader(keys: tuple[str | int, ...], at_current: bool) -> Reader:
    def read(root: Any, current: Any, env: Env) -> Any:
        node = current if at_current else root
        for key in keys:
            if type(key) is str:
                if type(node) is not dict:
                    return MISSING
                node = node.get(key, MISSING)
                if node is MISSING:
                    return MISSING
            else:
                if type(node) is not list:
                    return MISSING
                try:
                    node = node[key]  # type: ignore[index]
                except IndexError:
                    return MISSING
        return node

    return read


def _general_reader(path: x.Path, at_current: bool, filters: Filters) -> Reader:
    steps = [_step(segment, filters) for segment in path.segments]
    definite = path.definite

    def read(root: Any, current: Any, env: Env) -> Any:
        nodes = [current if at_current else root]
        for step in steps:
            nodes = [found for node in nodes for found in step(node, root, env)]
            if not nodes:
                break
        if definite:
            return nodes[0] if nodes else MISSING
        return nodes

    return read


_Step = Callable[[Any, Any, Env], Iterator[Any]]


def _step(segment: x.Segment, filters: Filters) -> _Step:
    if isinstance(segment, x.Key):
        name = segment.name

        def key(node: Any, root: Any, env: Env) -> Iterator[Any]:
            if isinstance(node, dict) and name in node:
                yield node[name]

        return key
    if isinstance(segment, x.Keys):
        names = segment.names

        def keys(node: Any, root: Any, env: Env) -> Iterator[Any]:
            if isinstance(node, dict):
                yield {n: node[n] for n in names if n in node}

        return keys
    if isinstance(segment, x.Index | x.Indexes):
        indexes = (segment.index,) if isinstance(segment, x.Index) else segment.indexes

        def index(node: Any, root: Any, env: Env) -> Iterator[Any]:
            if isinstance(node, list):
                for i in indexes:
                    if -len(node) <= i < len(node):
                        yield node[i]

        return index
    if isinstance(segment, x.Slice):
        start, end = segment.start, segment.end

        def slice_(node: Any, root: Any, env: Env) -> Iterator[Any]:
            if isinstance(node, list):
                yield from node[start:end]

        return slice_
    if isinstance(segment, x.Wildcard):
        return _children
    if isinstance(segment, x.DeepScan):
        name_ = segment.name

        def deep(node: Any, root: Any, env: Env) -> Iterator[Any]:
            for descendant in _descendants(node):
                if name_ is None:
                    yield from _children(descendant, root, env)
                elif isinstance(descendant, dict) and name_ in descendant:
                    yield descendant[name_]

        return deep
    if isinstance(segment, x.Filter):
        test = filters(segment.expr)

        def filter_(node: Any, root: Any, env: Env) -> Iterator[Any]:
            if isinstance(node, list):
                for item in node:
                    if test(root, item, env):
                        yield item
            elif isinstance(node, dict) and test(root, node, env):
                yield node

        return filter_
    raise ValueError(f"unsupported path step {segment!r}")


def _children(node: Any, root: Any = None, env: Env | None = None) -> Iterator[Any]:
    if isinstance(node, list):
        yield from node
    elif isinstance(node, dict):
        yield from node.values()


def _descendants(node: Any) -> Iterator[Any]:
    yield node
    for child in _children(node):
        if isinstance(child, dict | list):
            yield from _descendants(child)


def _with_function(read: Reader, name: str, definite: bool) -> Reader:
    if name not in ("length", "size"):
        raise ValueError(f"unknown path function {name}()")

    def measure(root: Any, current: Any, env: Env) -> Any:
        value = read(root, current, env)
        if isinstance(value, str | list | dict):
            return len(value)
        return MISSING

    return measure
