"""Jayway JSONPath compiled to Python closures: reading, and writing into the output.

Reading follows Jayway: a *definite* path (keys and indexes only) names one value or none
(``MISSING``); any other path (wildcards, filters, slices, deep scans) yields the list of
what it matches (see ``paths``; ``compile_reader`` comes from ``conditions``, which compiles
the filters' conditions).

Writing follows SAP's target-side rules: objects and arrays on the way are created, ``[?(@.k)]``
as last step turns scalars into ``{"k": value}`` objects appended to the array, and wildcards
and filters write into every element they match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from provisor.transform import syntax as x
from provisor.transform.conditions import compile_expression, compile_reader
from provisor.transform.grammar import parse_path
from provisor.transform.paths import MISSING, Env, Reader

__all__ = ["MISSING", "Env", "Gap", "Reader", "Writer", "compile_reader", "drop_gaps"]


# -- writing ---------------------------------------------------------------------------------


class Gap(dict[str, Any]):
    """A position an index write created on the way (``$.a[1]`` into ``[]`` makes a[0]).

    Dropped by ``drop_gaps`` when nothing was written into it, so targets get
    ``[{...}]`` rather than ``[{}, {...}]`` or ``[null, ...]``.
    """

    __slots__ = ()


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
