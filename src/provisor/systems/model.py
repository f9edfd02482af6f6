"""What a system is, as the admin API and the CLI see it, and what they may send."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from provisor.connectors.base import Role
from provisor.connectors.types import ConnectorType

NAME = re.compile(r"[A-Za-z0-9 _.\-]{1,100}")
NAME_RULE = "1 to 100 characters: letters a-z A-Z, digits, space, '-', '_' and '.'"
ORIGIN_CUSTOMER = "CUSTOMER_MANAGED"
KINDS = {Role.SOURCE: ("read",), Role.TARGET: ("write",), Role.PROXY: ("read", "write")}
SOURCES = (
    "Target systems only: the ids of the source systems linked to this target, whose jobs "
    "write to it (a target's `sourceSystems` and a source's `targetSystems` name the links)."
)


def check_name(name: str) -> str:
    """The name, trimmed; ValueError when it breaks SAP's rules."""
    trimmed = name.strip()
    if not NAME.fullmatch(trimmed):
        raise ValueError(f"a system name has {NAME_RULE}; {name!r} does not")
    return trimmed


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NewSystem(_Input):
    """A system to create (``POST /api/v1/systems``, ``provisor systems create --file``)."""

    name: str
    type: str = Field(description="Connector type id (scim) or name (SCIM System).")
    role: Role
    description: str = Field("", max_length=2000)
    enabled: bool = True
    properties: dict[str, str | None] = Field(default_factory=dict)
    credential_keys: list[str] = Field(default_factory=list, alias="credentialKeys")
    source_system_ids: list[str] = Field(
        default_factory=list, alias="sourceSystemIds", description=SOURCES
    )
    transformations: dict[str, Any] = Field(
        default_factory=dict,
        description="Optional documents by kind (read, write) instead of the type's defaults.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_name(value)


class SystemChanges(_Input):
    """Fields to change (``PATCH /api/v1/systems/{id}``); absent fields stay.

    ``properties`` merge: a value sets, ``null`` removes, the 40-character mask keeps a
    stored credential.
    """

    name: str | None = None
    description: str | None = Field(None, max_length=2000)
    enabled: bool | None = None
    properties: dict[str, str | None] | None = None
    credential_keys: list[str] | None = Field(None, alias="credentialKeys")
    source_system_ids: list[str] | None = Field(
        None, alias="sourceSystemIds", description=SOURCES + " The list replaces the linked one."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class TransformationVersion:
    kind: str
    version: int
    text: str
    description: str
    author: str
    created: str

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "description": self.description,
            "modifiedBy": self.author,
            "lastModified": self.created,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A system linked to another: a source of a target, or a target of a source."""

    id: str
    name: str

    def to_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class System:
    """A system with its credentials masked: safe to show anywhere."""

    id: str
    name: str
    description: str
    type: ConnectorType
    role: Role
    enabled: bool
    origin: str
    version: int
    created: str
    last_modified: str
    properties: dict[str, str]  # credentials as MASK
    credential_keys: tuple[str, ...]
    source_system_ids: tuple[str, ...] = ()
    source_systems: tuple[Link, ...] = ()  # a target's sources, by name
    target_systems: tuple[Link, ...] = ()  # the targets a source is linked to, by name
    transformations: dict[str, int] = field(default_factory=dict)  # kind -> current version
    problems: tuple[str, ...] = ()  # what keeps it from working (missing required properties)

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS[self.role]

    @property
    def connector_version(self) -> str | None:
        key = f"{self.type.prefix}.api.version"
        spec = self.type.spec(key)
        return self.properties.get(key) or (spec.default if spec else None)

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "type": self.type.id,
            "typeName": self.type.name,
            "role": self.role.value,
            "enabled": self.enabled,
            "origin": self.origin,
            "connectorVersion": self.connector_version,
            "properties": self.properties,
            "credentialKeys": list(self.credential_keys),
            "transformations": self.transformations,
            "problems": list(self.problems),
            "version": self.version,
            "created": self.created,
            "lastModified": self.last_modified,
        }
        if self.role is Role.TARGET:
            out["sourceSystemIds"] = list(self.source_system_ids)
            out["sourceSystems"] = [link.to_dict() for link in self.source_systems]
        if self.role is Role.SOURCE:
            out["targetSystems"] = [link.to_dict() for link in self.target_systems]
        return out
