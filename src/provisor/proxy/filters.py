"""The filters a proxy understands (spec §5.4) and their translation to the back-end.

Two forms only: ``<attribute> eq <value>`` for one entity, and the delta filter
``meta.lastModified gt "<timestamp>"``. The attribute of an ``eq`` filter is the target path
of a proxy read mapping; the mapping's source path names the back-end attribute that the
connector searches (``find``), so no filter is ever evaluated by scanning the back-end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from scim2_models.path import AttrPath, CompareOperator, Comparison, ScimFilter

from provisor.scim.errors import InvalidFilterError
from provisor.transform.document import Entity

_INDEX = re.compile(r"\[\d+\]")
_WHOLE = {"$", "$.*"}


@dataclass(frozen=True, slots=True)
class Equals:
    attribute: str  # as the client wrote it, e.g. ``emails.value``
    value: str


@dataclass(frozen=True, slots=True)
class ModifiedAfter:
    timestamp: str


ProxyFilter = Equals | ModifiedAfter


def parse(text: str) -> ProxyFilter:
    """A client's filter; InvalidFilterError for anything else than the two forms."""
    try:
        node = ScimFilter(text).ast
    except Exception as exc:  # scim2-models raises several types for bad syntax
        raise InvalidFilterError(f"Invalid filter {text!r}: {exc}") from exc
    if not isinstance(node, Comparison):
        raise InvalidFilterError(
            "A proxy filter is one comparison: <attribute> eq <value>, or "
            'meta.lastModified gt "<timestamp>".'
        )
    name = _name(node.attr_path)
    if node.attr_path.uri:
        raise InvalidFilterError("Fully qualified (URN) attributes are not supported in filters.")
    if name.lower() == "meta.lastmodified":
        if node.op is not CompareOperator.gt:
            raise InvalidFilterError("meta.lastModified is filtered with gt only.")
        return ModifiedAfter(_timestamp(node.value))
    if node.op is not CompareOperator.eq:
        raise InvalidFilterError(f"Operator {node.op.value} is not supported: only eq (and gt).")
    value = node.value
    if isinstance(value, bool):
        value = "true" if value else "false"
    if not isinstance(value, str | int | float):
        raise InvalidFilterError("The value of an eq filter is a string, number or boolean.")
    return Equals(name, str(value))


def _name(path: AttrPath) -> str:
    return f"{path.attr}.{path.sub_attr}" if path.sub_attr else str(path.attr)


def _timestamp(value: object) -> str:
    text = value.isoformat() if isinstance(value, datetime) else value
    if not isinstance(text, str):
        raise InvalidFilterError("meta.lastModified gt takes a timestamp string.")
    try:
        datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidFilterError(f"{text!r} is not an ISO 8601 timestamp.") from exc
    return text.strip()


def simple_path(path: str) -> str:
    """A JSONPath of a mapping as a filter attribute: ``$.emails[0].value`` →
    ``emails.value``; ``$.uid[0]`` → ``uid``. Bracketed names stay as they are."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    return _INDEX.sub("", text)


def backend_attribute(section: Entity, attribute: str) -> str:
    """The back-end attribute that a filter attribute comes from, through the proxy read
    mappings (spec §5.4): the source path of the mapping whose target path it is; with a
    whole-document copy (``$`` to ``$``) and no such mapping, the attribute itself."""
    wanted = attribute.lower()
    whole = False
    for mapping in section.mappings:
        if mapping.ignore or mapping.target_path is None:
            continue
        target = mapping.target_path.strip()
        if target in _WHOLE and (mapping.source_path or "").strip() in _WHOLE:
            whole = True
            continue
        if simple_path(target).lower() != wanted:
            continue
        source = mapping.source_path
        if source is None or mapping.functions or mapping.condition is not None:
            raise InvalidFilterError(
                f"{attribute} is not read from one back-end attribute: it cannot be filtered."
            )
        translated = simple_path(source)
        if "[" in translated.replace("['", "").replace("']", "") or "*" in translated:
            raise InvalidFilterError(f"{attribute} comes from {source}: it cannot be filtered.")
        return translated
    if whole:
        return attribute
    raise InvalidFilterError(
        f"{attribute} is not an attribute of the proxy read transformation: no filter on it."
    )
