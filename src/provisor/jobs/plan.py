"""What a job works with: the systems taking part, the entities read and the plan for each
in one target."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from provisor.connectors.base import Connector, Role, excerpt
from provisor.connectors.properties import Properties
from provisor.jobs.model import Action, ReadMode
from provisor.jobs.ports import Record
from provisor.jobs.retry import RetryPolicy
from provisor.transform import Transformation


@dataclass
class Participant:
    """A system taking part in a job, ready: its connector, compiled transformation and
    effective properties. What happens to it in a run (a failure that stops its writes, what
    it declares) is in the run's ledger (ledger.py)."""

    id: str
    name: str
    role: Role
    prefix: str
    connector: Connector
    transformation: Transformation
    properties: Mapping[str, str]
    echo: str | None = None  # its back-end, when a source reads it too (loops.endpoint_of)
    fingerprint: str = ""  # of its transformation and properties: a change re-evaluates all

    def flag(self, key: str, default: bool = False) -> bool:
        return Properties(self.properties).flag(key, default)

    def number(self, key: str) -> int | None:
        return Properties(self.properties).number(key)

    def handles(self, entity_type: str) -> bool:
        section = self.transformation.entity(entity_type)
        types = self.connector.capabilities.entity_types
        return section is not None and not section.ignore and entity_type in types

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy.of(self.properties)


@dataclass(slots=True)
class Item:
    """A source entity after the read transformation."""

    source_id: str
    document: dict[str, Any]
    raw: Any
    raw_hash: str = ""  # digest of the entity as the source gave it


@dataclass(slots=True)
class Plan:
    """What to do with one item in one target."""

    item: Item
    action: Action
    document: dict[str, Any] | None = None
    record: Record | None = None
    entity_id: str | None = None  # the target id the write transformation chose (create)
    hash: str | None = None
    reason: str | None = None
    seen: bool = True  # keeps the target's record (no deletion at the end)
    trace: Any = None
    written: Any = None  # the entity as the target answered the write (loop prevention)
    source_hash: str | None = None  # the item's raw hash with both configurations
    intended: bool = False  # its create was recorded as a write intent before it was sent
    left_out: tuple[str, ...] = ()  # what the target does not declare, left out of document
    unsent: bool = False  # its write was never sent: the target failed first (not counted)


def digest(document: Any) -> str:
    """SHA-256 of the canonical JSON of what is written: no personal data is stored."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class TypeRun:
    mode: ReadMode
    token: str | None
    read: int = 0
    newest: str | None = None
    complete: bool = False  # the read reached its end without a source error


def log_text(data: Any) -> str:
    """Canonical JSON of what an entity log holds."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


NAMES = ("userName", "displayName", "name", "cn", "uid")  # how a person names an entity


def name_of(*documents: Any) -> str | None:
    """The name of an entity (userName, displayName...) in the first of ``documents`` that
    has one, printable and at most 200 characters; None when none has."""
    for document in documents:
        if not isinstance(document, Mapping):
            continue
        for key in NAMES:
            value = document.get(key)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, str) and value.strip():
                return excerpt(value, 200)
    return None
