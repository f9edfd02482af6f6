"""Reading a configuration document: its systems, schedules and custom schemas, checked.

Every problem is collected with where it is (``systems[HR].properties.URL: ...``), so a plan
reports them all at once. What depends on the tenant (a role that would change, a link to a
system it does not have) is the planner's to check.

The document::

    {"provisorConfiguration": 1, "product": "provisor 0.1.0", "exported": "...",
     "systems": [{"name": "HR", "type": "csv", "role": "source", "description": "",
                  "enabled": true, "properties": {...}, "credentialKeys": [],
                  "transformations": {"read": {...}}},
                 {"name": "IAS", "type": "identity-authentication", "role": "target", ...,
                  "credentialKeys": ["Password"], "sourceSystems": ["HR"]}],
     "schedules": [{"source": "HR", "enabled": true, "intervalMinutes": 60}],
     "customSchemas": [{"id": "urn:...:Badge", "name": "Badge", "attributes": [...]}]}

``bundle`` (a template's name, title and description), ``product``, ``exported`` and a
system's ``typeName`` are for readers and are not compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from provisor.configuration.model import FORMAT
from provisor.connectors.base import Role
from provisor.connectors.types import ConnectorType, connector_type
from provisor.errors import InputError, InvalidTransformationError, ProvisorError
from provisor.jobs.schedule import Schedule
from provisor.scim.custom_schemas import parse_custom_schema
from provisor.systems.model import KINDS, check_name
from provisor.systems.secrets import ALWAYS_SECRET
from provisor.systems.service import property_problems
from provisor.transform.document import compile_document, placeholders

TOP_LEVEL = {
    "provisorConfiguration",
    "product",
    "exported",
    "bundle",
    "systems",
    "schedules",
    "customSchemas",
}
SYSTEM_FIELDS = {
    "name",
    "type",
    "typeName",
    "role",
    "description",
    "enabled",
    "properties",
    "credentialKeys",
    "sourceSystems",
    "transformations",
}
MAX_DESCRIPTION = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredSystem:
    """A system as the document wants it. ``properties``: what it holds besides credentials
    (the type's seeded properties included; a ``null`` in the document removes one);
    ``sources``: a target's source systems by name; ``transformations``: the documents the
    document gives, by kind (a kind it leaves out keeps the tenant's, or the type's default)."""

    name: str
    type: ConnectorType
    role: Role
    description: str
    enabled: bool
    properties: dict[str, str]
    removed: frozenset[str]  # keys the document sets to null
    credential_keys: tuple[str, ...]
    sources: tuple[str, ...]
    transformations: dict[str, dict[str, Any]]

    @property
    def key(self) -> str:
        return self.name.casefold()


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredSchedule:
    source: str
    data: dict[str, Any]  # the schedule's fields as the admin API takes them
    normal: dict[str, Any]  # as the service would store it (Schedule.to_dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredSchema:
    id: str
    body: dict[str, Any]  # what is posted to create it
    normal: dict[str, Any]  # as the directory describes it (for comparing)


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    systems: tuple[DesiredSystem, ...]
    schedules: tuple[DesiredSchedule, ...]
    schemas: tuple[DesiredSchema, ...]
    unread: frozenset[str] = frozenset()  # casefolded names of systems too broken to read


def schema_json(described: Mapping[str, Any]) -> dict[str, Any]:
    """A custom schema as a document holds it: its SCIM description without ``meta``."""
    return {k: v for k, v in described.items() if k != "meta"}


def read(data: Any, services: Mapping[str, Any]) -> tuple[Document, list[str]]:
    """The document and every problem found in it. ``services``: what connectors are lent
    (the outbound policy and file roots that properties are checked against)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return Document(systems=(), schedules=(), schemas=()), [
            "the document is a JSON object with provisorConfiguration, systems, schedules "
            "and customSchemas"
        ]
    if "provisorExport" in data:
        problems.append(
            "provisorExport: this is the export of one system, not a configuration: import it "
            "with provisor systems import"
        )
    elif data.get("provisorConfiguration") != FORMAT:
        problems.append(
            f"provisorConfiguration: {FORMAT} is required (the format's version), not "
            f"{data.get('provisorConfiguration')!r}"
        )
    unknown = sorted(set(data) - TOP_LEVEL - {"provisorExport"})
    if unknown:
        problems.append(
            f"unknown field(s) {', '.join(unknown)}; a document has {', '.join(sorted(TOP_LEVEL))}"
        )
    unread: set[str] = set()
    systems = _systems(_list(data, "systems", problems), services, problems, unread)
    schedules = _schedules(_list(data, "schedules", problems), problems)
    schemas = _schemas(_list(data, "customSchemas", problems), problems)
    document = Document(
        systems=systems, schedules=schedules, schemas=schemas, unread=frozenset(unread)
    )
    return document, problems


def _list(data: Mapping[str, Any], key: str, problems: list[str]) -> list[Any]:
    found = data.get(key, [])
    if not isinstance(found, list):
        problems.append(f"{key}: a list")
        return []
    return found


def _systems(
    items: list[Any], services: Mapping[str, Any], problems: list[str], unread: set[str]
) -> tuple[DesiredSystem, ...]:
    found: dict[str, DesiredSystem] = {}
    for index, item in enumerate(items):
        where = f"systems[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: a system is a JSON object")
            continue
        name = item.get("name")
        try:
            name = check_name(name) if isinstance(name, str) else None
        except ValueError as exc:
            problems.append(f"{where}.name: {exc}")
            continue
        if name is None:
            problems.append(f"{where}.name: required, a string")
            continue
        where = f"systems[{name}]"
        if name.casefold() in found:
            problems.append(f"{where}: named twice (names are unique, whatever their case)")
            continue
        system = _system(item, where, name, services, problems)
        if system is not None:
            found[system.key] = system
        else:
            unread.add(name.casefold())
    return tuple(found.values())


