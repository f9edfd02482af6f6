"""Attribute-level differences, for simulations: what a write would change."""

from __future__ import annotations

from typing import Any

_ABSENT = object()


def attribute_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """The attributes whose value differs, as ``{"attribute", "before", "after"}`` with
    dotted paths into objects (arrays compare whole); absent values are omitted. A text and
    a number or boolean with the same text are the same (CSV and LDAP hold only text)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in sorted(set(before) | set(after), key=str):
            inner = f"{path}.{key}" if path else str(key)
            changes.extend(attribute_diff(before.get(key, _ABSENT), after.get(key, _ABSENT), inner))
        return changes
    if _same(before, after):
        return []
    change: dict[str, Any] = {"attribute": path or "$"}
    if before is not _ABSENT:
        change["before"] = before
    if after is not _ABSENT:
        change["after"] = after
    return [change]


def _same(before: Any, after: Any) -> bool:
    if isinstance(before, list) and isinstance(after, list):
        return len(before) == len(after) and all(map(_same, before, after))
    if isinstance(before, dict) and isinstance(after, dict):
        return before.keys() == after.keys() and all(_same(before[k], after[k]) for k in before)
    if isinstance(before, str) != isinstance(after, str):
        return bool(_text(before) == _text(after))
    return bool(before == after)


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value
