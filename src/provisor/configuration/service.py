"""The configuration service: a tenant's configuration exported as one document, and a
document planned and applied like ``terraform plan`` / ``apply``.

Everything goes through the services that own each object — systems (properties, links,
transformations), schedules, the directory's custom schemas — with the caller's context, so
it works on the caller's tenant and every change is checked and audited as if made by hand.
Credentials never leave or enter through a document: new systems get none (the plan names the
keys to enter), existing systems keep theirs.

``apply`` is not one transaction: each change is its own, in the plan's order (custom
schemas, systems with sources before targets, links, transformations, schedules, then what
``prune`` deletes). When a change fails, the error says which changes were made before it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from provisor import __version__
from provisor.configuration import bundles as templates
from provisor.configuration.document import (
    read,
    schema_json,
)
from provisor.configuration.model import FORMAT, Change, Plan
from provisor.configuration.plan import Current, Planner, Step, conflicts
from provisor.connectors.base import Role
from provisor.context import Context, Permission, requires
from provisor.directory.service import Directory
from provisor.errors import ConflictError, InvalidDocumentError, ProvisorError
from provisor.jobs.scheduler import ScheduleService
from provisor.systems.exchange import configuration_of
from provisor.systems.service import SystemService
from provisor.timestamps import now

CHANGED_SINCE_PLAN = "The configuration changed since the plan; plan again."


class ConfigurationService:
    """Export, plan and apply a tenant's configuration; the bundle templates."""

    def __init__(
        self, systems: SystemService, schedules: ScheduleService, directory: Directory
    ) -> None:
        self.systems = systems
        self.schedules = schedules
        self.directory = directory

    # -- export ---------------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def export(self, ctx: Context) -> dict[str, Any]:
        """The tenant's configuration as one document, in a stable order (systems, schedules
        and custom schemas sorted by name, property keys sorted) so that two exports diff
        cleanly; credential values are never in it."""
        return {
            "provisorConfiguration": FORMAT,
            "product": f"provisor {__version__}",
            "exported": now(),
            **_content(self._current(ctx)),
        }

    def _current(self, ctx: Context) -> Current:
        current = Current()
        found, _ = self.systems.all(ctx)
        for system in sorted(found, key=lambda s: s.name.casefold()):
            key = system.name.casefold()
            current.systems[key] = system
            current.documents[key] = configuration_of(ctx, self.systems, system)
        for schedule in self.schedules.all(ctx):
            current.schedules[schedule.source_name.casefold()] = schedule
        for schema in self.directory.schemas(ctx).custom:
            current.schemas[schema.id.casefold()] = schema_json(schema.to_scim(""))
        return current

    # -- plan and apply -------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def plan(self, ctx: Context, document: Any, *, prune: bool = False) -> Plan:
        """What applying ``document`` would change, object by object, and the plan's
        fingerprint. Nothing is deleted unless ``prune``. InvalidDocumentError lists every
        problem of the document at once."""
        plan, _ = self._plan(ctx, document, prune)
        return plan

    @requires()
    def apply(
        self, ctx: Context, document: Any, *, prune: bool = False, expect: str | None = None
    ) -> Plan:
        """Make the tenant's configuration the document's; the plan applied. ``expect``: the
        fingerprint of the plan the caller reviewed (ConflictError when the configuration or
        the plan changed since). A failing change raises its error, saying which changes were
        applied before it."""
        plan, steps = self._plan(ctx, document, prune)
        if expect is not None and expect.strip() != plan.fingerprint:
            raise ConflictError(CHANGED_SINCE_PLAN)
        done: list[Change] = []
        for step in steps:
            if step.run is None:
                continue
            try:
                step.run()
            except ProvisorError as exc:
                raise _partial(exc, step.change, done, steps) from None
            done.append(step.change)
        with self.systems.db.write(ctx) as tx:  # each change is audited by its own service
            detail = {"fingerprint": plan.fingerprint, "prune": prune, "changes": len(done)}
            tx.audit("configuration.apply", ctx.tenant, detail)
        return Plan(
            changes=plan.changes,
            fingerprint=plan.fingerprint,
            prune=prune,
            applied=True,
            warnings=plan.warnings,
        )

    def _plan(self, ctx: Context, data: Any, prune: bool) -> tuple[Plan, list[Step]]:
        document, problems = read(data, self.systems.connector_services(ctx))
        current = self._current(ctx)
        problems.extend(conflicts(document, current, prune))
        if problems:
            raise InvalidDocumentError(problems)
        planner = Planner(ctx, self, document, current, prune)
        steps = planner.steps()
        changes = tuple(s.change for s in steps)
        seen = {"current": _content(current), "changes": [c.to_dict() for c in changes]}
        digest = hashlib.sha256(orjson.dumps(seen, option=orjson.OPT_SORT_KEYS)).hexdigest()
        plan = Plan(
            changes=changes, fingerprint=digest, prune=prune, warnings=tuple(planner.warnings)
        )
        return plan, steps

    # -- bundles --------------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def bundles(self, ctx: Context) -> list[templates.BundleInfo]:
        """The bundle templates a tenant can be set up from."""
        return templates.bundles()

    @requires(Permission.VIEW)
    def bundle(self, ctx: Context, name: str) -> dict[str, Any]:
        """A bundle template's document (NotFoundError names the known ones)."""
        return templates.bundle(name)


def _content(current: Current) -> dict[str, Any]:
    """The systems, schedules and custom schemas of an export."""
    systems = []
    names = {s.id: s.name for s in current.systems.values()}
    for key, system in current.systems.items():
        described = dict(current.documents[key])
        transformations = described.pop("transformations")
        unset = {
            k: None
            for k in system.type.seeded_properties(system.role)
            if k not in described["properties"] and k not in system.credential_keys
        }
        if unset:  # a seeded property removed: null keeps it removed where this is applied
            merged = {**described["properties"], **unset}
            described["properties"] = {k: merged[k] for k in sorted(merged)}
        if system.role is Role.TARGET:
            linked = [names[i] for i in system.source_system_ids if i in names]
            described["sourceSystems"] = sorted(linked, key=str.casefold)
        described["transformations"] = transformations
        systems.append(described)
    return {
        "systems": systems,
        "schedules": [
            {"source": s.source_name, **s.schedule.to_dict()}
            for _, s in sorted(current.schedules.items())
        ],
        "customSchemas": [current.schemas[k] for k in sorted(current.schemas)],
    }


def _partial(
    exc: ProvisorError, failed: Change, done: list[Change], steps: list[Step]
) -> ProvisorError:
    """The error of a change that failed, saying what was applied before it and what not."""
    left = [s.change for s in steps if s.run is not None and s.change not in done]
    applied = "; ".join(c.line() for c in done) or "nothing"
    pending = "; ".join(c.line() for c in left)
    exc.message = (
        f"{exc.message} (while applying: {failed.line()}). Applied before: {applied}. "
        f"Not applied: {pending}."
    )
    exc.args = (exc.message,)
    return exc
