"""Connector types: what each declares (roles, properties, default transformations).

A connector type is data: its implementation class is named by a dotted path and imported
only when a connector is built, so listing types or checking properties never needs a
back-end library (python-ldap, ...).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from provisor.connectors.base import ConnectorConfig, Role
from provisor.connectors.properties import Properties

if TYPE_CHECKING:
    from provisor.connectors.base import Connector

ALL_ROLES = frozenset(Role)
SOURCE, TARGET, PROXY = Role.SOURCE, Role.TARGET, Role.PROXY


class Kind(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    URL = "url"
    FILE = "file"  # a path confined by connectors.paths
    CREDENTIAL = "credential"


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """One property a connector type knows."""

    key: str
    kind: Kind = Kind.STRING
    default: str | None = None  # the value when the property is absent
    seeded: bool = False  # written with the default into new systems (SAP's "Default" kind)
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    required: frozenset[Role] = frozenset()  # roles in which the system cannot work without it
    roles: frozenset[Role] = ALL_ROLES  # roles in which it means something
    description: str = ""
    schemes: tuple[str, ...] = ("http", "https")  # for URL properties

    def check(self, value: str) -> str | None:
        """The problem with a value, or None."""
        if self.kind is Kind.INTEGER:
            text = value.strip()
            if not re.fullmatch(r"[+-]?\d+", text):
                return "expected a whole number"
            number = int(text)
            if self.minimum is not None and number < self.minimum:
                return f"at least {self.minimum}"
            if self.maximum is not None and number > self.maximum:
                return f"at most {self.maximum}"
        elif self.kind is Kind.BOOLEAN:
            if value.strip().lower() not in ("true", "false"):
                return "expected true or false"
        elif self.kind is Kind.CHOICE:
            if value not in self.choices:
                return f"one of {', '.join(self.choices)}"
        elif self.kind is Kind.URL:
            scheme, sep, rest = value.partition("://")
            if not sep or scheme.lower() not in self.schemes or not rest.strip("/"):
                return f"a URL starting with {' or '.join(s + '://' for s in self.schemes)}"
        return None


@dataclass(frozen=True)
class ConnectorType:
    """A kind of back-end: its properties, roles and default transformations."""

    id: str  # "scim", "ldap", ... (also the stem of its default transformation files)
    name: str  # SAP's display name: "SCIM System", "LDAP Server", ...
    prefix: str  # property prefix: "scim", "ias", "idds", "ldap", "csv"
    roles: frozenset[Role]
    implementation: str  # "package.module:Class"
    properties: tuple[PropertySpec, ...] = ()
    entity_types: tuple[str, ...] = ("user", "group")
    description: str = ""
    aliases: tuple[str, ...] = ()  # other names accepted on import
    known_prefixes: tuple[str, ...] = field(default=())  # further prefixes it owns ("scim" for ias)
    role_seeds: tuple[tuple[Role, str, str], ...] = ()  # (role, key, value) seeded in that role

    def spec(self, key: str) -> PropertySpec | None:
        return self._specs.get(key)

    @property
    def _specs(self) -> dict[str, PropertySpec]:
        return {p.key: p for p in self.properties}

    @property
    def credential_keys(self) -> frozenset[str]:
        return frozenset(p.key for p in self.properties if p.kind is Kind.CREDENTIAL)

    def seeded_properties(self, role: Role) -> dict[str, str]:
        """The properties a new system of this type starts with."""
        seeds = {
            p.key: p.default
            for p in self.properties
            if p.seeded and p.default is not None and role in p.roles
        }
        seeds.update((key, value) for seeded, key, value in self.role_seeds if seeded is role)
        return seeds

    def effective(self, properties: Mapping[str, str], role: Role | None = None) -> dict[str, str]:
        """The properties with the defaults of the absent ones (of ``role``) filled in."""
        values: dict[str, str] = {}
        for p in self.properties:
            if p.default is not None and (role is None or role in p.roles):
                values[p.key] = p.default
        values.update(properties)
        return values

    def read(self, properties: Mapping[str, str], role: Role | None = None) -> Properties:
        """The effective properties as typed values, checked against this type's specs."""
        return Properties(self.effective(properties, role), self.properties)

    def problems(
        self, role: Role, properties: Mapping[str, str], *, complete: bool = True
    ) -> list[str]:
        """Every problem of a set of properties, each naming its property.

        Keys this type does not know are allowed when they belong to nobody (they are
        parameters for ``%key%`` in transformations); under the type's own prefix or
        ``ips.`` they are rejected as probable typos. ``complete`` also checks that what the
        role requires is present.
        """
        problems = []
        owned = (f"{self.prefix}.", *(f"{p}." for p in self.known_prefixes))
        for key, value in properties.items():
            if not isinstance(value, str):
                problems.append(f"{key}: a property value is a string")
                continue
            spec = self.spec(key)
            if spec is None:
                if key.startswith(GENERIC_PREFIXES):
                    continue
                if key.startswith(("ips.", *owned)):
                    problems.append(f"{key}: unknown property of {self.name}")
                continue
            if role not in spec.roles:
                roles = ", ".join(sorted(spec.roles))
                problems.append(f"{key}: applies to {roles} systems, not to a {role} system")
                continue
            if value == "" and spec.kind is not Kind.CREDENTIAL:
                continue
            problem = spec.check(value)
            if problem:
                problems.append(f"{key}: {problem}, not {value!r}")
        for method, proxy in (
            ("Authentication", "ProxyType"),
            (f"{self.prefix}.authentication", f"{self.prefix}.proxyType"),
        ):
            if (
                properties.get(method) == "ClientCertificateAuthentication"
                and properties.get(proxy) == "OnPremise"
            ):
                problems.append(
                    f"{method}: ClientCertificateAuthentication cannot be used with "
                    f"{proxy}=OnPremise"
                )
        if complete:
            for spec in self.properties:
                if role in spec.required and not properties.get(spec.key):
                    problems.append(f"{spec.key}: required for a {role} {self.name} system")
        return problems

    def build(self, config: ConnectorConfig) -> Connector:
        """The connector for a system of this type."""
        module_name, _, class_name = self.implementation.partition(":")
        cls: Any = getattr(importlib.import_module(module_name), class_name)
        connector: Connector = cls(config)
        return connector


