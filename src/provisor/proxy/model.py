"""What the proxy's modules share: a proxy system compiled for its requests, and what the
service answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisor.scim import schemas as s
from provisor.systems.model import System
from provisor.transform.engine import Transformation
from provisor.types import EntityType

ENDPOINTS = {kind.endpoint: kind for kind in EntityType}  # exactly Users, Groups
CORE_SCHEMAS = {EntityType.USER: s.USER, EntityType.GROUP: s.GROUP}
DEFAULT_COUNT = 25
MAX_COUNT = 100


@dataclass(frozen=True, slots=True)
class Compiled:
    """What a proxy request needs of its system, for one version of it."""

    system: System
    properties: dict[str, str]
    read: Transformation
    write: Transformation
    tenant: str  # whose system: its schemas are the tenant's


@dataclass(frozen=True, slots=True)
class Resource:
    """A user or group as the proxy serves it: ``document`` (with ``meta``: the ETag in
    ``version``, the URL in ``location``) and ``shown``, what a response holds of it (the
    request's ``attributes``/``excludedAttributes``; the whole document when none).
    ``not_modified``: the client holds this version already (If-None-Match)."""

    document: dict[str, Any]
    shown: dict[str, Any]
    not_modified: bool = False

    @classmethod
    def whole(cls, document: dict[str, Any]) -> Resource:
        return cls(document, document)

    @property
    def version(self) -> str:
        version: str = self.document["meta"]["version"]
        return version

    @property
    def location(self) -> str:
        location: str = self.document["meta"]["location"]
        return location


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of a list request, ready to become a SCIM ListResponse."""

    resources: list[dict[str, Any]]  # as shown (attributes chosen)
    total: int
    start_index: int
    items_per_page: int  # entities read from the back-end (before the read condition)
