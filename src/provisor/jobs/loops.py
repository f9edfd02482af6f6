"""Loop prevention (spec §6.4): a change provisor wrote into a back-end that is also a source
is not propagated again when that back-end reports it back in real time.

When a job or a real-time call writes an entity into a target whose back-end is also read by
a source system, provisor keeps a fingerprint (SHA-256, no personal data) of the entity as
the back-end answered the write; when the back-end only says what it stored, of the
attributes sent, with their names. A real-time change arriving from that back-end with the
same fingerprint is provisor's own echo. Any other change, by a person or another program,
differs in some attribute and goes through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

DELETED = "deleted"  # the fingerprint of an entity provisor deleted
_VOLATILE = ("meta",)  # changes on every write, also when nothing else does


@dataclass(frozen=True, slots=True)
class Echo:
    """What provisor last wrote into one entity of a back-end."""

    entity_id: str
    fingerprint: str
    keys: tuple[str, ...] | None = None  # set when only the attributes sent are known


def endpoint_of(prefix: str, properties: Mapping[str, str]) -> str | None:
    """The back-end a system reads or writes, as a SHA-256 key: the same for a source and a
    target on one back-end. None when it cannot be told."""
    if prefix == "idds":
        address = "local-identity-directory"
    elif properties.get("URL"):
        address = properties["URL"].strip().lower().rstrip("/")
    elif properties.get("ldap.url"):
        address = properties["ldap.url"].strip().lower().rstrip("/")
    elif properties.get("csv.user.file"):
        address = "file:" + properties["csv.user.file"].strip()
    else:
        return None
    return hashlib.sha256(f"{prefix}:{address}".encode()).hexdigest()


def written(entity_id: str, answered: Any, sent: Mapping[str, Any] | None) -> Echo:
    """The echo of a write: the back-end's answer when it gave the entity, else what was sent."""
    if isinstance(answered, Mapping) and answered:
        return Echo(entity_id, fingerprint(answered))
    keys = tuple(sorted(k for k in (sent or {}) if k not in _VOLATILE and k != "id"))
    return Echo(entity_id, fingerprint(sent or {}, keys), keys)


def deleted(entity_id: str) -> Echo:
    return Echo(entity_id, DELETED)


def fingerprint(entity: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    wanted = keys if keys is not None else [k for k in entity if k not in _VOLATILE]
    shown = {k: entity.get(k) for k in wanted}
    return hashlib.sha256(orjson.dumps(shown, option=orjson.OPT_SORT_KEYS)).hexdigest()


def is_echo(last: Echo | None, entity: Mapping[str, Any] | None) -> bool:
    """Whether a change reported by a back-end is exactly what provisor wrote there last
    (``entity`` None: the entity was deleted)."""
    if last is None:
        return False
    if entity is None:
        return last.fingerprint == DELETED
    return last.fingerprint == fingerprint(entity, last.keys)
