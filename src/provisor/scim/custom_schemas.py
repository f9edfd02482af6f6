"""Custom schemas of the Local Identity Directory: SAP's attribute model and limits (§7.4)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from provisor.scim import schemas as s
from provisor.scim.attributes import (
    Attribute,
    AttrType,
    Mutability,
    Returned,
    Schema,
    Uniqueness,
)
from provisor.scim.errors import InvalidValueError

MAX_SCHEMAS = 20
MAX_ATTRIBUTES = 20
MAX_SUB_ATTRIBUTES = 20

_URN = re.compile(r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}(:[A-Za-z0-9()+,\-.=@;$_!*'%/?#]+)+$")
_ATTR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,127}$")
_TYPES = {t.value: t for t in AttrType if t is not AttrType.BINARY}
E = TypeVar("E", Mutability, Returned, Uniqueness)

_KNOWN_KEYS = {
    "name",
    "type",
    "subAttributes",
    "multiValued",
    "description",
    "required",
    "canonicalValues",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
    "referenceTypes",
}


def parse_custom_schema(doc: Any) -> Schema:
    """Check a custom schema document and build its Schema, or raise InvalidValueError.

    Every problem found is reported at once, each with its location.
    """
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise InvalidValueError("A schema must be a JSON object.")
    schema_id = doc.get("id")
    if not isinstance(schema_id, str) or not _URN.match(schema_id):
        problems.append(
            "id: required, a URN such as urn:sap:cloud:scim:schemas:extension:custom:2.0:MySchema"
        )
        schema_id = ""
    elif schema_id.lower() in {b.id.lower() for b in s.BUILT_IN}:
        problems.append(f"id: {schema_id} is a built-in schema and cannot be redefined")
    suffix = schema_id.rsplit(":", 1)[-1] if schema_id else ""
    name = doc.get("name", suffix)
    if not isinstance(name, str) or (schema_id and name != suffix):
        problems.append(f"name: must match the last part of the id ({suffix!r})")
    description = doc.get("description", "")
    if not isinstance(description, str):
        problems.append("description: must be a string")
        description = ""
    raw_attributes = doc.get("attributes")
    attributes: list[Attribute] = []
    if not isinstance(raw_attributes, list) or not raw_attributes:
        problems.append("attributes: required, a non-empty list")
    elif len(raw_attributes) > MAX_ATTRIBUTES:
        problems.append(f"attributes: at most {MAX_ATTRIBUTES} attributes per schema")
    else:
        attributes = _attributes(raw_attributes, "attributes", problems, top_level=True)
    if problems:
        raise InvalidValueError("Invalid schema: " + "; ".join(problems) + ".")
    schema = Schema(
        id=schema_id,
        name=str(name),
        description=str(description).strip() or f"Custom schema {name}, an extension of User.",
        attributes=tuple(attributes),
        custom=True,
    )
    return schema.described(_generated_descriptions(schema))


def _generated_descriptions(schema: Schema) -> dict[str, str]:
    """Descriptions for the attributes their creator left undescribed."""
    out: dict[str, str] = {}
    for attribute in schema.attributes:
        out[attribute.name] = f"{_kind(attribute)} of the custom schema {schema.name}."
        for sub in attribute.sub_attributes:
            out[f"{attribute.name}.{sub.name}"] = f"{_kind(sub)} of {attribute.name}."
    return out


def _kind(attribute: Attribute) -> str:
    """E.g. "A required string attribute", "A multi-valued complex attribute"."""
    words = ["required"] if attribute.required else []
    words += ["multi-valued"] if attribute.multi_valued else []
    words.append(attribute.type.value)
    article = "An" if words[0][0] in "aeiou" else "A"
    return f"{article} {' '.join(words)} attribute"


def _attributes(
    raw: list[Any], where: str, problems: list[str], *, top_level: bool
) -> list[Attribute]:
    seen: set[str] = set()
    out: list[Attribute] = []
    for index, item in enumerate(raw):
        loc = f"{where}[{index}]"
        attribute = _attribute(item, loc, problems, top_level=top_level)
        if attribute is None:
            continue
        if attribute.name.lower() in seen:
            problems.append(f"{loc}.name: {attribute.name!r} is defined twice")
            continue
        seen.add(attribute.name.lower())
        out.append(attribute)
    return out


def _attribute(item: Any, loc: str, problems: list[str], *, top_level: bool) -> Attribute | None:
    if not isinstance(item, dict):
        problems.append(f"{loc}: must be an object")
        return None
    before = len(problems)
    unknown = sorted(set(item) - _KNOWN_KEYS)
    if unknown:
        problems.append(f"{loc}: unknown keys {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not _ATTR_NAME.match(name):
        problems.append(
            f"{loc}.name: required, letters, digits, '_' or '-', starting with a letter"
        )
    type_name = item.get("type")
    attr_type = _TYPES.get(type_name) if isinstance(type_name, str) else None
    if attr_type is None:
        problems.append(f"{loc}.type: one of {', '.join(sorted(_TYPES))}")
    flags = {}
    for key in ("multiValued", "required", "caseExact"):
        value = item.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"{loc}.{key}: must be true or false")
        flags[key] = bool(value)
    mutability = _enum(item, "mutability", Mutability, Mutability.READ_WRITE, loc, problems)
    returned = _enum(item, "returned", Returned, Returned.DEFAULT, loc, problems)
    uniqueness = _enum(item, "uniqueness", Uniqueness, Uniqueness.NONE, loc, problems)
    canonical = _strings(item, "canonicalValues", loc, problems)
    references = _strings(item, "referenceTypes", loc, problems)
    description = item.get("description", "")
    if not isinstance(description, str):
        problems.append(f"{loc}.description: must be a string")
    subs: list[Attribute] = []
    raw_subs = item.get("subAttributes")
    if attr_type is AttrType.COMPLEX:
        if not top_level:
            problems.append(f"{loc}.type: a sub-attribute cannot be complex")
        elif not isinstance(raw_subs, list) or not raw_subs:
            problems.append(f"{loc}.subAttributes: required for a complex attribute")
        elif len(raw_subs) > MAX_SUB_ATTRIBUTES:
            problems.append(f"{loc}.subAttributes: at most {MAX_SUB_ATTRIBUTES} sub-attributes")
        else:
            subs = _attributes(raw_subs, f"{loc}.subAttributes", problems, top_level=False)
    elif raw_subs:
        problems.append(f"{loc}.subAttributes: only a complex attribute has sub-attributes")
    if flags["multiValued"] and attr_type is not AttrType.COMPLEX:
        problems.append(f"{loc}.multiValued: only a complex attribute may be multi-valued")
    if len(problems) > before or attr_type is None:
        return None
    return Attribute(
        name=str(name),
        type=attr_type,
        multi_valued=flags["multiValued"],
        required=flags["required"],
        case_exact=flags["caseExact"],
        mutability=mutability,
        returned=returned,
        uniqueness=uniqueness,
        canonical_values=canonical,
        reference_types=references,
        sub_attributes=tuple(subs),
        description=str(description),
    )


def _enum(
    item: dict[str, Any], key: str, enum: type[E], default: E, loc: str, problems: list[str]
) -> E:
    value = item.get(key, default.value)
    try:
        return enum(value)
    except ValueError:
        problems.append(f"{loc}.{key}: one of {', '.join(m.value for m in enum)}")
        return default


def _strings(item: dict[str, Any], key: str, loc: str, problems: list[str]) -> tuple[str, ...]:
    value = item.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{loc}.{key}: must be a list of strings")
        return ()
    return tuple(value)