def _system(
    item: Mapping[str, Any],
    where: str,
    name: str,
    services: Mapping[str, Any],
    problems: list[str],
) -> DesiredSystem | None:
    unknown = sorted(set(item) - SYSTEM_FIELDS)
    if unknown:
        problems.append(
            f"{where}: unknown field(s) {', '.join(unknown)}; a system has "
            f"{', '.join(sorted(SYSTEM_FIELDS))}"
        )
    try:
        kind = connector_type(str(item.get("type")))
    except KeyError as exc:
        problems.append(f"{where}.type: {exc.args[0]}")
        return None
    try:
        role = Role(str(item.get("role")))
    except ValueError:
        problems.append(f"{where}.role: one of {', '.join(Role)}, not {item.get('role')!r}")
        return None
    if role not in kind.roles:
        roles = ", ".join(sorted(kind.roles))
        problems.append(f"{where}.role: a {kind.name} system can be a {roles} system, not a {role}")
        return None
    description = item.get("description", "")
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        problems.append(f"{where}.description: a string of at most {MAX_DESCRIPTION} characters")
        description = ""
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{where}.enabled: true or false")
        enabled = True
    keys = item.get("credentialKeys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        problems.append(f"{where}.credentialKeys: a list of property names")
        keys = []
    secret = set(keys) | kind.credential_keys | ALWAYS_SECRET
    given = item.get("properties", {})
    if not isinstance(given, dict):
        problems.append(f"{where}.properties: an object of strings")
        given = {}
    properties = dict(kind.seeded_properties(role))
    removed = set()
    for key, value in given.items():
        if value is None:
            properties.pop(key, None)
            removed.add(key)
        elif not isinstance(value, str):
            problems.append(f"{where}.properties.{key}: a string (or null to remove it)")
        elif key in secret:
            problems.append(
                f"{where}.properties.{key}: a credential; credentials are never in a "
                "configuration document (list the key in credentialKeys and enter the value "
                "on the system)"
            )
        else:
            properties[key] = value
    problems.extend(
        f"{where}.properties.{p}" for p in property_problems(kind, role, properties, services)
    )
    sources = item.get("sourceSystems", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        problems.append(f"{where}.sourceSystems: a list of source system names")
        sources = []
    if sources and role is not Role.TARGET:
        problems.append(f"{where}.sourceSystems: only target systems have source systems")
    transformations = _transformations(item, where, kind, role, properties, secret, problems)
    # kept with its problems, so that the planner reports the tenant's (role, links) as well
    return DesiredSystem(
        name=name,
        type=kind,
        role=role,
        description=description,
        enabled=enabled,
        properties=properties,
        removed=frozenset(removed),
        credential_keys=tuple(sorted(set(keys))),
        sources=tuple(dict.fromkeys(sources)),
        transformations=transformations,
    )


def _transformations(
    item: Mapping[str, Any],
    where: str,
    kind: ConnectorType,
    role: Role,
    properties: Mapping[str, str],
    secret: set[str],
    problems: list[str],
) -> dict[str, dict[str, Any]]:
    given = item.get("transformations", {})
    if not isinstance(given, dict):
        problems.append(f"{where}.transformations: an object of documents by kind")
        return {}
    found = {}
    public = {k: v for k, v in kind.effective(properties, role).items() if k not in secret}
    for which, document in given.items():
        at = f"{where}.transformations.{which}"
        if which not in KINDS[role]:
            problems.append(
                f"{at}: a {role} system has a {' and a '.join(KINDS[role])} transformation only"
            )
            continue
        if not isinstance(document, dict):
            problems.append(f"{at}: a transformation is a JSON object")
            continue
        named = sorted(placeholders(document) & secret)
        problems.extend(
            f"{at}: %{key}%: {key} is a credential; transformations cannot use credentials"
            for key in named
        )
        try:
            compile_document(document, public)
        except InvalidTransformationError as exc:
            problems.extend(f"{at}: {p}" for p in exc.problems)
            continue
        except ProvisorError as exc:
            problems.append(f"{at}: {exc.message}")
            continue
        found[which] = document
    return found


def _schedules(items: list[Any], problems: list[str]) -> tuple[DesiredSchedule, ...]:
    found: dict[str, DesiredSchedule] = {}
    for index, item in enumerate(items):
        where = f"schedules[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("source"), str):
            problems.append(f"{where}: a schedule is an object with source (a system's name)")
            continue
        source = item["source"]
        where = f"schedules[{source}]"
        if source.casefold() in found:
            problems.append(f"{where}: a source has one schedule")
            continue
        data = {k: v for k, v in item.items() if k != "source"}
        try:
            schedule = Schedule.from_dict(data, anchor=datetime.now(UTC))
        except InputError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        found[source.casefold()] = DesiredSchedule(
            source=source, data=data, normal=schedule.to_dict()
        )
    return tuple(found.values())


def _schemas(items: list[Any], problems: list[str]) -> tuple[DesiredSchema, ...]:
    found: dict[str, DesiredSchema] = {}
    for index, item in enumerate(items):
        where = f"customSchemas[{index}]"
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            where = f"customSchemas[{item['id']}]"
        try:
            schema = parse_custom_schema(item)
        except ProvisorError as exc:
            problems.append(f"{where}: {exc.message}")
            continue
        if schema.id.casefold() in found:
            problems.append(f"{where}: defined twice")
            continue
        body = {k: v for k, v in item.items() if k not in ("meta", "schemas")}
        normal = schema_json(schema.to_scim(""))
        found[schema.id.casefold()] = DesiredSchema(
            id=schema.id, body=orjson.loads(orjson.dumps(body)), normal=normal
        )
    return tuple(found.values())
