"""Planning: the steps that make a tenant's configuration a document's, in apply's order.

Each step is a :class:`~provisor.configuration.model.Change` and what applying it runs (a
call of the service that owns the object, with the caller's context), or nothing when it is
unchanged or made by another step (a new target's links and transformations are created with
it). :func:`conflicts` finds what the tenant cannot do at all, before any step is planned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisor.configuration.document import (
    DesiredSchedule,
    DesiredSchema,
    DesiredSystem,
    Document,
)
from provisor.configuration.model import Action, Change, Kind
from provisor.connectors.base import Role
from provisor.connectors.types import Kind as PropertyKind
from provisor.context import Context
from provisor.directory.service import Directory
from provisor.jobs.schedule import SourceSchedule
from provisor.jobs.scheduler import ScheduleService
from provisor.systems.model import KINDS, NewSystem, System, SystemChanges
from provisor.systems.service import SystemService

ROLE_ORDER = {Role.SOURCE: 0, Role.PROXY: 1, Role.TARGET: 2}  # what may link to what exists


class Owners(Protocol):
    """The services that own what a configuration holds."""

    systems: SystemService
    schedules: ScheduleService
    directory: Directory


@dataclass(slots=True)
class Current:
    """The tenant's configuration as the services give it."""

    systems: dict[str, System] = field(default_factory=dict)  # by casefolded name
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # configuration_of
    schedules: dict[str, SourceSchedule] = field(default_factory=dict)  # by source name
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)  # by casefolded URN


@dataclass(frozen=True, slots=True)
class Step:
    """A change of the plan and what applying it runs."""

    change: Change
    run: Callable[[], object] | None  # None: nothing to do (unchanged, or done by another)


def conflicts(document: Document, current: Current, prune: bool) -> list[str]:
    """What the document asks that the tenant cannot do: change a system's role or type,
    link to a system that would not exist or is no source, schedule a system that is no
    source, replace a custom schema without ``prune``."""
    problems = []
    wanted = {s.key: s for s in document.systems}

    def role_after(name: str) -> Role | None:
        key = name.casefold()
        if key in wanted:
            return wanted[key].role
        if key in current.systems and not prune:
            return current.systems[key].role
        return None

    def missing(name: str) -> str:
        if name.casefold() in current.systems:
            return f"{name} is not in the document, and prune deletes it"
        return f"no system {name} in the document or in the tenant"

    for system in document.systems:
        where = f"systems[{system.name}]"
        found = current.systems.get(system.key)
        if found is not None and found.role is not system.role:
            problems.append(
                f"{where}.role: {found.name} is a {found.role} system here; a system's role "
                "cannot be changed (delete the system, or rename one of them)"
            )
        if found is not None and found.type.id != system.type.id:
            problems.append(
                f"{where}.type: {found.name} is a {found.type.name} system here; a system's "
                "type cannot be changed (delete the system, or rename one of them)"
            )
        for source in system.sources:
            if source.casefold() in document.unread:
                continue  # its own problems are reported
            role = role_after(source)
            if role is None:
                problems.append(f"{where}.sourceSystems: {missing(source)}")
            elif role is not Role.SOURCE:
                problems.append(f"{where}.sourceSystems: {source} is a {role} system, not a source")
    for schedule in document.schedules:
        if schedule.source.casefold() in document.unread:
            continue
        role = role_after(schedule.source)
        where = f"schedules[{schedule.source}]"
        if role is None:
            problems.append(f"{where}: {missing(schedule.source)}")
        elif role is not Role.SOURCE:
            problems.append(
                f"{where}: {schedule.source} is a {role} system; only sources have schedules"
            )
    for schema in document.schemas:
        have = current.schemas.get(schema.id.casefold())
        if have is not None and have != schema.normal and not prune:
            problems.append(
                f"customSchemas[{schema.id}]: differs from the tenant's; a custom schema cannot "
                "be changed, only replaced, which deletes every value users hold in it: plan "
                "with prune to replace it"
            )
    return problems


