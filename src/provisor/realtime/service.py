"""Real-time provisioning (spec §6): one change pushed by a source application goes through
the source's read transformation and, at once, through every enabled target's write
transformation into that target. No job, no property filters; conditions apply.

A change is run by the job engine's own pieces (a one-entity page of a ``Runner``): the same
operational data, conflict resolution, member resolution, deletion rules and soft deletes as
a job. Changes provisor wrote itself and the back-end reports back are dropped (loops.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisor.connectors.base import MAX_ID_LENGTH, ConnectorError, Role, storable_id
from provisor.context import Context as _Context
from provisor.errors import ConfigError, NotFoundError, TooManyRequestsError
from provisor.jobs import loops
from provisor.jobs.locking import entity_key, holding
from provisor.jobs.model import Action, Job, JobStatus, JobType, Trigger
from provisor.jobs.plan import Participant
from provisor.jobs.runner import Runner
from provisor.jobs.service import JobService, targets_of
from provisor.realtime.model import (
    ENTITY_TYPES,
    STATES,
    Change,
    RealtimeLog,
    SystemResult,
)
from provisor.storage.realtime import RealtimeLogStore
from provisor.systems.model import System
from provisor.timestamps import now

_SYSTEMS_CTX = _Context.system("realtime")  # until this module takes a ctx (issue 15)

ROUTE_SECONDS = 5.0  # how long a source's systems are reused before they are read again


@dataclass
class _Route:
    """A source system and its targets, ready to write (connectors and compiled documents)."""

    source_system: System
    source: Participant
    targets: list[Participant]
    endpoint: str | None
    loaded: float


class RealtimeService:
    def __init__(self, jobs: JobService, logs: RealtimeLogStore) -> None:
        self.jobs = jobs
        self.systems = jobs.systems
        self.logs = logs
        self._routes: dict[str, _Route] = {}
        self._loading: dict[str, asyncio.Lock] = {}

    async def push(self, source: str, change: Change, *, caller: str) -> RealtimeLog:
        """Carry one change to every target; the log of what happened (also stored).
        NotFoundError / ConfigError when the source or the request cannot be used."""
        if change.entity_type not in ENTITY_TYPES:
            raise NotFoundError(f"Entity type {change.entity_type!r}: use user or group.")
        if change.entity_id is not None:
            _check_id(change.entity_id)
        started, clock = now(), time.monotonic()
        route = await self._route(source)
        results: list[SystemResult] = []
        error: str | None = None
        entity_id = change.entity_id
        try:
            entity = None
            if entity_id is None:  # a POST: the body names the entity
                entity = await self._entity(route, change)
                found = None if entity is None else _id_of(entity)
                if found is not None:
                    _check_id(found)  # before the log keeps it
                entity_id = found
            if entity_id is None:
                raise ConfigError("The entity has no id.")
            key = entity_key(route.source.id, change.entity_type, entity_id)
            async with holding(self.jobs.locks, [key], self.jobs.lock_seconds):
                if change.entity_id is not None:  # read in turn: the last to write read last
                    entity = await self._entity(route, change)
                results += await self._carry(route, change, entity, entity_id)
        except (ConfigError, NotFoundError, ConnectorError, TooManyRequestsError) as exc:
            error = exc.message
            results.append(SystemResult.of(route.source, change.operation, "Entity Failed", error))
            raised: Exception | None = exc
        else:
            raised = None
        failed = error is not None or any(r.state == "Entity Failed" for r in results)
        log = RealtimeLog(
            id=str(uuid.uuid4()),
            source_id=route.source.id,
            source_name=route.source.name,
            entity_type=change.entity_type,
            entity_id=entity_id,
            operation=change.operation,
            status="Finished with Error" if failed else "Finished Successfully",
            started=started,
            duration_ms=round((time.monotonic() - clock) * 1000),
            error=error or next((r.reason for r in results if r.state == "Entity Failed"), None),
            caller=caller,
            systems=results,
        )
        await asyncio.to_thread(self.logs.add, log)
        if raised is not None:  # the request could not be carried out: its caller is told
            raise raised
        return log

    # -- the steps --------------------------------------------------------------------------

    async def _carry(
        self, route: _Route, change: Change, entity: dict[str, Any] | None, entity_id: str
    ) -> list[SystemResult]:
        """The change in every target, unless provisor wrote it itself (an echo). Run while
        the entity's lock is held: another call for it waits its turn (decision 0021)."""
        last = None
        if route.endpoint is not None:
            last = await asyncio.to_thread(
                self.jobs.opdata.echo, route.endpoint, change.entity_type, entity_id
            )
        if loops.is_echo(last, entity):
            return [
                SystemResult.of(
                    route.source,
                    change.operation,
                    "Entity Skipped",
                    "Identity Provisioning wrote this change: it is not provisioned again "
                    "(loop prevention).",
                )
            ]
        if entity is None:
            return await self._delete(route, change, entity_id)
        return await self._upsert(route, change, entity, entity_id)

    async def _entity(self, route: _Route, change: Change) -> dict[str, Any] | None:
        """The entity as the source holds it; None for a delete."""
        if change.operation == "DELETE":
            return None
        if change.operation == "PATCH":
            if change.entity_id is None:
                raise ConfigError("PATCH needs the entity's id in the path.")
            current = await route.source.connector.get(change.entity_type, change.entity_id)
            if current is None:
                raise NotFoundError(
                    f"{change.entity_type} {change.entity_id} is not in {route.source.name}."
                )
            return current  # the source applied the change before it reported it
        if not isinstance(change.body, dict):
            raise ConfigError("The body is a JSON object: the entity as the source holds it.")
        entity = dict(change.body)
        if change.entity_id is not None:
            entity.setdefault("id", change.entity_id)
            if str(entity["id"]) != change.entity_id:
                raise ConfigError(
                    f"The body's id {entity['id']!r} is not the path's {change.entity_id!r}."
                )
        return entity

    def _runner(self, route: _Route, caller: str) -> Runner:
        """A one-entity run. What it writes counts as seen by the source's job in progress,
        if one is (the source has the entity now): that job's deletions keep it."""
        job_id = str(uuid.uuid4())
        chain = self.jobs.chain_in_progress(route.source.id)
        job = Job(
            id=job_id,
            source_id=route.source.id,
            source_name=route.source.name,
            type=JobType.READ,
            trigger=Trigger.IMMEDIATE,
            triggered_by=caller,
            status=JobStatus.RUNNING,
            read_mode=None,
            created=now(),
            chain_id=chain or job_id,
        )
        return Runner(
            job,
            route.source,
            [dataclasses.replace(t, fatal=None) for t in route.targets],
            self.jobs.opdata,
            self.jobs.journal,
        )

    async def _upsert(
        self, route: _Route, change: Change, entity: dict[str, Any], entity_id: str
    ) -> list[SystemResult]:
        runner = await asyncio.to_thread(self._runner, route, "real-time")
        items = await asyncio.to_thread(runner.read_page, change.entity_type, [entity])
        results = [_result(runner, route.source, change)]
        if not items:
            if results[0].state == "Entity Skipped":  # the source condition: deprovision
                results[0].reason = "Skipped by the source condition: deprovisioned in targets."
                return results + await self._delete(route, change, entity_id, runner)
            return results
        targets = [t for t in runner.targets if t.handles(change.entity_type)]
        runner.deferred = []  # every target's operational data in one transaction
        await asyncio.gather(
            *(runner.writing.write_page(t, change.entity_type, items) for t in targets)
        )
        await asyncio.to_thread(self.jobs.opdata.settle, runner.deferred)
        return results + [_result(runner, t, change) for t in targets]

    async def _delete(
        self, route: _Route, change: Change, entity_id: str, runner: Runner | None = None
    ) -> list[SystemResult]:
        if runner is None:
            runner = await asyncio.to_thread(self._runner, route, "real-time")
        targets = [t for t in runner.targets if t.handles(change.entity_type)]
        results = []
        for target in targets:
            records = await asyncio.to_thread(
                self.jobs.opdata.records,
                route.source.id,
                target.id,
                change.entity_type,
                [entity_id],
            )
            if not records:
                results.append(SystemResult.of(target, "DELETE", "Entity Not Provisioned", None))
                continue
            section = target.transformation.entity(change.entity_type)
            skipped = section is not None and "delete" in section.skip_operations
            gone = await runner.deleting.remove(
                target, change.entity_type, list(records.values()), skipped
            )
            try:
                await target.connector.flush()
            except ConnectorError as exc:
                runner.fail_target(target, exc.message)
                runner.count(change.entity_type, target, Action.FAILED)
                gone = []
            if gone:
                await asyncio.to_thread(
                    self.jobs.opdata.remove, route.source.id, target.id, change.entity_type, gone
                )
            results.append(_result(runner, target, change, "DELETE"))
        return results

    async def _route(self, source: str) -> _Route:
        """The source's systems, reused for ROUTE_SECONDS."""
        route = self._routes.get(source)
        if route is not None and time.monotonic() - route.loaded < ROUTE_SECONDS:
            return route
        lock = self._loading.setdefault(source, asyncio.Lock())
        async with lock:
            route = self._routes.get(source)
            if route is not None and time.monotonic() - route.loaded < ROUTE_SECONDS:
                return route
            fresh = await asyncio.to_thread(self._load, source)
            old = self._routes.get(source)
            self._routes[fresh.source.id] = self._routes[source] = fresh
            if old is not None:  # its connectors go; requests still using them finish first
                asyncio.get_running_loop().call_later(60, _close_later, old)
            return fresh

    def _load(self, source: str) -> _Route:
        system = self.systems.get(_SYSTEMS_CTX, source)
        if system.role is not Role.SOURCE:
            raise ConfigError(f"{system.name} is a {system.role} system: changes go to sources.")
        if not system.enabled:
            raise ConfigError(f"{system.name} is disabled: enable it to provision in real time.")
        everyone = self.systems.all(_SYSTEMS_CTX)[0]
        return _Route(
            source_system=system,
            source=self.jobs.participant(system, "read"),
            targets=self.jobs.writers(targets_of(system, everyone), everyone),
            endpoint=self.jobs.endpoint(system),
            loaded=time.monotonic(),
        )

    async def aclose(self) -> None:
        for route in {id(r): r for r in self._routes.values()}.values():
            await _close(route)
        self._routes.clear()

    def search(self, **criteria: Any) -> tuple[list[RealtimeLog], int]:
        return self.logs.search(**criteria)


