"""What a proxy system tells about itself (RFC 7644 §4), from its transformations.

Spec §5.9 leaves the discovery endpoints of a proxy undocumented; these say what the proxy
really does: PATCH (passed on to back-ends that take a PatchOp, else applied to the resource
and written back), ``eq``/``gt`` filters with at most 100 results, sorting, weak ETags; no
bulk or password change. A resource type is listed when the proxy read transformation
serves it. Its schema is the whole built-in one (extensions too) when both transformations
copy the whole document (``$`` to ``$``); else the core schema cut down to the attributes the read
transformation produces and the write transformation takes (read-only ones need only be
read).
"""

from __future__ import annotations

import re
from typing import Any

from provisor.proxy.filters import simple_path
from provisor.proxy.model import MAX_COUNT, Compiled
from provisor.scim import schemas as s
from provisor.scim.registry import Registry
from provisor.transform.document import Entity
from provisor.types import EntityType

_WHOLE = {"$", "$.*"}
# [*], [?(@.value)], [?(@.type == 'work')]: not part of a name
_FILTERS = re.compile(r"\[\?\([^\]]*\)\]|\[[^\]']*\]")
_FILTERED = re.compile(r"@\.(\w+)")  # the sub-attributes a filter selects elements by


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [s.SERVICE_PROVIDER_CONFIG],
        "documentationUri": "https://github.com/provisor/provisor/blob/main/docs/proxy.md",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "authenticationSchemes": s.authentication_schemes("a technical user with proxy_api"),
        "meta": {
            "resourceType": "ServiceProviderConfig",
            "location": f"{base}/ServiceProviderConfig",
        },
    }


def served_types(compiled: Compiled) -> list[EntityType]:
    out = []
    for entity_type in EntityType:
        section = compiled.read.entity(entity_type)
        if section is not None and not section.ignore:
            out.append(entity_type)
    return out


def resource_types(compiled: Compiled, registry: Registry, base: str) -> list[dict[str, Any]]:
    out = []
    for entity_type in served_types(compiled):
        rt = registry.resource_type(entity_type.resource_type)
        assert rt is not None
        doc = rt.to_scim(base)
        doc["endpoint"] = "/" + entity_type.endpoint
        if not _whole(compiled, entity_type):
            doc["schemaExtensions"] = []
        out.append(doc)
    return out


def schemas(compiled: Compiled, registry: Registry, base: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entity_type in served_types(compiled):
        rt = registry.resource_type(entity_type.resource_type)
        assert rt is not None
        if _whole(compiled, entity_type):
            # SAP's vendor extensions too, described but not declared (decision 0004)
            chosen = [schema.to_scim(base) for schema in rt.all_schemas]
        else:
            chosen = [_cut(rt.schema.to_scim(base), compiled, entity_type)]
        for doc in chosen:
            if doc["id"] not in seen:
                seen.add(doc["id"])
                out.append(doc)
    return out


def _cut(doc: dict[str, Any], compiled: Compiled, entity_type: str) -> dict[str, Any]:
    read = _names(compiled.read.entity(entity_type), target=True)
    write = _names(compiled.write.entity(entity_type), target=False)
    ids = _id_attributes(compiled.read.entity(entity_type))
    kept = []
    for attribute in doc.get("attributes", []):
        name = str(attribute.get("name", "")).lower()
        if read is not None and name not in read:
            continue
        if write is not None and name not in write and attribute.get("mutability") != "readOnly":
            continue
        if name in ids and attribute.get("mutability") == "readWrite":
            attribute = {**attribute, "mutability": "immutable"}
        subs = attribute.get("subAttributes")
        if isinstance(subs, list):
            readable = None if read is None else read[name]
            writable = None if write is None else write.get(name, set())
            constants = _constants(compiled.read.entity(entity_type), name)
            attribute = {
                **attribute,
                "subAttributes": _cut_subs(subs, readable, writable, constants),
            }
        kept.append(attribute)
    return {**doc, "attributes": kept}


def _id_attributes(section: Entity | None) -> set[str]:
    """Attributes read from the back-end attribute the id is read from: changing them
    would change the id, which SCIM never does (RFC 7643 §3.1), so they are immutable."""
    if section is None:
        return set()
    sources = {
        (m.source_path or "").strip()
        for m in section.mappings
        if m.target_path is not None and simple_path(m.target_path).lower() == "id"
    }
    sources.discard("")
    return {
        simple_path(m.target_path).lower()
        for m in section.mappings
        if m.target_path is not None
        and (m.source_path or "").strip() in sources
        and simple_path(m.target_path).lower() != "id"
        and not m.functions
    }


def _cut_subs(
    subs: list[dict[str, Any]],
    read: set[str] | None,
    write: set[str] | None,
    constants: dict[str, list[str]],
) -> list[dict[str, Any]]:
    """The sub-attributes the read mappings produce; read-only when the write mappings
    do not take them; with the constants the read gives them as their canonical values."""
    kept = []
    for sub in subs:
        name = str(sub.get("name", "")).lower()
        if read is not None and name not in read:
            continue
        if write is not None and name not in write:
            sub = {**sub, "mutability": "readOnly"}
        if name in constants:
            sub = {**sub, "canonicalValues": constants[name]}
        kept.append(sub)
    return kept


def _constants(section: Entity | None, attribute: str) -> dict[str, list[str]]:
    """The sub-attributes of ``attribute`` that the read mappings only ever set to constants
    (``phoneNumbers[0].type`` = ``mobile`` on LDAP), with those constants."""
    found: dict[str, list[str]] = {}
    computed: set[str] = set()
    for mapping in section.mappings if section is not None else ():
        if mapping.ignore or mapping.target_path is None:
            continue
        first, _, sub = _FILTERS.sub("", simple_path(mapping.target_path)).partition(".")
        if first.lower() != attribute or not sub:
            continue
        sub = sub.split(".")[0].lower()
        if isinstance(mapping.constant, str):
            found.setdefault(sub, []).append(mapping.constant)
        else:
            computed.add(sub)
    return {k: sorted(set(v)) for k, v in found.items() if k not in computed}


def _names(section: Entity | None, *, target: bool) -> dict[str, set[str] | None] | None:
    """The attributes the mappings write (``target``) or read, each with the sub-attributes
    they name (None: all of them); None: every attribute."""
    if section is None:
        return {}
    names: dict[str, set[str] | None] = {}
    for mapping in section.mappings:
        if mapping.ignore or mapping.scope in ("patchEntity", "deleteEntity"):
            continue
        path = mapping.target_path if target else mapping.source_path
        if path is None:
            continue
        if path.strip() in _WHOLE:
            return None
        first, _, sub = _FILTERS.sub("", simple_path(path)).partition(".")
        first, sub = first.lower(), sub.split(".")[0].lower()
        if not first:
            continue
        known = names.setdefault(first, set())
        if known is not None:
            if sub:
                known.add(sub)
                # a write that picks elements by a sub-attribute takes that one too
                known.update(n.lower() for n in _FILTERED.findall(path) if not target)
            else:
                names[first] = None
    return names


def _whole(compiled: Compiled, entity_type: str) -> bool:
    read = _names(compiled.read.entity(entity_type), target=True)
    write = _names(compiled.write.entity(entity_type), target=False)
    return read is None and write is None
