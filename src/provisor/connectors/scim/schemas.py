"""What a SCIM service provider accepts, from its ``/Schemas`` and ``/ResourceTypes``
(RFC 7643 §6-7, RFC 7644 §4): what it does not declare is left out of what is written to it
(docs/decisions/0019-target-schemas.md).

Declared for a resource type: the attributes of its core schema, the extensions its resource
type lists (``schemaExtensions``), the extensions the service describes under ``/Schemas``
without tying them to any resource type (SAP's vendor extensions on the Local Identity
Directory, decision 0004), and always the common attributes (``id``, ``externalId``,
``meta``, ``schemas``). Sub-attributes of a complex attribute are checked when its schema
lists them; a schema a resource type names but ``/Schemas`` does not describe is taken
whole. Names compare case-insensitively, as SCIM's do.

Discovery is bounded: each answer at most ``MAX_ANSWER_BYTES`` (decoded), both requests
together ``DISCOVERY_SECONDS``. A service that cannot say (no ``/Schemas``, an error, an
answer that is no ListResponse) gets what the write transformation makes, with a note.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import orjson

from provisor.connectors.base import (
    BackendError,
    ConnectorError,
    Entity,
    Fitted,
    patch_operations_of,
)
from provisor.connectors.http import HTTPClient
from provisor.types import EntityType

COMMON = frozenset({"id", "externalid", "meta"})  # RFC 7643 §3.1, lower case
MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_SCHEMAS = 500  # schemas read from /Schemas
MAX_ATTRIBUTES = 2000  # attributes (and sub-attributes of each) read from one schema
DISCOVERY_SECONDS = 30.0
RESOURCE_TYPES = {  # the names a /ResourceTypes entry may have, in lower case: endpoint, name
    kind.value: (kind.endpoint.lower(), kind.resource_type.lower()) for kind in EntityType
}

Attributes = Mapping[str, frozenset[str] | None]  # name -> its sub-attributes (None: any)


@dataclass(frozen=True, slots=True)
class Shape:
    """What a service accepts of one resource type: schema URNs (lower case) → their
    attributes (lower case), None for a schema it names but does not describe."""

    core: str
    accepted: Mapping[str, Attributes | None]

    def fit(self, entity: Entity) -> Fitted:
        left: list[str] = []
        fitted: Entity = {}
        core = self.accepted.get(self.core)
        for key, value in entity.items():
            lowered = key.lower()
            if lowered == "schemas" and isinstance(value, list):
                fitted[key] = [u for u in value if self._declares(u, left)]
            elif lowered in COMMON or lowered == "schemas":
                fitted[key] = value
            elif lowered in self.accepted:  # an extension (or the core schema by its URN)
                fitted[key] = _within(value, self.accepted[lowered], f"{key}:", left)
            elif lowered.startswith("urn:"):
                left.append(key)
            elif core is None:
                fitted[key] = value
            elif lowered in core:
                fitted[key] = _subs(value, core[lowered], key, left)
            else:
                left.append(key)
        if not left:
            return Fitted(entity)
        return Fitted(fitted, tuple(dict.fromkeys(left)))

    def _declares(self, urn: Any, left: list[str]) -> bool:
        if isinstance(urn, str) and urn.lower() not in self.accepted:
            left.append(urn)
            return False
        return True


def _within(value: Any, attributes: Attributes | None, prefix: str, left: list[str]) -> Any:
    """An extension's object with only the attributes its schema declares."""
    if attributes is None or not isinstance(value, dict):
        return value
    kept = {}
    for key, inner in value.items():
        if key.lower() in attributes:
            kept[key] = _subs(inner, attributes[key.lower()], prefix + key, left)
        else:
            left.append(prefix + key)
    return kept


def _subs(value: Any, subs: frozenset[str] | None, path: str, left: list[str]) -> Any:
    """A complex value (or each of a multi-valued one) with only its declared sub-attributes."""
    if subs is None:
        return value
    if isinstance(value, list):
        return [_sub(one, subs, path, left) for one in value]
    return _sub(value, subs, path, left)


def _sub(value: Any, subs: frozenset[str], path: str, left: list[str]) -> Any:
    if not isinstance(value, dict):
        return value
    kept = {}
    for key, inner in value.items():
        if key.lower() in subs:
            kept[key] = inner
        else:
            left.append(f"{path}.{key}")
    return kept


@dataclass(frozen=True, slots=True)
class TargetSchema:
    """What a service accepts, by entity type (user, group); empty when it could not say.
    ``fingerprint`` changes when what it declares changes."""

    shapes: Mapping[str, Shape] = field(default_factory=dict)
    note: str | None = None
    fingerprint: str = ""

    def fit(self, entity_type: str, entity: Entity) -> Fitted:
        shape = self.shapes.get(entity_type)
        if shape is None or patch_operations_of(entity) is not None:
            return Fitted(entity)  # a PATCH request goes as the transformation made it
        return shape.fit(entity)


