"""Running one job: read the source page by page, transform, write every target (spec §3.1).

For each entity type (users, then groups): pages are read ahead while the current one is
written; each page goes through the source's read transformation once, then, for every
target at the same time, through the target's write transformation and to the target with
at most ``ips.write.concurrency`` requests in flight. Operational data decides the
operation: no record → create (a conflict finds the existing entity by the unique
attributes), a record whose hash changed (READ) or any record (RESYNC) → update, else
nothing (writing.py). After a full read the records not seen are deleted under the rules
of §3.5 (deleting.py). Every page is committed (records, statistics, logs, checkpoint)
before the next.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from provisor.connectors.base import MAX_ID_LENGTH, ConnectorError, Page, excerpt, storable_id
from provisor.jobs.coverage import Coverage
from provisor.jobs.deleting import Deleting
from provisor.jobs.failures import unexpected
from provisor.jobs.model import Action, Counts, Job, JobStatus, JobType, ReadMode, Trigger
from provisor.jobs.plan import Item, Participant, TypeRun, digest, log_text
from provisor.jobs.ports import EntityLog, JobJournal, OperationalData, Settled, SourceState
from provisor.jobs.writing import Writing
from provisor.timestamps import now
from provisor.transform import Failed, Operation, Skipped, Transformed

ENTITY_TYPES = ("user", "group")
HIDDEN = "<hidden content>"


class Runner:
    """One run of a job (a restart is a new run of the same chain)."""

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
    ) -> None:
        self.job = job
        self.source = source
        self.targets = list(targets)
        self.opdata = opdata
        self.journal = journal
        self.options = dict(options or {})
        self.checkpoint = dict(checkpoint or {})
        self.systems_by_name = dict(systems_by_name or {})
        self.sleep = sleep
        self.heartbeat_seconds = heartbeat_seconds
        self.counts: dict[tuple[str, str, str, str], Counts] = defaultdict(Counts)
        self.logs: list[EntityLog] = []
        self.outcome: list[str] = []
        self.errors: list[str] = []
        self.source_failed = False  # a read failure: no deletions
        self.stopped = False
        self.interrupted = False
        self.status = JobStatus.RUNNING
        self.writing = Writing(self)
        self.deleting = Deleting(self)
        self.coverage = Coverage(self)
        self.runs: dict[str, TypeRun] = {}
        self.simulate = job.type is JobType.SIMULATE
        # SIMULATE marks nothing seen in operational data: (target, type) -> source ids seen
        self.simulated_seen: dict[tuple[str, str], set[str]] = defaultdict(set)
        # Set to a list, the operational data of pages waits there (one transaction later).
        self.deferred: list[Settled] | None = None
        self.trace = bool(self.options.get("trace"))
        self._trace_props = {
            action: (
                self.source.flag(f"ips.trace.{action}.entity"),
                self.source.flag(f"ips.trace.{action}.entity.content"),
            )
            for action in ("created", "updated", "deleted", "skipped", "failed")
        }

    # -- the job --------------------------------------------------------------------------------

    async def run(self) -> JobStatus:
        beating = asyncio.create_task(self._heartbeat())
        try:
            types = [t for t in ENTITY_TYPES if self.source.handles(t)]
            for entity_type in types:
                run = self.runs[entity_type] = self._read_mode(entity_type)
                if entity_type == types[0]:  # the job shows the read mode of its users
                    await self._journal(read_mode=run.mode)
                await self._sync(entity_type, run)
                if self.stopped or (self.source_failed and not run.complete):
                    break
            if not self.stopped:
                for entity_type in reversed(types):
                    if entity_type in self.runs:
                        await self.deleting.delete(entity_type, self.runs[entity_type])
        except asyncio.CancelledError:
            # The worker is shutting down: the job stays "running" until a worker finds its
            # heartbeat stale and a new job continues it from the last committed page.
            self.interrupted = True
            raise
        except Exception as exc:  # a bug or a storage failure: the job ends with it
            self.errors.append(f"The job stopped on {unexpected(exc, self.job.id)}.")
            self.source_failed = True
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
        for participant in (self.source, *self.targets):
            try:
                await participant.connector.aclose()
            except ConnectorError as exc:
                self.fail_target(participant, f"Writing the last changes failed: {exc.message}")

    def _final_status(self) -> JobStatus:
        if self.stopped:
            return JobStatus.MANUALLY_TERMINATED
        failed = any(c.failed for c in self.counts.values())
        if self.errors or failed or self.source_failed:
            return JobStatus.FINISHED_WITH_ERROR
        return JobStatus.SUCCESS

    async def _finish(self) -> None:
        self.status = self._final_status()
        if not self.simulate:
            for entity_type, run in self.runs.items():
                self._save_state(entity_type, run)
        fields = {
            "ended": now(),
            "outcome": " ".join(self.coverage.outcome() + self.outcome) or None,
            "error": "; ".join(self.errors) or None,
            "checkpoint": self.checkpoint,
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
        logs, self.logs = self.logs, []
        self.journal.add_entity_logs(self.job.id, logs)
        self.journal.save_statistics(self.job.id, dict(self.counts))
        if status is None and any(c.failed for c in self.counts.values()):
            status = JobStatus.RUNNING_WITH_ERROR
        if status is not None:
            self.journal.set_status(self.job.id, status, **fields)
        else:
            self.journal.update(self.job.id, **fields)

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
        skip = self.checkpoint.get(entity_type, 0)
        done = 0
        delta = run.token if run.mode is ReadMode.DELTA else None
        pages = self.source.connector.read(entity_type, delta=delta)
        try:
            async for page in _ahead(pages):
                if await asyncio.to_thread(self.journal.stop_requested, self.job.id):
                    self.stopped = True
                    self.outcome.append("The job was stopped: nothing was deleted.")
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
                items = await asyncio.to_thread(self.read_page, entity_type, entities)
                writers = [
                    self.writing.write_page(target, entity_type, items)
                    for target in self.targets
                    if target.fatal is None and target.handles(entity_type)
                ]
                await asyncio.gather(*writers)
                self.checkpoint[entity_type] = done
                await asyncio.to_thread(
                    self.commit, {"checkpoint": self.checkpoint, "heartbeat": now()}
                )
            run.complete = True
        except ConnectorError as exc:
            self.source_failed = True
            self.errors.append(f"Reading {entity_type}s from {self.source.name} failed: {exc}")
            self.count(entity_type, self.source, Action.FAILED)

    def read_page(self, entity_type: str, entities: Sequence[Any]) -> list[Item]:
        items = []
        for raw in entities:
            self.count(entity_type, self.source, Action.READ)
            outcome = self.source.transformation.apply(entity_type, raw, operation=Operation.READ)
            label = _label(raw)
            if isinstance(outcome, Skipped):
                self.count(entity_type, self.source, Action.SKIPPED)
                self.log(Action.SKIPPED, entity_type, self.source, label, outcome.reason, raw)
            elif isinstance(outcome, Failed):
                self.source_failed = True
                self.count(entity_type, self.source, Action.FAILED)
                self.log(Action.FAILED, entity_type, self.source, label, outcome.reason, raw)
            elif isinstance(outcome, Transformed):
                source_id = outcome.variables.get("entityIdSourceSystem")
                if source_id is None or source_id == "":
                    self.source_failed = True
                    self.count(entity_type, self.source, Action.FAILED)
                    reason = "The read transformation gives no entityIdSourceSystem."
                    self.log(Action.FAILED, entity_type, self.source, label, reason, raw)
                    continue
                if not storable_id(str(source_id)):
                    self.source_failed = True  # no database stores it alike (NUL, length)
                    self.count(entity_type, self.source, Action.FAILED)
                    reason = (
                        f"entityIdSourceSystem {excerpt(repr(str(source_id)), 80)} is no id: "
                        f"at most {MAX_ID_LENGTH} characters, no control characters."
                    )
                    self.log(Action.FAILED, entity_type, self.source, label, reason, raw)
                    continue
                items.append(Item(str(source_id), outcome.document, raw, digest(raw)))
        return items

    # -- bookkeeping ----------------------------------------------------------------------------
    def fail_target(self, target: Participant, reason: str) -> None:
        if target.fatal is None:
            target.fatal = reason
            self.errors.append(f"Target {target.name}: {reason}")

    def count(self, entity_type: str, system: Participant, action: Action) -> None:
        role = "source" if system is self.source else "target"
        self.counts[(entity_type, system.id, system.name, role)].add(action)

    def log(
        self,
        action: Action,
        entity_type: str,
        system: Participant,
        entity_id: str,
        reason: str | None,
        content: Any,
        trace: Any = None,
    ) -> None:
        wanted, with_content = self._trace_props.get(action.value, (True, False))
        if action in (Action.FAILED, Action.SKIPPED):
            wanted = True  # failed and skipped entities are always logged
        if self.simulate or self.trace:
            wanted = True
        if not wanted:
            return
        text = None
        if trace is not None:
            text = log_text({"trace": trace, **({"document": content} if with_content else {})})
        elif with_content and content is not None:
            text = log_text(content)
        elif action in (Action.FAILED, Action.SKIPPED) and content is not None:
            text = HIDDEN
        self.logs.append(
            EntityLog(action.value, entity_type, system.id, system.name, entity_id, reason, text)
        )


async def _ahead(pages: AsyncIterator[Page]) -> AsyncIterator[Page]:
    """The pages of a read, the next one read while the current one is processed."""
    queue: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=1)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
            await queue.put(None)
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


def _label(raw: Any) -> str:
    if isinstance(raw, dict):
        for key in ("id", "userName", "displayName", "dn"):
            value = raw.get(key)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, str | int):
                return excerpt(str(value), 200)  # no NUL or line breaks in a log's id
    return "(unknown)"