GENERIC_PREFIXES = ("ips.http.header.",)

# -- properties shared by several types -----------------------------------------------------------

S, T, P = frozenset({SOURCE}), frozenset({TARGET}), frozenset({PROXY})
ST, TP, SP = S | T, T | P, S | P


def generic_properties() -> tuple[PropertySpec, ...]:
    """The ``ips.*`` properties every connector type knows (spec §2.3)."""
    return (
        PropertySpec(
            "ips.date.variable.format",
            default="yyyy-MM-dd HH:mm:ss.SSS",
            seeded=True,
            description="Java date pattern of the currentDate transformation variable.",
        ),
        PropertySpec(
            "ips.delta.read",
            Kind.CHOICE,
            choices=("enabled", "disabled"),
            roles=S,
            description="Read only what changed since the last job, where the back-end can.",
        ),
        PropertySpec(
            "ips.full.read.force.count",
            Kind.INTEGER,
            minimum=1,
            roles=S,
            description="After this many delta jobs, run one full read.",
        ),
        PropertySpec(
            "ips.delete.existedbefore.entities",
            Kind.BOOLEAN,
            default="false",
            roles=TP,
            description="Also delete target entities that existed before provisor created them.",
        ),
        PropertySpec(
            "ips.overwrite.existedbefore.assignments",
            Kind.BOOLEAN,
            default="true",
            roles=T,
            description="false keeps memberships that existed before; only adds.",
        ),
        *(
            PropertySpec(
                f"ips.delete.threshold.{kind}",
                Kind.INTEGER,
                minimum=1,
                roles=T,
                description=f"Delete no {kind} when a job would delete more than this many.",
            )
            for kind in ("users", "groups", "roles")
        ),
        PropertySpec(
            "ips.failed.request.retry.attempts",
            Kind.INTEGER,
            default="2",
            minimum=0,
            maximum=3,
            description="Retries of a request that failed for a reason that may pass.",
        ),
        PropertySpec(
            "ips.failed.request.retry.attempts.interval",
            Kind.INTEGER,
            default="30",
            minimum=1,
            maximum=60,
            description="Seconds between retries.",
        ),
        PropertySpec(
            "ips.write.concurrency",
            Kind.INTEGER,
            default="8",
            minimum=1,
            maximum=64,
            roles=T,
            description="provisor: requests a job keeps in flight to this target at once.",
        ),
        PropertySpec(
            "ips.delete.after.empty.read",
            Kind.BOOLEAN,
            default="false",
            roles=S,
            description="provisor: a full read that finds no entities deletes nothing in the "
            "targets until an administrator confirms (jobs confirm-deletions), unless this is "
            "true.",
        ),
        PropertySpec(
            "ips.application.id",
            roles=ST,
            description="Identity Authentication application id of application-specific groups.",
        ),
        PropertySpec(
            "ips.proxy.scim.total.results.strategy",
            Kind.CHOICE,
            default="Calculated",
            choices=("Calculated", "Provided"),
            roles=P,
            description="How a proxy reports totalResults.",
        ),
        PropertySpec(
            "ips.job.notification.repeat.on.failure", Kind.BOOLEAN, default="false", roles=S
        ),
        PropertySpec(
            "ips.job.notification.ignored.consecutive.failures",
            Kind.INTEGER,
            default="0",
            minimum=0,
            roles=S,
        ),
        PropertySpec(
            "ips.job.notification.skip.intermediate.notifications",
            Kind.BOOLEAN,
            default="false",
            roles=S,
        ),
        *(
            PropertySpec(key, Kind.BOOLEAN, default="false", roles=S)
            for key in (
                "ips.trace.failed.entity.content",
                "ips.trace.skipped.entity.content",
                "ips.trace.created.entity.content",
                "ips.trace.updated.entity.content",
                "ips.trace.skipped.entity",
                "ips.trace.created.entity",
                "ips.trace.updated.entity",
                "ips.trace.deleted.entity",
                "ips.trace.entity.content.unlimited",
            )
        ),
    )