class Planner:
    """The steps that make the tenant's configuration the document's, in apply's order."""

    def __init__(
        self,
        ctx: Context,
        services: Owners,
        document: Document,
        current: Current,
        prune: bool,
    ) -> None:
        self.ctx = ctx
        self.systems = services.systems
        self.schedules = services.schedules
        self.directory = services.directory
        self.document = document
        self.current = current
        self.prune = prune
        self.wanted = {s.key: s for s in document.systems}
        self.warnings: list[str] = []

    def steps(self) -> list[Step]:
        ordered = sorted(
            self.document.systems, key=lambda s: (ROLE_ORDER[s.role], s.name.casefold())
        )
        steps = [self._schema(s) for s in sorted(self.document.schemas, key=lambda s: s.id)]
        steps += [self._system(s) for s in ordered]
        steps += [step for s in ordered if s.role is Role.TARGET for step in self._links(s)]
        steps += [step for s in ordered for step in self._transformations(s)]
        steps += [self._schedule(s) for s in sorted(self.document.schedules, key=_source_key)]
        if self.prune:
            steps += self._pruned()
        return steps

    # -- custom schemas -------------------------------------------------------------------------

    def _schema(self, schema: DesiredSchema) -> Step:
        have = self.current.schemas.get(schema.id.casefold())
        names = ", ".join(a["name"] for a in schema.normal["attributes"])
        if have is None:
            change = Change(
                action=Action.CREATE,
                kind=Kind.CUSTOM_SCHEMA,
                name=schema.id,
                detail=f"attributes {names}",
            )
            return Step(change, lambda: self.directory.create_schema(self.ctx, schema.body))
        if have == schema.normal:
            return Step(
                Change(action=Action.UNCHANGED, kind=Kind.CUSTOM_SCHEMA, name=schema.id), None
            )
        detail = _schema_difference(have, schema.normal)
        change = Change(
            action=Action.UPDATE,
            kind=Kind.CUSTOM_SCHEMA,
            name=schema.id,
            detail=f"replaced ({detail}): every value users hold in it is deleted",
        )

        def replace() -> None:
            self.directory.delete_schema(self.ctx, have["id"])
            self.directory.create_schema(self.ctx, schema.body)

        return Step(change, replace)

    # -- systems --------------------------------------------------------------------------------

    def _system(self, wanted: DesiredSystem) -> Step:
        found = self.current.systems.get(wanted.key)
        if found is None:
            return self._created(wanted)
        details = []
        have = {k: v for k, v in found.properties.items() if k not in found.credential_keys}
        ignored = sorted(set(wanted.properties) & set(found.credential_keys))
        for key in ignored:
            self.warnings.append(
                f"{found.name}: {key} is a credential here; the document's value is not used"
            )
        desired = {k: v for k, v in wanted.properties.items() if k not in found.credential_keys}
        added = sorted(k for k in desired if k not in have)
        changed = sorted(k for k in desired if k in have and have[k] != desired[k])
        removed = sorted(k for k in have if k not in desired)
        for words, keys in (("added", added), ("changed", changed), ("removed", removed)):
            if keys:
                details.append(f"properties {', '.join(keys)} {words}")
        properties: dict[str, str | None] = {k: desired[k] for k in added + changed}
        properties.update((k, None) for k in removed)
        enter = sorted(set(wanted.credential_keys) - set(found.credential_keys))
        urls = {p.key for p in found.type.properties if p.kind is PropertyKind.URL}
        if urls & set(properties) and found.credential_keys:
            dropped = sorted(found.credential_keys)
            properties.update((k, None) for k in dropped)
            enter = sorted(set(enter) | set(dropped))
            details.append(
                f"the URL changes: the stored credentials {', '.join(dropped)} are removed "
                "(enter them again)"
            )
        if wanted.description != found.description:
            details.append("description changed")
        if wanted.enabled != found.enabled:
            details.append("enabled" if wanted.enabled else "disabled")
        if not details:
            change = Change(
                action=Action.UNCHANGED,
                kind=Kind.SYSTEM,
                name=found.name,
                detail=f"enter the credentials {', '.join(enter)}" if enter else "",
                credentials=tuple(enter),
            )
            return Step(change, None)
        changes = SystemChanges(
            description=wanted.description if wanted.description != found.description else None,
            enabled=wanted.enabled if wanted.enabled != found.enabled else None,
            properties=properties or None,
        )
        change = Change(
            action=Action.UPDATE,
            kind=Kind.SYSTEM,
            name=found.name,
            detail="; ".join(details),
            credentials=tuple(enter),
        )
        return Step(change, lambda: self.systems.update(self.ctx, found.id, changes))

    def _created(self, wanted: DesiredSystem) -> Step:
        detail = f"{wanted.type.name} {wanted.role}"
        if wanted.credential_keys:
            detail += f"; enter the credentials {', '.join(wanted.credential_keys)}"
        change = Change(
            action=Action.CREATE,
            kind=Kind.SYSTEM,
            name=wanted.name,
            detail=detail,
            credentials=wanted.credential_keys,
        )

        def create() -> None:
            sources = [self.systems.get(self.ctx, name).id for name in wanted.sources]
            new = NewSystem(
                name=wanted.name,
                type=wanted.type.id,
                role=wanted.role,
                description=wanted.description,
                enabled=wanted.enabled,
                properties=dict(wanted.properties),
                credential_keys=list(wanted.credential_keys),
                source_system_ids=sources,
                transformations=dict(wanted.transformations),
            )
            self.systems.create(self.ctx, new)

        return Step(change, create)

    # -- links ----------------------------------------------------------------------------------

    def _links(self, target: DesiredSystem) -> list[Step]:
        found = self.current.systems.get(target.key)
        have = (
            {n.casefold(): n for n in (link.name for link in found.source_systems)} if found else {}
        )
        wanted = {name.casefold(): name for name in target.sources}
        steps = []
        for key in sorted(set(wanted) | set(have)):
            name = f"{wanted.get(key) or have[key]} -> {target.name}"
            if key in wanted and key in have:
                steps.append(Step(Change(action=Action.UNCHANGED, kind=Kind.LINK, name=name), None))
            elif key in wanted:
                # a new target is created with its links; an existing one's are set once
                steps.append(Step(Change(action=Action.CREATE, kind=Kind.LINK, name=name), None))
            elif self.prune:
                steps.append(Step(Change(action=Action.DELETE, kind=Kind.LINK, name=name), None))
        if found is not None and any(s.change.action is not Action.UNCHANGED for s in steps):
            kept = [] if self.prune else [have[k] for k in have if k not in wanted]
            names = [*target.sources, *kept]

            def relink() -> None:
                ids = [self.systems.get(self.ctx, name).id for name in names]
                self.systems.update(self.ctx, found.id, SystemChanges(source_system_ids=ids))

            first = next(i for i, s in enumerate(steps) if s.change.action is not Action.UNCHANGED)
            steps[first] = Step(steps[first].change, relink)
        return steps

    # -- transformations ------------------------------------------------------------------------

    def _transformations(self, wanted: DesiredSystem) -> list[Step]:
        found = self.current.systems.get(wanted.key)
        steps = []
        for kind in found.kinds if found else _kinds(wanted):
            name = f"{wanted.name} {kind}"
            document = wanted.transformations.get(kind)
            if found is None:
                detail = "from the document" if document else f"the {wanted.type.name} default"
                change = Change(
                    action=Action.CREATE, kind=Kind.TRANSFORMATION, name=name, detail=detail
                )
                steps.append(Step(change, None))  # made with the system
                continue
            version = found.transformations.get(kind)
            have = self.current.documents[wanted.key]["transformations"].get(kind)
            if document is None or document == have:
                detail = "" if document is not None else "not in the document: kept"
                change = Change(
                    action=Action.UNCHANGED, kind=Kind.TRANSFORMATION, name=name, detail=detail
                )
                steps.append(Step(change, None))
                continue
            change = Change(
                action=Action.UPDATE,
                kind=Kind.TRANSFORMATION,
                name=name,
                detail=f"the document differs from version {version}",
            )
            steps.append(Step(change, _saver(self, found.id, kind, document)))
        return steps

    # -- schedules ------------------------------------------------------------------------------

    def _schedule(self, wanted: DesiredSchedule) -> Step:
        found = self.current.schedules.get(wanted.source.casefold())
        name = found.source_name if found else wanted.source

        def put() -> None:
            self.schedules.put(self.ctx, wanted.source, wanted.data)

        if found is None:
            change = Change(
                action=Action.CREATE, kind=Kind.SCHEDULE, name=name, detail=_when(wanted.normal)
            )
            return Step(change, put)
        have = found.schedule.to_dict()
        if have == wanted.normal:
            return Step(Change(action=Action.UNCHANGED, kind=Kind.SCHEDULE, name=name), None)
        detail = f"{_when(have)} -> {_when(wanted.normal)}"
        return Step(Change(action=Action.UPDATE, kind=Kind.SCHEDULE, name=name, detail=detail), put)

    # -- prune ----------------------------------------------------------------------------------

    def _pruned(self) -> list[Step]:
        """What prune deletes: schedules and systems the document leaves out (targets
        before sources), then custom schemas."""
        steps = []
        scheduled = {s.source.casefold() for s in self.document.schedules}
        for key, schedule in sorted(self.current.schedules.items()):
            if key in scheduled:
                continue
            change = Change(
                action=Action.DELETE,
                kind=Kind.SCHEDULE,
                name=schedule.source_name,
                detail=_when(schedule.schedule.to_dict()),
            )
            steps.append(Step(change, _unscheduler(self, schedule.source_id)))
        gone = [s for k, s in self.current.systems.items() if k not in self.wanted]
        for system in sorted(gone, key=lambda s: (-ROLE_ORDER[s.role], s.name.casefold())):
            change = Change(
                action=Action.DELETE,
                kind=Kind.SYSTEM,
                name=system.name,
                detail=f"{system.type.name} {system.role}, with its transformations and "
                "certificates",
            )
            steps.append(Step(change, _deleter(self, system.id)))
        kept = {s.id.casefold() for s in self.document.schemas}
        for key, schema in sorted(self.current.schemas.items()):
            if key in kept:
                continue
            change = Change(
                action=Action.DELETE,
                kind=Kind.CUSTOM_SCHEMA,
                name=schema["id"],
                detail="every value users hold in it is deleted",
            )
            steps.append(Step(change, _schema_deleter(self, schema["id"])))
        return steps