def _fingerprint(shapes: Mapping[str, Shape]) -> str:
    described = {
        entity_type: {
            "core": shape.core,
            "accepted": {
                urn: None if attrs is None else {a: _sorted(s) for a, s in attrs.items()}
                for urn, attrs in shape.accepted.items()
            },
        }
        for entity_type, shape in shapes.items()
    }
    text = orjson.dumps(described, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest() if shapes else ""


def _sorted(subs: frozenset[str] | None) -> list[str] | None:
    return None if subs is None else sorted(subs)


async def discover(http: HTTPClient) -> TargetSchema:
    """Read a service's ``/Schemas`` and ``/ResourceTypes``: what it accepts, or a note
    saying why everything is sent as the write transformation makes it."""
    fallback = "entities are sent as the write transformation makes them"
    try:
        with anyio.fail_after(DISCOVERY_SECONDS):
            schemas = await _listing(http, "Schemas")
            types = await _listing(http, "ResourceTypes")
    except TimeoutError:
        took = f"reading its /Schemas and /ResourceTypes took over {DISCOVERY_SECONDS:.0f} s"
        return TargetSchema(note=f"{took}; {fallback}")
    except ConnectorError as exc:
        return TargetSchema(note=f"its schemas could not be read ({exc.message}); {fallback}")
    return shapes_of(schemas, types)


async def _listing(http: HTTPClient, endpoint: str) -> list[dict[str, Any]]:
    body = await http.json("GET", endpoint, limit=MAX_ANSWER_BYTES)
    resources = body.get("Resources") if isinstance(body, dict) else body
    if not isinstance(resources, list):
        raise BackendError(f"GET /{endpoint}: the answer is not a SCIM ListResponse")
    return [r for r in resources if isinstance(r, dict)]


def shapes_of(schemas: Iterable[dict[str, Any]], types: Iterable[dict[str, Any]]) -> TargetSchema:
    """What a service accepts, from the resources of its /Schemas and /ResourceTypes."""
    described: dict[str, Attributes] = {}
    for schema in list(schemas)[:MAX_SCHEMAS]:
        urn, attributes = schema.get("id"), schema.get("attributes")
        if isinstance(urn, str) and isinstance(attributes, list):
            described[urn.lower()] = _attributes(attributes)
    resource_types = [t for t in types if isinstance(t.get("schema"), str)]
    tied = {t["schema"].lower() for t in resource_types}
    tied.update(e for t in resource_types for e in _extensions(t))
    untied = [urn for urn in described if urn not in tied]
    shapes: dict[str, Shape] = {}
    missing: list[str] = []
    for entity_type, names in RESOURCE_TYPES.items():
        found = next((t for t in resource_types if _name_of(t) in names), None)
        if found is None:
            missing.append(names[1].capitalize())
            continue
        core = found["schema"].lower()
        urns = (core, *_extensions(found), *untied)
        shapes[entity_type] = Shape(core, {urn: described.get(urn) for urn in urns})
    note = None
    if missing:
        note = (
            f"its /ResourceTypes declares no {' or '.join(missing)} resource type: those are "
            "sent as the write transformation makes them"
        )
    return TargetSchema(shapes, note, _fingerprint(shapes))


def _attributes(attributes: list[Any]) -> Attributes:
    declared: dict[str, frozenset[str] | None] = {}
    for attribute in attributes[:MAX_ATTRIBUTES]:
        name = attribute.get("name") if isinstance(attribute, dict) else None
        if not isinstance(name, str):
            continue
        subs = attribute.get("subAttributes")
        names = subs[:MAX_ATTRIBUTES] if isinstance(subs, list) else []
        named = frozenset(
            n["name"].lower()
            for n in names
            if isinstance(n, dict) and isinstance(n.get("name"), str)
        )
        declared[name.lower()] = named if attribute.get("type") == "complex" and named else None
    return declared


def _extensions(resource_type: Mapping[str, Any]) -> list[str]:
    listed = resource_type.get("schemaExtensions")
    if not isinstance(listed, list):
        return []
    urns = (e.get("schema") for e in listed if isinstance(e, dict))
    return [u.lower() for u in urns if isinstance(u, str)]


def _name_of(resource_type: Mapping[str, Any]) -> str:
    """A resource type's endpoint's last segment (``/Users`` → users), else its name."""
    endpoint = resource_type.get("endpoint")
    if isinstance(endpoint, str) and endpoint.strip("/"):
        return endpoint.strip("/").rsplit("/", 1)[-1].lower()
    name = resource_type.get("name")
    return name.lower() if isinstance(name, str) else ""
