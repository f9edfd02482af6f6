"""The SCIM attribute model of RFC 7643 §2 and §7: attribute and schema definitions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class AttrType(StrEnum):
    STRING = "string"
    BOOLEAN = "boolean"
    DECIMAL = "decimal"
    INTEGER = "integer"
    DATETIME = "dateTime"
    REFERENCE = "reference"
    BINARY = "binary"
    COMPLEX = "complex"


class Mutability(StrEnum):
    READ_ONLY = "readOnly"
    READ_WRITE = "readWrite"
    IMMUTABLE = "immutable"
    WRITE_ONLY = "writeOnly"


class Returned(StrEnum):
    ALWAYS = "always"
    NEVER = "never"
    DEFAULT = "default"
    REQUEST = "request"


class Uniqueness(StrEnum):
    NONE = "none"
    SERVER = "server"
    GLOBAL = "global"


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """One attribute of a schema, or a sub-attribute of a complex attribute."""

    name: str
    type: AttrType = AttrType.STRING
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: Mutability = Mutability.READ_WRITE
    returned: Returned = Returned.DEFAULT
    uniqueness: Uniqueness = Uniqueness.NONE
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: tuple[Attribute, ...] = ()
    description: str = ""
    _by_key: dict[str, Attribute] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        self._by_key.update({sub.name.lower(): sub for sub in self.sub_attributes})

    def sub(self, name: str) -> Attribute | None:
        """The sub-attribute called ``name`` (case-insensitive), if any."""
        return self._by_key.get(name.lower())

    @property
    def is_complex(self) -> bool:
        return self.type is AttrType.COMPLEX

    def to_scim(self) -> dict[str, Any]:
        """The attribute as RFC 7643 §7 represents it in a Schema resource."""
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type.value,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
        }
        if self.type in (AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY):
            out["caseExact"] = self.case_exact
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        out["mutability"] = self.mutability.value
        out["returned"] = self.returned.value
        out["uniqueness"] = self.uniqueness.value
        if self.sub_attributes:
            out["subAttributes"] = [sub.to_scim() for sub in self.sub_attributes]
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Schema:
    """A SCIM schema: a URN and its attributes."""

    id: str
    name: str
    description: str = ""
    attributes: tuple[Attribute, ...] = ()
    custom: bool = False
    _by_key: dict[str, Attribute] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        self._by_key.update({attr.name.lower(): attr for attr in self.attributes})

    def attribute(self, name: str) -> Attribute | None:
        """The attribute called ``name`` (case-insensitive), if any."""
        return self._by_key.get(name.lower())

    def described(self, descriptions: Mapping[str, str]) -> Schema:
        """This schema with the descriptions of ``descriptions`` (keys: ``name`` or
        ``name.subName``) where an attribute has none."""
        return replace(self, attributes=tuple(_described(a, descriptions) for a in self.attributes))

    def to_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [attr.to_scim() for attr in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{location}/Schemas/{self.id}"},
        }


def _described(
    attribute: Attribute, descriptions: Mapping[str, str], prefix: str = ""
) -> Attribute:
    key = prefix + attribute.name
    subs = tuple(_described(sub, descriptions, key + ".") for sub in attribute.sub_attributes)
    description = attribute.description.strip() or descriptions.get(key, "")
    return replace(attribute, description=description, sub_attributes=subs)


# Short constructors, so that schema definitions read like the RFC tables.


def string(name: str, **kw: Any) -> Attribute:
    return Attribute(name=name, type=AttrType.STRING, **kw)


def boolean(name: str, **kw: Any) -> Attribute:
    return Attribute(name=name, type=AttrType.BOOLEAN, **kw)


def integer(name: str, **kw: Any) -> Attribute:
    return Attribute(name=name, type=AttrType.INTEGER, **kw)


def datetime_(name: str, **kw: Any) -> Attribute:
    return Attribute(name=name, type=AttrType.DATETIME, **kw)


def reference(name: str, types: Iterable[str], **kw: Any) -> Attribute:
    return Attribute(name=name, type=AttrType.REFERENCE, reference_types=tuple(types), **kw)


def complex_(name: str, *subs: Attribute, **kw: Any) -> Attribute:
    return Attribute(name=name, type=AttrType.COMPLEX, sub_attributes=subs, **kw)


def multi(name: str, *subs: Attribute, **kw: Any) -> Attribute:
    """A multi-valued complex attribute."""
    return Attribute(name=name, type=AttrType.COMPLEX, multi_valued=True, sub_attributes=subs, **kw)
