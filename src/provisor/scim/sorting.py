"""``sortBy`` (RFC 7644 §3.4.2.3) on resource documents in memory, with the semantics of the
directory's SQL ordering (:meth:`provisor.storage.filters.Compiler.sort_key`): a multi-valued
attribute sorts by its primary (else first) value, strings that are not case-exact sort
case-folded, and resources without a value come last ascending, first descending.

Used by proxy systems, whose back-ends cannot sort; the directory sorts in SQL.
"""

from __future__ import annotations

from typing import Any

from provisor.scim.attributes import Attribute, AttrType
from provisor.scim.errors import InvalidValueError
from provisor.scim.registry import Resolved, ResourceType, resolve
from provisor.types import JSONObject

_STRINGY = (AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY)
_NUMBERS = (AttrType.INTEGER, AttrType.DECIMAL)


def resolve_sort(rt: ResourceType, sort_by: str) -> Resolved:
    """The attribute ``sortBy`` names; 400 invalidValue for none or a complex one."""
    uri, _, rest = (
        sort_by.rpartition(":") if sort_by.lower().startswith("urn:") else ("", "", sort_by)
    )
    attr_name, _, sub_name = rest.strip().partition(".")
    res = resolve(rt, uri or None, attr_name, sub_name or None, error=InvalidValueError)
    if res.attribute.multi_valued and res.attribute.is_complex and res.sub is None:
        if res.attribute.sub("value") is None:
            raise InvalidValueError(f"Cannot sort by {sort_by}.")
    elif res.attribute.is_complex and res.sub is None:
        raise InvalidValueError(f"Cannot sort by the complex attribute {sort_by}.")
    return res


def sort_resources(
    rt: ResourceType, docs: list[JSONObject], sort_by: str, *, descending: bool = False
) -> list[JSONObject]:
    """``docs`` ordered by ``sortBy`` (a stable sort: equal keys keep their order)."""
    res = resolve_sort(rt, sort_by)
    present: list[tuple[tuple[int, Any], int]] = []
    missing: list[int] = []
    for index, doc in enumerate(docs):
        key = _key(rt, res, doc)
        if key is None:
            missing.append(index)
        else:
            present.append((key, index))
    present.sort(key=lambda pair: pair[0], reverse=descending)
    ranked = [index for _, index in present]
    ordered = missing + ranked if descending else ranked + missing
    return [docs[index] for index in ordered]


def _key(rt: ResourceType, res: Resolved, doc: JSONObject) -> tuple[int, Any] | None:
    leaf = res.sub or res.attribute
    value = _value(rt, res, doc)
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if leaf.type in _NUMBERS and isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    if leaf.type is AttrType.BOOLEAN and isinstance(value, bool):
        return (0, int(value))
    text = str(value)
    return (1, text if leaf.case_exact or leaf.type not in _STRINGY else text.casefold())


def _value(rt: ResourceType, res: Resolved, doc: JSONObject) -> Any:
    container: Any = doc
    if res.schema is not None and res.schema is not rt.schema:
        container = _get(doc, res.schema.id)
    value = _get(container, res.attribute.name)
    if res.attribute.multi_valued:
        if not isinstance(value, list) or not value:
            return None
        primary = [v for v in value if isinstance(v, dict) and v.get("primary") is True]
        value = (primary or value)[0]
        if res.attribute.is_complex:
            return _get(value, (res.sub or _value_sub(res.attribute)).name)
        return value
    return _get(value, res.sub.name) if res.sub is not None else value


def _value_sub(attr: Attribute) -> Attribute:
    sub = attr.sub("value")
    assert sub is not None  # resolve_sort checked it
    return sub


def _get(container: Any, name: str) -> Any:
    if not isinstance(container, dict):
        return None
    if name in container:
        return container[name]
    lowered = name.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), None)
