"""Evaluating a value filter on the values of one multi-valued attribute, in memory.

Used by PATCH paths such as ``emails[type eq "work"]``. Filtering lists of resources is
never done here: it is compiled to SQL (:mod:`provisor.storage.filters`).
"""

from __future__ import annotations

from typing import Any

from scim2_models.path import (
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
)

from provisor.scim.attributes import Attribute, AttrType
from provisor.scim.errors import InvalidPathError
from provisor.timestamps import format_datetime, parse_datetime


def matches(attr: Attribute, node: FilterNode, item: Any) -> bool:
    """Whether one value of the multi-valued complex attribute ``attr`` passes ``node``."""
    if isinstance(node, LogicalExpr):
        results = (matches(attr, term, item) for term in node.terms)
        return all(results) if node.op is LogicalOperator.and_ else any(results)
    if isinstance(node, Not):
        return not matches(attr, node.expr, item)
    if isinstance(node, Present):
        sub = _sub(attr, node.attr_path.attr)
        value = item.get(sub.name) if isinstance(item, dict) else None
        return value not in (None, "", [], {})
    if isinstance(node, Comparison):
        sub = _sub(attr, node.attr_path.attr)
        value = item.get(sub.name) if isinstance(item, dict) else None
        return compare(sub, value, node.op, node.value)
    raise InvalidPathError("Nested value filters are not allowed in a value selection.")


def _sub(attr: Attribute, name: str) -> Attribute:
    sub = attr.sub(name)
    if sub is None:
        raise InvalidPathError(f"{attr.name} has no sub-attribute {name!r}.")
    return sub


def compare(attr: Attribute, value: Any, op: CompareOperator, operand: Any) -> bool:
    """Apply a SCIM comparison operator the way RFC 7644 §3.4.2.2 defines it."""
    if value is None:
        return op is CompareOperator.ne and operand is not None
    if operand is None:
        return op is CompareOperator.ne
    if attr.type is AttrType.BOOLEAN:
        if op is CompareOperator.eq:
            return bool(value) is operand
        if op is CompareOperator.ne:
            return bool(value) is not operand
        return False
    if attr.type is AttrType.DATETIME and isinstance(operand, str):
        try:
            operand = format_datetime(parse_datetime(operand))
        except ValueError:
            return False
    if isinstance(value, str) and isinstance(operand, str):
        if not attr.case_exact:
            value, operand = value.lower(), operand.lower()
    elif isinstance(value, str) != isinstance(operand, str):
        return op is CompareOperator.ne
    result: bool
    match op:
        case CompareOperator.eq:
            result = value == operand
        case CompareOperator.ne:
            result = value != operand
        case CompareOperator.co:
            result = isinstance(value, str) and operand in value
        case CompareOperator.sw:
            result = isinstance(value, str) and value.startswith(operand)
        case CompareOperator.ew:
            result = isinstance(value, str) and value.endswith(operand)
        case CompareOperator.gt:
            result = value > operand
        case CompareOperator.ge:
            result = value >= operand
        case CompareOperator.lt:
            result = value < operand
        case CompareOperator.le:
            result = value <= operand
    return result
