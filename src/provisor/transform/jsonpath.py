"""Jayway JSONPath compiled to Python closures: reading, and writing into the output.

Reading follows Jayway: a *definite* path (keys and indexes only) names one value or none
(``MISSING``); any other path (wildcards, filters, slices, deep scans) yields the list of
what it matches. Paths made of keys and indexes only — most paths of real transformations —
compile to a plain loop over dictionary and list lookups.

Writing follows SAP's target-side rules: objects and arrays on the way are created, ``[?(@.k)]``
as last step turns scalars into ``{"k": value}`` objects appended to the array, and wildcards
and filters write into every element they match.
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


class Gap(dict[str, Any]):
    """A position an index write created on the way (``$.a[1]`` into ``[]`` makes a[0]).

    Dropped by ``drop_gaps`` when nothing was written into it, so targets get
    ``[{...}]`` rather than ``[{}, {...}]`` or ``[null, ...]``.
    """

    __slots__ = ()


Reader = Callable[[Any, Any, Env], Any]
"""read(root, current, env): a definite path's value or MISSING, else the list of matches."""


# -- reading ---------------------------------------------------------------------------------


def compile_reader(path: x.Path | str) -> Reader:
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
        read = _general_reader(path, at_current)
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


def _general_reader(path: x.Path, at_current: bool) -> Reader:
    steps = [_step(segment) for segment in path.segments]
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


def _step(segment: x.Segment) -> _Step:
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
        from provisor.transform.conditions import compile_expression

        test = compile_expression(segment.expr)

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


# -- writing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Objects:
    """The last step ``[?(@.key)]``: values become ``{key: value}`` objects in an array."""

    key: str


def _object_form(segment: x.Segment) -> _Objects | None:
    if isinstance(segment, x.Filter) and isinstance(segment.expr, x.Truthy):
        operand = segment.expr.operand
        if (
            isinstance(operand, x.Path)
            and operand.root == "@"
            and len(operand.segments) == 1
            and isinstance(operand.segments[0], x.Key)
        ):
            return _Objects(operand.segments[0].name)
    return None


_WRITABLE = (x.Key, x.Index, x.Wildcard, x.Filter)  # what a Writer can step through


class Writer:
    """Writes, removes and renames at a target path of an output document."""

    def __init__(self, path: x.Path | str) -> None:
        if isinstance(path, str):
            path = parse_path(path)
        if path.root != "$" or path.function is not None:
            raise ValueError("a target path starts with $ and calls no function")
        for step in path.segments:
            if not isinstance(step, _WRITABLE):
                raise ValueError(
                    "a target path is made of keys, [index], [*] and [?(filter)] only, "
                    f"not {type(step).__name__}"
                )
        self.path = path
        self.steps = path.segments
        self.objects = _object_form(self.steps[-1]) if self.steps else None
        self._filters = {
            i: _compile_filter(s) for i, s in enumerate(self.steps) if isinstance(s, x.Filter)
        }
        # Most target paths are keys only ($.name.givenName): written by a plain loop.
        keys = [s.name for s in self.steps if isinstance(s, x.Key)]
        self._keys = tuple(keys) if len(keys) == len(self.steps) else None

    @property
    def is_root(self) -> bool:
        return not self.steps

    # The output document is always a dict: writing $ replaces its content.

    def write(self, output: dict[str, Any], value: Any, env: Env) -> None:
        if not self.steps:
            if isinstance(value, dict):
                output.clear()
                output.update(value)
            return
        if self._keys is not None:
            node: Any = output
            for key in self._keys[:-1]:
                child = node.get(key)
                if not isinstance(child, dict):
                    if child is not None:
                        return  # a scalar or an array is on the way: nothing to write into
                    child = node[key] = {}
                node = child
            node[self._keys[-1]] = value
            return
        if self.objects is not None:
            for parent, key in self._slots(output, self.steps[:-1], env, create=True):
                _append_objects(parent, key, self.objects.key, value)
            return
        for parent, key in self._slots(output, self.steps, env, create=True):
            parent[key] = value

    def remove(self, output: dict[str, Any], env: Env) -> None:
        if not self.steps:
            output.clear()
            return
        last = self.steps[-1]
        if isinstance(last, x.Wildcard | x.Filter):
            for container in self._containers(output, self.steps[:-1], env):
                self._remove_matching(container, len(self.steps) - 1, env)
            return
        for parent, key in list(self._slots(output, self.steps, env, create=False)):
            _delete(parent, key)

    def rename(self, output: dict[str, Any], new_name: str, env: Env) -> None:
        if not self.steps or not isinstance(self.steps[-1], x.Key):
            raise ValueError("rename needs a target path ending with a key")
        for parent, key in list(self._slots(output, self.steps, env, create=False)):
            if isinstance(parent, dict) and key in parent:
                parent[new_name] = parent.pop(key)

    # -- navigation -----------------------------------------------------------------------------

    def _containers(self, output: Any, steps: tuple[x.Segment, ...], env: Env) -> Iterator[Any]:
        """The existing nodes that ``steps`` lead to (no creation)."""
        for parent, key in self._slots(output, steps, env, create=False):
            node = _get(parent, key)
            if node is not None:
                yield node
        if not steps:
            yield output

    def _slots(
        self, output: Any, steps: tuple[x.Segment, ...], env: Env, *, create: bool
    ) -> Iterator[tuple[Any, Any]]:
        """(container, key or index) pairs that ``steps`` designate, creating on the way."""
        nodes: list[Any] = [output]
        for position, segment in enumerate(steps):
            last = position == len(steps) - 1
            nxt = steps[position + 1] if not last else None
            found: list[tuple[Any, Any]] = []
            for node in nodes:
                found.extend(self._step_slots(node, position, segment, nxt, env, create=create))
            if last:
                yield from found
                return
            nodes = []
            for parent, key in found:
                child = _get(parent, key)
                if child is None and create:
                    child = [] if isinstance(nxt, x.Index | x.Wildcard | x.Filter) else {}
                    _put(parent, key, child)
                if child is not None:
                    nodes.append(child)

    def _step_slots(
        self,
        node: Any,
        position: int,
        segment: x.Segment,
        nxt: x.Segment | None,
        env: Env,
        *,
        create: bool,
    ) -> list[tuple[Any, Any]]:
        if isinstance(segment, x.Key):
            return [(node, segment.name)] if isinstance(node, dict) else []
        if isinstance(segment, x.Index):
            if not isinstance(node, list):
                return []
            index = segment.index
            if index < 0:
                index += len(node)
                return [(node, index)] if index >= 0 else []
            if index >= len(node):
                if not create:
                    return []
                node.extend(Gap() for _ in range(index - len(node)))
                node.append(None)  # the position written, or created by the next step
                env.gaps = True
            return [(node, index)]
        if isinstance(segment, x.Wildcard):
            if isinstance(node, list):
                return [(node, i) for i in range(len(node))]
            if isinstance(node, dict):
                return [(node, k) for k in node]
            return []
        if isinstance(segment, x.Filter):
            if not isinstance(node, list):
                return []
            test = self._filters[position]
            hits = [(node, i) for i, item in enumerate(node) if test(node, item, env)]
            if not hits and create:
                seed = _seed(segment.expr)
                if seed is not None:
                    node.append(seed)
                    hits = [(node, len(node) - 1)]
            return hits
        raise ValueError(f"cannot write through {segment!r}")

    def _remove_matching(self, container: Any, position: int, env: Env) -> None:
        segment = self.steps[position]
        if isinstance(segment, x.Wildcard):
            if isinstance(container, list):
                container.clear()
            elif isinstance(container, dict):
                container.clear()
            return
        test = self._filters[position]
        if isinstance(container, list):
            container[:] = [item for item in container if not test(container, item, env)]