# Closures over a loop's variable are made by functions, so each binds its own value.


def _saver(
    planner: Planner, system_id: str, kind: str, document: dict[str, Any]
) -> Callable[[], object]:
    return lambda: planner.systems.save_transformation(
        planner.ctx, system_id, kind, document, description="Applied configuration"
    )


def _unscheduler(planner: Planner, source_id: str) -> Callable[[], object]:
    return lambda: planner.schedules.delete(planner.ctx, source_id)


def _deleter(planner: Planner, system_id: str) -> Callable[[], object]:
    return lambda: planner.systems.delete(planner.ctx, system_id)


def _schema_deleter(planner: Planner, schema_id: str) -> Callable[[], object]:
    return lambda: planner.directory.delete_schema(planner.ctx, schema_id)


def _kinds(system: DesiredSystem) -> tuple[str, ...]:
    return KINDS[system.role]


def _source_key(schedule: DesiredSchedule) -> str:
    return schedule.source.casefold()


def _when(schedule: Mapping[str, Any]) -> str:
    """``every 60 minutes`` or ``MON, FRI at 02:30 Europe/Berlin``, ``(disabled)`` when off."""
    if "intervalMinutes" in schedule:
        text = f"every {schedule['intervalMinutes']} minutes"
    else:
        days = ", ".join(schedule.get("daysOfWeek", []))
        text = f"{days} at {schedule.get('time')} {schedule.get('timeZone')}"
    return text if schedule.get("enabled", True) else f"{text} (disabled)"


def _schema_difference(have: Mapping[str, Any], wanted: Mapping[str, Any]) -> str:
    before = {a["name"]: a for a in have.get("attributes", [])}
    after = {a["name"]: a for a in wanted.get("attributes", [])}
    parts = []
    for words, names in (
        ("added", sorted(set(after) - set(before))),
        ("removed", sorted(set(before) - set(after))),
        ("changed", sorted(n for n in set(before) & set(after) if before[n] != after[n])),
    ):
        if names:
            parts.append(f"attributes {', '.join(names)} {words}")
    if have.get("description") != wanted.get("description"):
        parts.append("description changed")
    return "; ".join(parts) or "changed"