def _result(
    runner: Runner, system: Participant, change: Change, operation: str | None = None
) -> SystemResult:
    """What happened to the one entity in a system, from the runner's statistics and logs."""
    counts = [
        c
        for key, c in runner.counts.items()
        if key[1] == system.id and key[0] == change.entity_type
    ]
    action = Action.READ
    for candidate in (
        Action.FAILED,
        Action.SKIPPED,
        Action.CREATED,
        Action.UPDATED,
        Action.DELETED,
        Action.UNCHANGED,
    ):
        if any(getattr(c, candidate.value) for c in counts):
            action = candidate
            break
    reason = next(
        (log.reason for log in runner.logs if log.system_id == system.id and log.reason),
        system.fatal or runner.coverage.note(system),
    )
    verb = operation or change.operation
    if action is Action.CREATED:
        verb = "CREATE"
    elif action is Action.UPDATED and verb == "CREATE":
        verb = "UPDATE"
    return SystemResult.of(system, verb, STATES[action], reason)


def _check_id(entity_id: str) -> None:
    if not storable_id(entity_id):
        raise ConfigError(
            f"The entity id is not usable: at most {MAX_ID_LENGTH} characters, "
            "no control characters."
        )


def _id_of(entity: Mapping[str, Any]) -> str | None:
    value = entity.get("id")
    return None if value is None or value == "" else str(value)


async def _close(route: _Route) -> None:
    for participant in (route.source, *route.targets):
        try:
            await participant.connector.aclose()
        except ConnectorError:
            pass


_closing: set[asyncio.Task[None]] = set()


def _close_later(route: _Route) -> None:
    task = asyncio.ensure_future(_close(route))
    _closing.add(task)
    task.add_done_callback(_closing.discard)
