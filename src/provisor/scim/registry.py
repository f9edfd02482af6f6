"""Resource types and the schemas they are made of, built-in and custom."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from provisor.scim import schemas as s
from provisor.scim.attributes import Attribute, Schema
from provisor.scim.errors import InvalidPathError, SCIMError


@dataclass(frozen=True, slots=True)
class ResourceType:
    """A kind of resource served at an endpoint: its core schema and extensions."""

    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[Schema, ...]

    @property
    def all_schemas(self) -> tuple[Schema, ...]:
        return (self.schema, *self.extensions)

    def extension(self, urn: str) -> Schema | None:
        lowered = urn.lower()
        for ext in self.extensions:
            if ext.id.lower() == lowered:
                return ext
        return None

    def schema_by_urn(self, urn: str) -> Schema | None:
        if urn.lower() == self.schema.id.lower():
            return self.schema
        return self.extension(urn)

    def to_scim(self, location: str) -> dict[str, Any]:
        return {
            "schemas": [s.RESOURCE_TYPE],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": ext.id, "required": False}
                for ext in self.extensions
                if ext.id not in s.VENDOR_EXTENSIONS
            ],
            "meta": {
                "resourceType": "ResourceType",
                "location": f"{location}/ResourceTypes/{self.name}",
            },
        }


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an attribute path points: schema, attribute and optional sub-attribute.

    ``schema`` is None for the common attributes id, externalId and meta.
    """

    schema: Schema | None
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def leaf(self) -> Attribute:
        return self.sub or self.attribute


class Registry:
    """The resource types of the Local Identity Directory, with the tenant's custom schemas."""

    def __init__(self, custom_user_schemas: Iterable[Schema] = ()) -> None:
        custom = tuple(custom_user_schemas)
        self.user = ResourceType(
            name="User",
            endpoint="/Users",
            description="User Account",
            schema=s.CORE_USER,
            extensions=(s.ENTERPRISE, s.SAP_USER_EXTENSION, s.SAP_CUSTOM_USER_EXTENSION, *custom),
        )
        self.group = ResourceType(
            name="Group",
            endpoint="/Groups",
            description="Group",
            schema=s.CORE_GROUP,
            extensions=(s.SAP_CUSTOM_GROUP_EXTENSION, s.SAP_GROUP_EXTENSION),
        )
        self.custom = custom

    @property
    def resource_types(self) -> tuple[ResourceType, ResourceType]:
        return (self.user, self.group)

    def schemas(self) -> list[Schema]:
        seen: dict[str, Schema] = {}
        for rt in self.resource_types:
            for schema in rt.all_schemas:
                seen.setdefault(schema.id, schema)
        return list(seen.values())

    def schema(self, urn: str) -> Schema | None:
        lowered = urn.lower()
        for schema in self.schemas():
            if schema.id.lower() == lowered:
                return schema
        return None

    def resource_type(self, name: str) -> ResourceType | None:
        for rt in self.resource_types:
            if rt.name.lower() == name.lower():
                return rt
        return None


def resolve(
    rt: ResourceType,
    uri: str | None,
    attr: str,
    sub_attr: str | None,
    *,
    error: type[SCIMError] = InvalidPathError,
) -> Resolved:
    """Resolve ``[uri:]attr[.sub_attr]`` against a resource type or raise ``error``.

    Without a URN, the core schema is searched first, then the extensions, then the common
    attributes (id, externalId, meta).
    """
    name = f"{uri + ':' if uri else ''}{attr}{'.' + sub_attr if sub_attr else ''}"
    if uri:
        schema = rt.schema_by_urn(uri)
        if schema is None:
            raise error(f"Unknown schema {uri!r} in {name!r}.")
        candidates: tuple[Schema, ...] = (schema,)
    else:
        candidates = rt.all_schemas
    attribute: Attribute | None = None
    owner: Schema | None = None
    for schema in candidates:
        attribute = schema.attribute(attr)
        if attribute is not None:
            owner = schema
            break
    if attribute is None and uri is None:
        attribute = s.COMMON.get(attr.lower())
    if attribute is None:
        raise error(f"Unknown attribute {name!r} for resource type {rt.name}.")
    sub: Attribute | None = None
    if sub_attr:
        sub = attribute.sub(sub_attr)
        if sub is None:
            raise error(f"Unknown sub-attribute {name!r} for resource type {rt.name}.")
    return Resolved(schema=owner, attribute=attribute, sub=sub)
