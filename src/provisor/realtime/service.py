"""Real-time provisioning (spec §6): one change pushed by a source application goes through
the source's read transformation and, at once, through every enabled target's write
transformation into that target. No job, no property filters; conditions apply.

A change is carried by the job pipeline's public face (``jobs/pipeline.py``: provision,
deprovision): the same operational data, conflict resolution, member resolution, deletion
rules and soft deletes as a job. Changes provisor wrote itself and the back-end reports back
are dropped (loops.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisor import tracing
from provisor.connectors.base import MAX_ID_LENGTH, ConnectorError, Role, storable_id
from provisor.context import Context, Permission, requires
from provisor.errors import ConfigError, InputError, NotFoundError, TooManyRequestsError
from provisor.jobs import loops
from provisor.jobs.locking import entity_key, holding
from provisor.jobs.model import Action
from provisor.jobs.pipeline import Outcome, Pipeline
from provisor.jobs.plan import Participant, name_of
from provisor.jobs.ports import Settled
from provisor.jobs.service import JobService, targets_of
from provisor.jobs.store import settle_in
from provisor.realtime import store
from provisor.realtime.model import (
    Change,
    Operation,
    RealtimeLog,
    State,
    Status,
    SystemResult,
)
from provisor.storage.database import Database
from provisor.systems.model import System
from provisor.timestamps import now
from provisor.types import EntityType

ROUTE_SECONDS = 5.0  # how long a source's systems are reused before they are read again
LOOP = "Identity Provisioning wrote this change: it is not provisioned again (loop prevention)."
DEPROVISIONED = "Skipped by the source condition: deprovisioned in targets."


@dataclass
class _Route:
    """A source system and its targets, ready to write (connectors and compiled documents)."""

    source_system: System
    source: Participant
    targets: list[Participant]
    endpoint: str | None
    loaded: float


class RealtimeService:
    """The real-time API (permission ``realtime_api``; a certificate attached to a source
    system calls only that system's) and its logs (``admin``)."""

    def __init__(self, jobs: JobService, db: Database) -> None:
        self.jobs = jobs
        self.systems = jobs.systems
        self.db = db
        self._routes: dict[tuple[str, str], _Route] = {}  # by (tenant, source id or name)
        self._loading: dict[tuple[str, str], asyncio.Lock] = {}

    # -- the real-time API ----------------------------------------------------------------------

    @requires(Permission.REALTIME_API)
    async def push(self, ctx: Context, source: str, change: Change) -> RealtimeLog:
        """Carry one change to every target; the log of what happened (also stored).
        NotFoundError / ConfigError / InputError when the source or the request cannot be
        used (logged too, unless the source cannot be)."""
        if ctx.actor.system is not None:
            await asyncio.to_thread(self._confine, ctx, source)
        if change.entity_id is not None:
            _check_id(change.entity_id)
        started, clock = now(), time.monotonic()
        route = await self._route(ctx, source)
        results: list[SystemResult] = []
        pending: list[Settled] = []  # the targets' operational data: stored with the log
        entity_id = change.entity_id
        entity = None
        try:
            if entity_id is None:  # a POST: the body names the entity
                entity = await self._entity(route, change)
                found = None if entity is None else _id_of(entity)
                if found is not None:
                    _check_id(found)  # before the log keeps it
                entity_id = found
            if entity_id is None:
                raise InputError("The entity has no id.")
            key = entity_key(route.source.id, change.entity_type, entity_id)
            async with holding(self.jobs.locks, [key], self.jobs.lock_seconds):
                if change.entity_id is not None:  # read in turn: the last to write read last
                    entity = await self._entity(route, change)
                with tracing.span(
                    "realtime change",
                    source=route.source.name,
                    entity_type=str(change.entity_type),
                    operation=str(change.operation),
                    request_id=ctx.request_id,
                ):
                    try:
                        results += await self._carry(ctx, route, change, entity, entity_id, pending)
                    except BaseException:
                        await self._settle(ctx, pending)  # what was written, under the lock
                        raise
                # the operational data is stored before the next call for the entity reads it
                log = self._log(ctx, route, change, started, clock, entity, entity_id, results)
                await asyncio.to_thread(self._keep, ctx, log, pending)
                return log
        except (
            ConfigError,
            InputError,
            NotFoundError,
            ConnectorError,
            TooManyRequestsError,
        ) as exc:
            results.append(_of(route.source, change.operation, State.FAILED, exc.message))
            log = self._log(ctx, route, change, started, clock, entity, entity_id, results)
            log.error = exc.message
            await asyncio.to_thread(self._keep, ctx, log, ())
            raise  # the request could not be carried out: its caller is told

    def _log(
        self,
        ctx: Context,
        route: _Route,
        change: Change,
        started: str,
        clock: float,
        entity: dict[str, Any] | None,
        entity_id: str | None,
        results: list[SystemResult],
    ) -> RealtimeLog:
        failed = any(r.state is State.FAILED for r in results)
        return RealtimeLog(
            id=str(uuid.uuid4()),
            source_id=route.source.id,
            source_name=route.source.name,
            entity_type=change.entity_type,
            entity_id=entity_id,
            operation=change.operation,
            status=Status.ERROR if failed else Status.SUCCESS,
            started=started,
            duration_ms=round((time.monotonic() - clock) * 1000),
            error=next((r.reason for r in results if r.state is State.FAILED), None),
            caller=ctx.author,
            systems=results,
            entity_name=name_of(entity),
        )

    async def _settle(self, ctx: Context, pending: list[Settled]) -> None:
        if pending:
            await asyncio.to_thread(self.jobs.operational(ctx).settle, pending)
            pending.clear()

    @requires(Permission.REALTIME_API)
    def check(self, ctx: Context, source: str, entity_type: EntityType) -> None:
        """What a source application's *Test Connection* asks: NotFoundError unless the
        source system exists."""
        if ctx.actor.system is not None:
            self._confine(ctx, source)
        self.systems.get(ctx, source)

    def _confine(self, ctx: Context, source: str) -> None:
        """PermissionDeniedError when the caller is confined to another system (a certificate
        attached to a system), or ``source`` is no system."""
        try:
            system_id = self.systems.get(ctx, source).id
        except NotFoundError:
            system_id = ""  # no system is the caller's
        ctx.require_system(system_id)

    # -- the logs -------------------------------------------------------------------------------

    @requires(Permission.VIEW)
    def search(
        self,
        ctx: Context,
        *,
        source: str | None = None,
        entity_id: str | None = None,
        entity: str | None = None,
        entity_type: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[RealtimeLog], int]:
        """Real-time logs newest first, of a source system (id or name), an entity id, an
        entity (its id or its name), an entity type, a status; and how many there are."""
        source_id = self.systems.get(ctx, source).id if source else None
        with self.db.read(ctx) as tx:
            return store.search(
                tx,
                source_id=source_id,
                entity_id=entity_id,
                entity=entity,
                entity_type=entity_type,
                status=status,
                offset=offset,
                limit=limit,
            )

    @requires(Permission.VIEW)
    def log(self, ctx: Context, log_id: str) -> RealtimeLog:
        """One real-time log; NotFoundError when there is none with that id."""
        with self.db.read(ctx) as tx:
            found = store.get(tx, log_id)
        if found is None:
            raise NotFoundError(f"No real-time log {log_id!r}.")
        return found

    def _keep(self, ctx: Context, log: RealtimeLog, pending: Sequence[Settled]) -> None:
        """The log, with what the targets' writes left to store: one commit per change."""
        with self.db.write(ctx) as tx:
            settle_in(tx, pending)
            store.add(tx, log)

    # -- the steps --------------------------------------------------------------------------

    async def _carry(
        self,
        ctx: Context,
        route: _Route,
        change: Change,
        entity: dict[str, Any] | None,
        entity_id: str,
        pending: list[Settled],
    ) -> list[SystemResult]:
        """The change in every target, unless provisor wrote it itself (an echo). Run while
        the entity's lock is held: another call for it waits its turn (decision 0021). What
        the targets' writes leave to store goes to ``pending`` (stored with the log)."""
        pipeline = await asyncio.to_thread(self._prepare, ctx, route, change, entity, entity_id)
        if pipeline is None:
            return [_of(route.source, change.operation, State.SKIPPED, LOOP)]
        if entity is None:
            return await self._deprovision(ctx, pipeline, change, entity_id)
        try:
            done = await pipeline.provision(ctx, change.entity_type, [entity], settle=False)
        finally:
            pending += pipeline.unsettled()
        source = _result(done.source, change)
        if not done.items and source.state is State.SKIPPED:  # the source condition
            source.reason = DEPROVISIONED
            return [source, *await self._deprovision(ctx, pipeline, change, entity_id)]
        return [source, *(_result(t, change) for t in done.targets)]

    async def _deprovision(
        self, ctx: Context, pipeline: Pipeline, change: Change, entity_id: str
    ) -> list[SystemResult]:
        outcomes = await pipeline.deprovision(ctx, change.entity_type, [entity_id])
        return [_result(o, change, Operation.DELETE) for o in outcomes]

    def _prepare(
        self,
        ctx: Context,
        route: _Route,
        change: Change,
        entity: dict[str, Any] | None,
        entity_id: str,
    ) -> Pipeline | None:
        """A one-entity run, or None when the change is an echo of provisor's own write.
        What the run writes counts as seen by the source's job in progress, if one is (the
        source has the entity now): that job's deletions keep it. (One thread hop.)"""
        opdata = self.jobs.operational(ctx)
        if route.endpoint is not None:
            last = opdata.echo(route.endpoint, change.entity_type, entity_id)
            if loops.is_echo(last, entity):
                return None
        chain = self.jobs.chain_in_progress(ctx, route.source.id)
        return Pipeline.open(route.source, route.targets, opdata, seen_by=chain)

    async def _entity(self, route: _Route, change: Change) -> dict[str, Any] | None:
        """The entity as the source holds it; None for a delete."""
        if change.operation is Operation.DELETE:
            return None
        if change.operation is Operation.PATCH:
            if change.entity_id is None:
                raise InputError("PATCH needs the entity's id in the path.")
            current = await route.source.connector.get(change.entity_type, change.entity_id)
            if current is None:
                raise NotFoundError(
                    f"{change.entity_type} {change.entity_id} is not in {route.source.name}."
                )
            return current  # the source applied the change before it reported it
        if not isinstance(change.body, dict):
            raise InputError("The body is a JSON object: the entity as the source holds it.")
        entity = dict(change.body)
        if change.entity_id is not None:
            entity.setdefault("id", change.entity_id)
            if str(entity["id"]) != change.entity_id:
                raise InputError(
                    f"The body's id {entity['id']!r} is not the path's {change.entity_id!r}."
                )
        return entity

    async def _route(self, ctx: Context, source: str) -> _Route:
        """The source's systems, reused for ROUTE_SECONDS (kept per tenant)."""
        key = (ctx.tenant, source)
        route = self._routes.get(key)
        if route is not None and time.monotonic() - route.loaded < ROUTE_SECONDS:
            return route
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:
            route = self._routes.get(key)
            if route is not None and time.monotonic() - route.loaded < ROUTE_SECONDS:
                return route
            fresh = await asyncio.to_thread(self._load, ctx, source)
            old = self._routes.get(key)
            self._routes[(ctx.tenant, fresh.source.id)] = self._routes[key] = fresh
            if old is not None:  # its connectors go; requests still using them finish first
                asyncio.get_running_loop().call_later(60, _close_later, old)
            return fresh

    def _load(self, call: Context, source: str) -> _Route:
        # provisor's own work for the call's tenant: the route outlives the call
        ctx = call.as_system("realtime")
        system = self.systems.get(ctx, source)
        if system.role is not Role.SOURCE:
            raise ConfigError(f"{system.name} is a {system.role} system: changes go to sources.")
        if not system.enabled:
            raise ConfigError(f"{system.name} is disabled: enable it to provision in real time.")
        everyone = self.systems.all(ctx)[0]
        return _Route(
            source_system=system,
            source=self.jobs.participant(ctx, system, "read"),
            targets=self.jobs.writers(ctx, targets_of(system, everyone), everyone),
            endpoint=self.jobs.endpoint(system),
            loaded=time.monotonic(),
        )

    async def aclose(self) -> None:
        for route in {id(r): r for r in self._routes.values()}.values():
            await _close(route)
        self._routes.clear()


def _of(system: Participant, operation: str, state: State, reason: str | None) -> SystemResult:
    return SystemResult(system.id, system.name, system.role.value, operation, state, reason)


def _result(outcome: Outcome, change: Change, operation: Operation | None = None) -> SystemResult:
    """What happened to the one entity in a system, as SAP's states say it."""
    system = outcome.system
    if outcome.action is None:
        return _of(system, Operation.DELETE, State.NOT_PROVISIONED, None)
    verb = operation or change.operation
    if outcome.action is Action.CREATED:
        verb = Operation.CREATE
    elif outcome.action is Action.UPDATED and verb is Operation.CREATE:
        verb = Operation.UPDATE
    return _of(system, verb, State.of(outcome.action), outcome.reason)


def _check_id(entity_id: str) -> None:
    if not storable_id(entity_id):
        raise InputError(
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
