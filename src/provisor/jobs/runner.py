"""Running one job: read the source page by page, transform, write every target (spec §3.1).

For each entity type (users, then groups): pages are read ahead while the current one is
written; each page goes through the source's read transformation once, then into a flow
(pipeline.py's ``Flow``) where every target takes the pages in order at its own pace, a
few pages in flight, through the target's write transformation and to the target with at
most ``ips.write.concurrency`` requests in flight. Operational data decides the
operation: no record → create (a conflict finds the existing entity by the unique
attributes), a record whose hash changed (READ) or any record (RESYNC) → update, else
nothing (writing.py). After a full read the records not seen are deleted under the rules
of §3.5 (deleting.py). Every page's records are stored by each target as it writes it;
the checkpoint (with statistics and logs) is committed once every target wrote the page,
page after page in their order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from provisor import tracing
from provisor.connectors.base import ConnectorError, Page
from provisor.errors import TooManyRequestsError
from provisor.jobs.failures import unexpected
from provisor.jobs.ledger import Run, RunSpec, StatisticsKey
from provisor.jobs.locking import LOCK_SECONDS
from provisor.jobs.model import Action, Counts, Job, JobStatus, JobType, ReadMode, Trigger
from provisor.jobs.pipeline import Flow, Pipeline
from provisor.jobs.plan import Participant, TypeRun
from provisor.jobs.ports import EntityLocks, JobJournal, OperationalData, SourceState
from provisor.timestamps import now
from provisor.types import EntityType

ENTITY_TYPES = tuple(kind.value for kind in EntityType)
"""The entity types a job reads, in order (users first), as the stores and connectors take
them (their values: a checkpoint is JSON keyed by them)."""


class Runner:
    """One run of a job (a restart is a new run of the same chain): the job's read loop
    around the pipeline, reporting to the job's journal. What the job is asked to do is its
    ``spec``; what it did so far, its ``ledger``."""

    page_by_page = False  # True: the next page is read once the pages before are committed

    def __init__(
        self,
        job: Job,
        source: Participant,
        targets: Sequence[Participant],
        opdata: OperationalData,
        journal: JobJournal,
        *,
        options: Mapping[str, Any] | None = None,
        checkpoint: Mapping[str, int] | None = None,
        systems_by_name: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        heartbeat_seconds: float = 10.0,
        locks: EntityLocks | None = None,
        lock_seconds: float = LOCK_SECONDS,
    ) -> None:
        """The job's run: its specification comes from the job, its options (``trace``) and
        its checkpoint (a restart goes on from there)."""
        self.job = job
        self.spec = RunSpec(
            run_id=job.id,
            seen_by=job.chain_id,
            type=job.type,
            trigger=job.trigger,
            source=source,
            targets=tuple(targets),
            trace=bool((options or {}).get("trace")),
            systems_by_name=dict(systems_by_name or {}),
            resume_from=dict(checkpoint or {}),
        )
        # the run the pipeline's stages work on: the spec, the ledger and the ports
        self.work = Run(self.spec, opdata, locks=locks, lock_seconds=lock_seconds, sleep=sleep)
        self.ledger = self.work.ledger
        self.pipeline = Pipeline(self.work, commit=lambda fields: self.commit(fields))
        self.opdata = opdata
        self.journal = journal
        self.heartbeat_seconds = heartbeat_seconds
        self.interrupted = False
        self.status = JobStatus.RUNNING
        self.increments: Increments | None = None  # commit statistics as increments

    @property
    def source(self) -> Participant:
        return self.spec.source

    # -- the job --------------------------------------------------------------------------------

    async def run(self) -> JobStatus:
        ledger = self.ledger
        beating = asyncio.create_task(self._heartbeat())
        try:
            types = [t for t in ENTITY_TYPES if self.source.handles(t)]
            for entity_type in types:
                run = ledger.runs[entity_type] = self._read_mode(entity_type)
                if entity_type == types[0]:  # the job shows the read mode of its users
                    await self._journal(read_mode=run.mode)
                await self._sync(entity_type, run)
                if ledger.stopped or (ledger.source_failed and not run.complete):
                    break
            if not ledger.stopped:
                for entity_type in reversed(types):
                    if entity_type in ledger.runs:
                        await self.pipeline.deleting.delete(entity_type, ledger.runs[entity_type])
        except asyncio.CancelledError:
            # The worker is shutting down: the job stays "running" until a worker finds its
            # heartbeat stale and a new job continues it from the last committed page.
            self.interrupted = True
            raise
        except Exception as exc:  # a bug or a storage failure: the job ends with it
            ledger.errors.append(f"The job stopped on {unexpected(exc, self.job.id)}.")
            ledger.source_failed = True
            raise
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            await self._close()
            if not self.interrupted:
                await self._finish()
        return self.status

    async def _close(self) -> None:
        for participant in (self.source, *self.spec.targets):
            try:
                await participant.connector.aclose()
            except ConnectorError as exc:
                self.work.fail_target(
                    participant, f"Writing the last changes failed: {exc.message}"
                )

    def _failed(self) -> bool:
        """Whether some entity failed somewhere."""
        return self.ledger.failed

    def _final_status(self) -> JobStatus:
        ledger = self.ledger
        if ledger.stopped:
            return JobStatus.MANUALLY_TERMINATED
        if ledger.errors or self._failed() or ledger.source_failed:
            return JobStatus.FINISHED_WITH_ERROR
        return JobStatus.SUCCESS

    async def _finish(self) -> None:
        ledger = self.ledger
        self.status = self._final_status()
        if not self.spec.simulate:
            for entity_type, run in ledger.runs.items():
                self._save_state(entity_type, run)
        fields = {
            "ended": now(),
            "outcome": " ".join(self.pipeline.coverage.outcome() + ledger.outcome) or None,
            "error": "; ".join(ledger.errors) or None,
            "checkpoint": ledger.checkpoint,
        }
        await asyncio.to_thread(self.commit, fields, self.status)

    def _save_state(self, entity_type: str, run: TypeRun) -> None:
        state = self.opdata.source_state(self.source.id, entity_type)
        if self.status is not JobStatus.SUCCESS or not run.complete:
            return  # the delta token advances only with a job that succeeded
        counted = self.job.trigger is Trigger.REPEAT
        if run.mode is ReadMode.FULL:
            state = SourceState(run.newest or state.delta_token, 0, run.read)
        else:
            deltas = state.deltas_since_full + (1 if counted else 0)
            state = SourceState(run.newest or state.delta_token, deltas, state.last_full_count)
        self.opdata.save_source_state(self.source.id, entity_type, state)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            await asyncio.to_thread(self.journal.update, self.job.id, heartbeat=now())

    async def _journal(self, **fields: Any) -> None:
        await asyncio.to_thread(self.journal.update, self.job.id, **fields)

    def commit(self, fields: Mapping[str, Any], status: JobStatus | None = None) -> None:
        """Statistics, entity logs and the job row, after a page (or at the end)."""
        ledger = self.ledger
        if status is None and self._failed():
            status = JobStatus.RUNNING_WITH_ERROR
        if status is not None:
            fields = {**fields, "status": status}
        if self.increments is None:
            self.journal.commit(self.job.id, ledger.take_logs(), dict(ledger.counts), **fields)
        else:
            counts = self.increments.since(ledger.counts)
            self.journal.commit_increments(self.job.id, ledger.take_logs(), counts, **fields)

    # -- reading --------------------------------------------------------------------------------

    def _read_mode(self, entity_type: str) -> TypeRun:
        if self.job.type is not JobType.READ:
            return TypeRun(ReadMode.FULL, None)
        if (self.source.properties.get("ips.delta.read") or "").lower() != "enabled":
            return TypeRun(ReadMode.FULL, None)
        if not self.source.connector.capabilities.delta_read:
            return TypeRun(ReadMode.FULL, None)
        state = self.opdata.source_state(self.source.id, entity_type)
        if state.delta_token is None:
            return TypeRun(ReadMode.FULL, None)  # the first read is always full
        force = self.source.number("ips.full.read.force.count")
        if force and self.job.trigger is Trigger.REPEAT and state.deltas_since_full >= force:
            return TypeRun(ReadMode.FULL, None)
        return TypeRun(ReadMode.DELTA, state.delta_token, newest=state.delta_token)

    async def _sync(self, entity_type: str, run: TypeRun) -> None:
        ledger = self.ledger
        delta = run.token if run.mode is ReadMode.DELTA else None
        pages = self._pages(entity_type, delta)

        async def committed(mark: int) -> None:  # every target wrote the pages up to mark
            ledger.checkpoint[entity_type] = mark
            await asyncio.to_thread(
                self.commit, {"checkpoint": ledger.checkpoint, "heartbeat": now()}
            )

        try:
            async with (
                contextlib.aclosing(_ahead(pages)) as ahead,
                self.pipeline.flow(entity_type, committed) as flow,
            ):
                await self._feed(entity_type, run, ahead, flow)
            run.complete = not ledger.stopped
        except ConnectorError as exc:
            ledger.source_failed = True
            ledger.errors.append(f"Reading {entity_type}s from {self.source.name} failed: {exc}")
            self.work.count(entity_type, self.source, Action.FAILED)
        except TooManyRequestsError as exc:  # the page is written by the next job
            ledger.source_failed = True
            ledger.errors.append(f"Writing {entity_type}s stopped: {exc.message}")

    async def _feed(
        self, entity_type: str, run: TypeRun, pages: AsyncIterator[Page], flow: Flow
    ) -> None:
        """Each page read, through the source's read transformation, into the flow."""
        ledger = self.ledger
        skip = ledger.checkpoint.get(entity_type, 0)
        done = 0
        async for page in pages:
            if await asyncio.to_thread(self._stop_requested):
                ledger.stopped = True
                ledger.outcome.append("The job was stopped: nothing was deleted.")
                return
            if page.delta_token:
                run.newest = page.delta_token
            entities = page.entities
            done += len(entities)
            run.read += len(entities)
            if skip >= len(entities):  # done by the run this one restarts
                skip -= len(entities)
                continue
            entities, skip = entities[skip:], 0
            if self.page_by_page:
                await flow.wait()
            with tracing.span(
                "job page",
                job=self.job.id,
                source=self.source.name,
                tenant=self.job.tenant,
                entity_type=entity_type,
                entities=len(entities),
            ):
                items = await asyncio.to_thread(self.pipeline.read, entity_type, entities)
                hold = self.work.holding(entity_type, [i.source_id for i in items])
                await flow.put(items, done, hold)

    def _pages(self, entity_type: str, delta: str | None) -> AsyncIterator[Page]:
        """The pages the run reads: every entity of the type (or what changed since
        ``delta``)."""
        return self.source.connector.read(entity_type, delta=delta)

    def _stop_requested(self) -> bool:
        return self.journal.stop_requested(self.job.id)


class Increments:
    """The statistics of a run since its last commit (a job's partitions and its runner
    add theirs to the job's, decision 0032)."""

    def __init__(self) -> None:
        self._committed: dict[StatisticsKey, dict[str, int]] = {}

    def since(self, counts: Mapping[StatisticsKey, Counts]) -> dict[StatisticsKey, Counts]:
        """What ``counts`` added since the last call (which they become)."""
        added = {}
        for key, c in counts.items():
            current = c.to_dict()
            before = self._committed.get(key, {})
            step = {name: n - before.get(name, 0) for name, n in current.items()}
            if any(step.values()):
                added[key] = Counts(**step)
            self._committed[key] = current
        return added


async def _ahead(pages: AsyncIterator[Page]) -> AsyncGenerator[Page, None]:
    """The pages of a read, the next one read while the current one is processed."""
    queue: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=1)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
            await queue.put(None)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            await queue.put(exc)

    task = asyncio.create_task(produce())
    try:
        while True:
            page = await queue.get()
            if page is None:
                return
            if isinstance(page, BaseException):
                raise page
            yield page
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