def _compile_filter(segment: x.Segment) -> Callable[[Any, Any, Env], bool]:
    from provisor.transform.conditions import compile_expression

    assert isinstance(segment, x.Filter)
    return compile_expression(segment.expr)


def _seed(expr: x.Expr) -> dict[str, Any] | None:
    """The element a filter of equalities describes: ``@.type == 'work'`` → {"type": "work"}."""
    terms = expr.terms if isinstance(expr, x.And) else (expr,)
    seed: dict[str, Any] = {}
    for term in terms:
        if not (isinstance(term, x.Compare) and term.op in ("==", "===")):
            return None
        left, right = term.left, term.right
        if isinstance(right, x.Path):
            left, right = right, left
        if not (
            isinstance(left, x.Path)
            and left.root == "@"
            and len(left.segments) == 1
            and isinstance(left.segments[0], x.Key)
            and isinstance(right, x.Literal)
        ):
            return None
        seed[left.segments[0].name] = right.value
    return seed


def drop_gaps(node: Any) -> Any:
    """The output without untouched ``Gap`` placeholders; filled ones become plain objects."""
    if isinstance(node, list):
        return [drop_gaps(item) for item in node if not (isinstance(item, Gap) and not item)]
    if isinstance(node, dict):
        return {key: drop_gaps(value) for key, value in node.items()}
    return node


def _get(parent: Any, key: Any) -> Any:
    if isinstance(parent, dict):
        return parent.get(key)
    if isinstance(parent, list) and isinstance(key, int) and -len(parent) <= key < len(parent):
        return parent[key]
    return None


def _put(parent: Any, key: Any, value: Any) -> None:
    parent[key] = value


def _delete(parent: Any, key: Any) -> None:
    if isinstance(parent, dict):
        parent.pop(key, None)
    elif isinstance(parent, list) and isinstance(key, int) and -len(parent) <= key < len(parent):
        del parent[key]


def _append_objects(parent: Any, key: Any, member: str, value: Any) -> None:
    """Append ``{member: v}`` for each value to the array at parent[key] (no duplicates)."""
    items = value if isinstance(value, list) else [value]
    array = _get(parent, key)
    if not isinstance(array, list):
        array = []
        _put(parent, key, array)
    for item in items:
        if item is None or item is MISSING:
            continue
        obj = item if isinstance(item, dict) else {member: item}
        if obj not in array:
            array.append(obj)
