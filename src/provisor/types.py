"""Types shared across the package."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeAlias

JSONObject: TypeAlias = dict[str, Any]
"""A decoded JSON object, such as a SCIM resource."""


class EntityType(StrEnum):
    """What provisor provisions. The value is the transformation documents' key (``user``,
    ``group``) and what the database stores; :attr:`resource_type` and :attr:`endpoint` are
    its SCIM spellings."""

    USER = "user"
    GROUP = "group"

    @property
    def resource_type(self) -> str:
        """The SCIM resource type: ``User``, ``Group``."""
        return "User" if self is EntityType.USER else "Group"

    @property
    def endpoint(self) -> str:
        """The SCIM endpoint: ``Users``, ``Groups``."""
        return "Users" if self is EntityType.USER else "Groups"

    @classmethod
    def parse(cls, name: str) -> EntityType:
        """The entity type of any of its spellings (``user``, ``User``, ``Users``...);
        ValueError otherwise."""
        key = name.strip().lower()
        found = _SPELLINGS.get(key)
        if found is None:
            raise ValueError(f"unknown entity type {name!r}: expected user or group")
        return found


_SPELLINGS = {
    spelling: kind
    for kind in EntityType
    for spelling in (kind.value, kind.resource_type.lower(), kind.endpoint.lower())
}


class Operation(StrEnum):
    """What the transformation prepares: a read (source side) or a write of this kind."""

    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