# -- the registry ---------------------------------------------------------------------------------

_TYPES: dict[str, ConnectorType] = {}


def register(connector_type: ConnectorType) -> ConnectorType:
    _TYPES[connector_type.id] = connector_type
    return connector_type


def connector_types() -> list[ConnectorType]:
    _load()
    return sorted(_TYPES.values(), key=lambda t: t.name)


def connector_type(name: str) -> ConnectorType:
    """A type by id (``scim``), display name (``SCIM System``) or alias; KeyError if none."""
    _load()
    if name in _TYPES:
        return _TYPES[name]
    folded = name.strip().casefold()
    for candidate in _TYPES.values():
        names = (candidate.id, candidate.name, *candidate.aliases)
        if folded in (n.casefold() for n in names):
            return candidate
    known = ", ".join(f"{t.id} ({t.name})" for t in connector_types())
    raise KeyError(f"unknown connector type {name!r}; known: {known}")


# The modules that declare types (each calls register at import; none imports a back-end
# library at module level).
_DECLARING_MODULES = (
    "provisor.connectors.directory",
    "provisor.connectors.scim.types",
    "provisor.connectors.ldap.types",
    "provisor.connectors.csv.types",
)


def _load() -> None:
    for module in _DECLARING_MODULES:
        importlib.import_module(module)  # a no-op once imported
