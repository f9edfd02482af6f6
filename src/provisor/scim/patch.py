"""SCIM PATCH (RFC 7644 §3.5.2) applied to a resource document.

Every form is supported: add/replace/remove with or without a path, sub-attribute paths,
URN-qualified extension paths, value selection filters with or without a sub-attribute,
and the forms Microsoft Entra sends (capitalised ops, path-less values keyed by
``name.givenName`` or by a URN-qualified attribute, ``"False"`` for booleans, remove with
a value list, the enterprise manager as a bare id). Group members are not handled here:
see :func:`split_members`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from scim2_models import Path
from scim2_models.exceptions import SCIMException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    ValuePath,
)

from provisor.scim import schemas as s
from provisor.scim.attributes import Attribute, Mutability, Schema
from provisor.scim.errors import (
    InvalidPathError,
    InvalidSyntaxError,
    InvalidValueError,
    MutabilityError,
    NoTargetError,
    TooManyError,
)
from provisor.scim.limits import DEFAULT_LIMITS, Budget, Limits, check_filter_tree
from provisor.scim.matching import matches
from provisor.scim.registry import ResourceType, resolve
from provisor.scim.values import bare_value
from provisor.types import JSONObject

OPS = ("add", "replace", "remove")
_ENVELOPE = ("schemas", "id", "meta")  # keys of a value that are not attributes to patch


@dataclass(frozen=True, slots=True)
class Operation:
    op: str
    path: str | None
    value: Any


def parse_patch_request(body: Any, limits: Limits = DEFAULT_LIMITS) -> list[Operation]:
    """Check a PatchOp message and return its operations."""
    if not isinstance(body, dict):
        raise InvalidSyntaxError("The PATCH body must be a JSON object.")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or s.PATCH_OP not in schemas:
        raise InvalidSyntaxError(f"A PATCH request must have schemas [{s.PATCH_OP!r}].")
    raw_ops = body.get("Operations", body.get("operations"))
    if not isinstance(raw_ops, list) or not raw_ops:
        raise InvalidSyntaxError("'Operations' must be a non-empty list.")
    if len(raw_ops) > limits.patch_max_operations:
        raise TooManyError(
            f"A PATCH request has at most {limits.patch_max_operations} operations "
            f"(the limit), not {len(raw_ops)}."
        )
    ops: list[Operation] = []
    for index, raw in enumerate(raw_ops):
        if not isinstance(raw, dict):
            raise InvalidSyntaxError(f"Operations[{index}] must be an object.")
        op = raw.get("op")
        if not isinstance(op, str) or op.lower() not in OPS:
            raise InvalidSyntaxError(f"Operations[{index}].op must be add, replace or remove.")
        path = raw.get("path")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise InvalidPathError(f"Operations[{index}].path must be a non-empty string.")
        if op.lower() != "remove" and "value" not in raw:
            raise InvalidValueError(f"Operations[{index}] ({op}) needs a value.")
        ops.append(
            Operation(op=op.lower(), path=path.strip() if path else None, value=raw.get("value"))
        )
    return ops


@dataclass(frozen=True, slots=True)
class Target:
    """Where an operation applies: an attribute of a schema, maybe filtered, maybe a sub."""

    schema: Schema | None  # None: a common attribute (externalId)
    attribute: Attribute | None  # None: the whole extension
    value_filter: FilterNode | None = None
    sub: Attribute | None = None
    extension: Schema | None = None  # set when the target lives under an extension URN

    @property
    def name(self) -> str:
        parts = [self.extension.id + ":" if self.extension else ""]
        if self.attribute:
            parts.append(self.attribute.name)
        if self.value_filter is not None:
            parts.append(f"[{self.value_filter}]")
        if self.sub:
            parts.append("." + self.sub.name)
        return "".join(parts) or (self.schema.id if self.schema else "")


def parse_target(rt: ResourceType, path: str) -> Target:
    """Resolve a PATCH path against a resource type."""
    whole = rt.extension(path)
    if whole is not None:
        return Target(schema=whole, attribute=None, extension=whole)
    try:
        node = Path(path).ast
    except SCIMException as exc:
        raise InvalidPathError(f"Invalid path {path!r}: {exc}") from exc
    value_filter: FilterNode | None = None
    sub_name: str | None
    if isinstance(node, AttrPath):
        attr_path, sub_name = node, node.sub_attr
    elif isinstance(node, ValuePath):
        attr_path, value_filter, sub_name = node.attr_path, node.val_filter, node.sub_attr
    else:
        raise InvalidPathError(f"Invalid path {path!r}.")
    if value_filter is not None:
        check_filter_tree(value_filter, DEFAULT_LIMITS)
    resolved = resolve(rt, attr_path.uri, attr_path.attr, sub_name)
    ext = resolved.schema if resolved.schema not in (None, rt.schema) else None
    if value_filter is not None and not (
        resolved.attribute.multi_valued and resolved.attribute.is_complex
    ):
        raise InvalidPathError(f"{path!r}: a value filter needs a multi-valued attribute.")
    return Target(
        schema=resolved.schema,
        attribute=resolved.attribute,
        value_filter=value_filter,
        sub=resolved.sub,
        extension=ext,
    )


class Patcher:
    """Applies operations to a copy of a resource document (without validating types)."""

    def __init__(self, rt: ResourceType, limits: Limits = DEFAULT_LIMITS) -> None:
        self.rt = rt
        self.limits = limits

    def apply(self, doc: JSONObject, ops: list[Operation]) -> JSONObject:
        result = copy.deepcopy(doc)
        budget = Budget(self.limits)
        for operation in ops:
            if operation.path is None:
                self._pathless(result, operation, budget)
            else:
                target = parse_target(self.rt, operation.path)
                self._apply(result, operation.op, target, operation.value, budget)
        for ext in self.rt.extensions:
            if ext.id in result and not result[ext.id]:
                del result[ext.id]
        result["schemas"] = [self.rt.schema.id] + [
            ext.id for ext in self.rt.extensions if ext.id in result
        ]
        return result

    def _pathless(self, doc: JSONObject, operation: Operation, budget: Budget) -> None:
        if operation.op == "remove":
            raise NoTargetError("A remove operation needs a path.")
        if not isinstance(operation.value, dict):
            raise InvalidValueError("Without a path, the value must be a JSON object.")
        for key, value in operation.value.items():
            if key.lower() in _ENVELOPE:
                continue
            ext = self.rt.extension(key)
            if ext is not None:
                if not isinstance(value, dict):
                    raise InvalidValueError(f"{key}: an extension must be a JSON object.")
                for sub_key, sub_value in value.items():
                    if sub_key.lower() not in _ENVELOPE:
                        target = parse_target(self.rt, f"{ext.id}:{sub_key}")
                        self._apply(doc, operation.op, target, sub_value, budget)
                continue
            self._apply(doc, operation.op, parse_target(self.rt, key), value, budget)

    def _apply(self, doc: JSONObject, op: str, target: Target, value: Any, budget: Budget) -> None:
        attr = target.attribute
        if attr is None:  # a whole extension
            assert target.extension is not None
            if op == "remove":
                doc.pop(target.extension.id, None)
                return
            if not isinstance(value, dict):
                raise InvalidValueError(f"{target.name}: the value must be a JSON object.")
            if op == "replace":
                doc[target.extension.id] = {}
            for key, item in value.items():
                if key.lower() in _ENVELOPE:
                    continue
                target_key = parse_target(self.rt, f"{target.extension.id}:{key}")
                self._apply(doc, op, target_key, item, budget)
            return
        if target.schema is s.CORE_GROUP and attr.name == "members":
            raise AssertionError("members are patched by the directory, not the Patcher")
        leaf = target.sub or attr
        if attr.mutability is Mutability.READ_ONLY or leaf.mutability is Mutability.READ_ONLY:
            raise MutabilityError(f"{target.name} is read-only.")
        container = self._container(doc, target, create=op != "remove")
        if container is None:
            return
        if op == "remove":
            self._remove(container, target, value, budget)
        elif target.value_filter is not None:
            self._set_filtered(container, target, value, op, budget)
        elif target.sub is not None:
            self._set_sub(container, target, value)
        elif attr.multi_valued:
            self._set_multi(container, attr, value, op, budget)
        elif attr.is_complex:  # add and replace both merge sub-attributes (§3.5.2.1, 3)
            value = bare_value(attr, value)
            if not isinstance(value, dict):
                raise InvalidValueError(f"{target.name}: expected a JSON object.")
            current = container.get(attr.name)
            merged = dict(current) if isinstance(current, dict) else {}
            merged.update(value)
            container[attr.name] = merged
        else:
            container[attr.name] = value

    def _container(self, doc: JSONObject, target: Target, *, create: bool) -> JSONObject | None:
        if target.extension is None:
            return doc
        existing = doc.get(target.extension.id)
        if isinstance(existing, dict):
            return existing
        if not create:
            return None
        doc[target.extension.id] = {}
        return doc[target.extension.id]  # type: ignore[no-any-return]

    def _remove(self, container: JSONObject, target: Target, value: Any, budget: Budget) -> None:
        attr = target.attribute
        assert attr is not None
        if attr.mutability is Mutability.IMMUTABLE and attr.name in container:
            raise MutabilityError(f"{target.name} is immutable.")
        current = container.get(attr.name)
        if current is None:
            return
        if target.value_filter is not None:
            budget.spend(len(current))
            kept = []
            for item in current:
                if matches(attr, target.value_filter, item):
                    if target.sub is None:
                        continue
                    item = {k: v for k, v in item.items() if k != target.sub.name}
                kept.append(item)
            self._store(container, attr, kept)
        elif target.sub is not None:
            if attr.multi_valued:
                kept = [{k: v for k, v in it.items() if k != target.sub.name} for it in current]
                self._store(container, attr, [item for item in kept if item])
            elif isinstance(current, dict):
                current.pop(target.sub.name, None)
                if not current:
                    del container[attr.name]
        elif attr.multi_valued and value is not None:
            # Entra: {"op": "remove", "path": "emails", "value": [{"value": "x"}]}
            drop = value if isinstance(value, list) else [value]
            budget.spend(len(current) * len(drop))
            kept = [item for item in current if not any(_same(item, d) for d in drop)]
            self._store(container, attr, kept)
        else:
            del container[attr.name]

    def _set_filtered(
        self, container: JSONObject, target: Target, value: Any, op: str, budget: Budget
    ) -> None:
        attr = target.attribute
        assert attr is not None and target.value_filter is not None
        current = container.get(attr.name) or []
        if not isinstance(current, list):
            current = [current]
        budget.spend(len(current))
        hits = [i for i, item in enumerate(current) if matches(attr, target.value_filter, item)]
        if not hits:
            seed = _seed(target.value_filter)
            if seed is None:
                raise NoTargetError(f"No value of {attr.name} matches {target.value_filter}.")
            current.append(seed)
            hits = [len(current) - 1]
        for i in hits:
            if target.sub is not None:
                current[i] = {**current[i], target.sub.name: value}
            elif not isinstance(value, dict):
                raise InvalidValueError(f"{target.name}: expected a JSON object.")
            elif op == "add":
                current[i] = {**current[i], **value}
            else:
                current[i] = dict(value)
        self._store(container, attr, current, primary=hits[-1])

    def _set_sub(self, container: JSONObject, target: Target, value: Any) -> None:
        attr, sub = target.attribute, target.sub
        assert attr is not None and sub is not None
        if attr.multi_valued:
            current = container.get(attr.name) or [{}]
            self._store(container, attr, [{**item, sub.name: value} for item in current])
        else:
            current = container.get(attr.name)
            merged = dict(current) if isinstance(current, dict) else {}
            merged[sub.name] = value
            container[attr.name] = merged

    def _set_multi(
        self, container: JSONObject, attr: Attribute, value: Any, op: str, budget: Budget
    ) -> None:
        items = value if isinstance(value, list) else [value]
        if op == "replace":
            self._store(container, attr, list(items))
            return
        current = list(container.get(attr.name) or [])
        budget.spend(len(items) * len(current))
        added = [item for item in items if not any(_same(item, old) for old in current)]
        current.extend(added)
        new_primary = None
        for index in range(len(current) - len(added), len(current)):
            if isinstance(current[index], dict) and current[index].get("primary") is True:
                new_primary = index
        self._store(container, attr, current, primary=new_primary)

    def _store(
        self, container: JSONObject, attr: Attribute, items: list[Any], primary: int | None = None
    ) -> None:
        """Keep a multi-valued attribute, with one primary at most (RFC 7644 §3.5.2)."""
        if (
            primary is not None
            and isinstance(items[primary], dict)
            and items[primary].get("primary") is True
        ):
            for index, item in enumerate(items):
                if index != primary and isinstance(item, dict) and item.get("primary") is True:
                    items[index] = {**item, "primary": False}
        if items:
            container[attr.name] = items
        else:
            container.pop(attr.name, None)


def _same(item: Any, other: Any) -> bool:
    """Whether two values of a multi-valued attribute are the same value.

    Complex values are compared on 'value', and on 'type' only when both carry one.
    """
    if isinstance(item, dict) and isinstance(other, dict) and "value" in item and "value" in other:
        if item["value"] != other["value"]:
            return False
        return "type" not in item or "type" not in other or item["type"] == other["type"]
    return bool(item == other)


def _seed(node: FilterNode) -> JSONObject | None:
    """The new value that a filter of equalities describes (Entra adds emails that way)."""
    terms: tuple[FilterNode, ...]
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        terms = node.terms
    else:
        terms = (node,)
    seed: JSONObject = {}
    for term in terms:
        if not isinstance(term, Comparison) or term.op is not CompareOperator.eq:
            return None
        seed[term.attr_path.attr] = term.value
    return seed
