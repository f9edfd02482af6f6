"""The job pipeline's public face: entities of a source provisioned into its targets, or
deprovisioned from them, the way a job does it (spec §3.1, §3.2, §3.5).

A :class:`Pipeline` works for one run (a :class:`~provisor.jobs.ledger.Run`). A job's
runner (runner.py) feeds it the pages it reads with :meth:`Pipeline.read` and a
:class:`Flow` (:meth:`Pipeline.flow`), and deletes what a full read no longer found; a
real-time push
(realtime/service.py) opens one with :meth:`Pipeline.open` for one entity and calls
:meth:`Pipeline.provision` or :meth:`Pipeline.deprovision`, which answer with what happened
in each system (:class:`Outcome`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from provisor import tracing
from provisor.connectors.base import MAX_ID_LENGTH, ConnectorError, excerpt, storable_id
from provisor.context import Context
from provisor.jobs.coverage import Coverage
from provisor.jobs.deleting import Deleting
from provisor.jobs.ledger import Run, RunSpec, handling
from provisor.jobs.model import Action, JobType, Trigger
from provisor.jobs.plan import Item, Participant, digest, name_of
from provisor.jobs.ports import OperationalData, Settled
from provisor.jobs.writing import Writing, references
from provisor.metrics import instruments as metrics
from provisor.transform import Failed, Operation, Skipped, Transformed

PAGES_AHEAD = 2
"""Pages of a read a job holds at once (being written, or transformed and waiting): the
job's memory is a few pages, however many entities the source holds."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a run's entities in one system: ``action`` the most telling of what
    was done (failed, skipped, created, updated, deleted, unchanged, else read), None when
    nothing of them was provisioned there (a deprovision); ``reason`` the first an entity
    log gives, else why the run stopped writing to the system, else what the system did not
    take."""

    system: Participant
    action: Action | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Provisioning:
    """What :meth:`Pipeline.provision` did: in the source (its read transformation) and in
    every target taking the entity type (none when the source did not give the entities)."""

    source: Outcome
    targets: list[Outcome]
    items: int  # entities the source's read transformation gave (the others it skipped, or failed)


class Pipeline:
    """Reading, writing and deleting entities for one run."""

    def __init__(self, run: Run, *, commit: Callable[[Mapping[str, Any]], None] | None = None):
        """``commit`` stores what the run did so far (a job's statistics, logs and row),
        after each batch of deletions."""
        self.run = run
        self.coverage = Coverage(run)
        self.writing = Writing(run, self.coverage)
        self.deleting = Deleting(run, commit)

    @classmethod
    def open(
        cls,
        source: Participant,
        targets: Iterable[Participant],
        opdata: OperationalData,
        *,
        seen_by: str | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> Pipeline:
        """A run of its own, for a few entities pushed by a source (real time): it writes like
        a READ job, and stores every target's operational data in one transaction. What it
        writes counts as seen by ``seen_by`` (the chain of the source's job in progress, so
        that job's deletions keep it)."""
        run_id = str(uuid.uuid4())
        spec = RunSpec(
            run_id=run_id,
            seen_by=seen_by or run_id,
            type=JobType.READ,
            trigger=Trigger.IMMEDIATE,
            source=source,
            targets=tuple(targets),
            settle_together=True,
        )
        return cls(Run(spec, opdata, sleep=sleep))

    # -- the public operations ---------------------------------------------------------------------

    async def provision(
        self, ctx: Context, entity_type: str, entities: Sequence[Any], *, settle: bool = True
    ) -> Provisioning:
        """Entities as the source holds them, through its read transformation and into every
        target that takes their type (created, updated or left as they are); the caller holds
        their locks. ``ctx``: whose call it is (provisor's internal: no permission).
        ``settle=False``: every target's operational data is left to the caller
        (:meth:`unsettled`), to store in a transaction of its own."""
        run = self.run
        items = await asyncio.to_thread(self.read, entity_type, entities)
        source = self.outcome(run.source, entity_type)
        if not items:
            return Provisioning(source, [], 0)
        targets = handling(run.targets, entity_type)
        await asyncio.gather(*(self._timed(ctx, t, entity_type, items) for t in targets))
        if run.spec.settle_together and settle:
            await asyncio.to_thread(run.opdata.settle, self.unsettled())
        return Provisioning(source, [self.outcome(t, entity_type) for t in targets], len(items))

    def unsettled(self) -> list[Settled]:
        """What the targets' writes left to store (a run that settles together), taken."""
        pages, self.run.ledger.deferred = self.run.ledger.deferred, []
        return pages

    async def deprovision(
        self, ctx: Context, entity_type: str, ids: Sequence[str]
    ) -> list[Outcome]:
        """Entities of the source (by their ids) deleted (or soft-deleted) in every target
        that takes their type and holds them; the caller holds their locks. ``ctx``: whose
        call it is (provisor's internal: no permission)."""
        run = self.run
        outcomes = []
        for target in handling(run.targets, entity_type):
            records = await asyncio.to_thread(
                run.opdata.records, run.source.id, target.id, entity_type, list(ids)
            )
            if not records:
                outcomes.append(Outcome(target, None))
                continue
            started = time.monotonic()
            section = target.transformation.entity(entity_type)
            skipped = section is not None and "delete" in section.skip_operations
            with tracing.span(
                "target delete",
                target=target.name,
                target_id=target.id,
                entity_type=entity_type,
                items=len(records),
            ):
                gone = await self.deleting.remove(
                    target, entity_type, list(records.values()), skipped
                )
            try:
                await target.connector.flush()
            except ConnectorError as exc:
                run.fail_target(target, exc.message)
                run.count(entity_type, target, Action.FAILED)
                gone = []
            if gone:
                await asyncio.to_thread(
                    run.opdata.remove, run.source.id, target.id, entity_type, gone
                )
            metrics.realtime_write(ctx.tenant, target.id, time.monotonic() - started)
            outcomes.append(self.outcome(target, entity_type))
        return outcomes

    async def _timed(
        self, ctx: Context, target: Participant, entity_type: str, items: list[Item]
    ) -> None:
        """A pushed change's write to a target, its time recorded in the metrics."""
        started = time.monotonic()
        try:
            await self.writing.write_page(target, entity_type, items)
        finally:
            metrics.realtime_write(ctx.tenant, target.id, time.monotonic() - started)

    def outcome(self, system: Participant, entity_type: str) -> Outcome:
        """What happened to the run's entities of a type in a system, so far."""
        ledger = self.run.ledger
        reason = ledger.reason_of(system.id)
        if reason is None:
            reason = self.run.fatal(system) or self.coverage.note(system)
        return Outcome(system, ledger.action_of(system.id, entity_type), reason)

    # -- the stages --------------------------------------------------------------------------------

    def read(self, entity_type: str, entities: Sequence[Any]) -> list[Item]:
        """Entities as the source gave them, through its read transformation: the items to
        write (counted, and logged when skipped or failed)."""
        run = self.run
        source = run.source
        items = []
        for raw in entities:
            run.count(entity_type, source, Action.READ)
            outcome = source.transformation.apply(entity_type, raw, operation=Operation.READ)
            label, name = _label(raw), name_of(raw)
            if isinstance(outcome, Skipped):
                run.count(entity_type, source, Action.SKIPPED)
                run.log(Action.SKIPPED, entity_type, source, label, outcome.reason, raw, name=name)
            elif isinstance(outcome, Failed):
                run.ledger.source_failed = True
                run.count(entity_type, source, Action.FAILED)
                run.log(Action.FAILED, entity_type, source, label, outcome.reason, raw, name=name)
            elif isinstance(outcome, Transformed):
                source_id = outcome.variables.get("entityIdSourceSystem")
                if source_id is None or source_id == "":
                    run.ledger.source_failed = True
                    run.count(entity_type, source, Action.FAILED)
                    reason = "The read transformation gives no entityIdSourceSystem."
                    run.log(Action.FAILED, entity_type, source, label, reason, raw, name=name)
                    continue
                if not storable_id(str(source_id)):
                    run.ledger.source_failed = True  # no database stores it alike (NUL, length)
                    run.count(entity_type, source, Action.FAILED)
                    reason = (
                        f"entityIdSourceSystem {excerpt(repr(str(source_id)), 80)} is no id: "
                        f"at most {MAX_ID_LENGTH} characters, no control characters."
                    )
                    run.log(Action.FAILED, entity_type, source, label, reason, raw, name=name)
                    continue
                items.append(Item(str(source_id), outcome.document, raw, digest(raw)))
        return items

    def flow(
        self, entity_type: str, done: Callable[[int], Awaitable[None]], *, depth: int = PAGES_AHEAD
    ) -> Flow:
        """A flow of the pages of a type into the targets (see :class:`Flow`)."""
        return Flow(self, entity_type, done, depth)


class Flow:
    """The pages of one entity type, written into every target that takes the type, each
    target at its own pace (decision 0033): a target writes its pages in their order, one
    after the other, without waiting for the other targets, while the job reads and
    transforms the next page; at most ``depth`` pages are in flight. A page is done when
    every target wrote it (or stopped writing): ``done(mark)`` is then called with the mark
    the page was put with, page after page in their order (the job commits its checkpoint
    there). Leaving the flow waits for the pages in flight (a cancelled job cancels them)."""

    def __init__(
        self,
        pipeline: Pipeline,
        entity_type: str,
        done: Callable[[int], Awaitable[None]],
        depth: int = PAGES_AHEAD,
    ) -> None:
        self.pipeline = pipeline
        self.entity_type = entity_type
        self.done = done
        self.slots = asyncio.Semaphore(max(1, depth))
        self.tasks: set[asyncio.Task[None]] = set()
        self.last: dict[str, asyncio.Task[None]] = {}  # target id -> its last page's write
        self.last_ids: frozenset[str] = frozenset()  # the source ids of the last page put
        self.finished: asyncio.Task[None] | None = None  # the last page's end

    async def put(
        self, items: list[Item], mark: int, hold: AbstractAsyncContextManager[None]
    ) -> None:
        """A page's items into the targets: returns when the page is on its way (``hold``,
        the entities' locks, entered here and left when every target wrote the page). Raises
        what an earlier page's writing raised."""
        self._raise()
        await self.slots.acquire()
        stack = AsyncExitStack()
        try:
            self._raise()
            await stack.enter_async_context(hold)
        except BaseException:
            self.slots.release()
            await stack.aclose()
            raise
        run = self.pipeline.run
        # a page that refers to an entity of the one before (a member, a manager) is planned
        # after that one is written: resolveEntityIds finds it in operational data
        refers = not self.last_ids.isdisjoint(r for i in items for r in references(i.document))
        self.last_ids = frozenset(i.source_id for i in items)
        writes = []
        for target in run.targets:
            if target.handles(self.entity_type):
                previous = self.last.get(target.id)
                task = self._start(self._write(target, items, previous, refers))
                self.last[target.id] = task
                writes.append(task)
        self.finished = self._start(self._finish(writes, stack, mark, self.finished))

    async def _write(
        self,
        target: Participant,
        items: list[Item],
        previous: asyncio.Task[None] | None,
        refers: bool,
    ) -> None:
        """A page into a target: planned while the page before is being written (unless it
        refers to that page's entities), sent once that page is (a target's pages in order;
        its failure raises here too)."""
        run, writing = self.pipeline.run, self.pipeline.writing
        if previous is not None and refers:
            await asyncio.shield(previous)
        prepared = None
        if run.fatal(target) is None:
            prepared = await writing.prepare(target, self.entity_type, items)
        if previous is not None:
            await asyncio.shield(previous)
        if prepared is not None and run.fatal(target) is None:
            await writing.finish(prepared)

    async def _finish(
        self,
        writes: list[asyncio.Task[None]],
        stack: AsyncExitStack,
        mark: int,
        previous: asyncio.Task[None] | None,
    ) -> None:
        try:
            try:
                await asyncio.gather(*(asyncio.shield(w) for w in writes))
            finally:
                await stack.aclose()
            if previous is not None:
                await asyncio.shield(previous)
            await self.done(mark)
        finally:
            self.slots.release()

    def _start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            self.tasks.discard(task)  # a failed task stays: its exception is raised

    def _raise(self) -> None:
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    async def wait(self) -> None:
        """Every page put so far written and done; raises what their writing raised."""
        if self.tasks:
            await asyncio.wait(set(self.tasks))
        self._raise()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if isinstance(exc, asyncio.CancelledError):
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            return
        if exc is None:
            await self.wait()
            return
        await asyncio.gather(*self.tasks, return_exceptions=True)  # the pages in flight end


def _label(raw: Any) -> str:
    if isinstance(raw, dict):
        for key in ("id", "userName", "displayName", "dn"):
            value = raw.get(key)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, str | int):
                return excerpt(str(value), 200)  # no NUL or line breaks in a log's id
    return "(unknown)"
