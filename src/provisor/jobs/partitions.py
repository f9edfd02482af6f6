"""One job on many workers (decision 0032): a full read split into partitions of the source,
each run by any worker as its own task, the job's runner joining them.

The job's runner (:class:`PartitionedRunner`, on the worker that claimed the job) asks the
source connector to split a full read of an entity type into partitions of about
``PROVISOR_JOB_PARTITION_SIZE`` entities (the Local Identity Directory: key ranges of its
ids); a read that gives one partition, a delta read, a SIMULATE job or a source that does
not split is read by the runner as ever. The partitions are rows, created with one task
each in one transaction; any worker runs a partition (:class:`PartRunner`): it reads its
pages, writes them to every target and commits each page (entity logs, statistics added to
the job's, entities done) in one transaction. A task retried after its worker died goes on
after the entities done. The runner waits until every partition of the type has ended,
merges what their reads found, then goes on with the next entity type (groups after the
users they name) and deletes, after a full read whose every partition read to its end,
under the rules of §3.5. The job stays one job: one row, its statistics the sums of its
partitions', its entity logs theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from provisor.connectors.base import ConnectorError, Page
from provisor.jobs.failures import unexpected
from provisor.jobs.model import JobStatus, ReadMode
from provisor.jobs.partstore import Part, PartitionStore, PartQueue, PartStatus
from provisor.jobs.plan import TypeRun
from provisor.jobs.runner import Increments, Runner
from provisor.timestamps import now

POLL_SECONDS = 0.25  # how often the job's runner looks at its partitions


class PartitionedRunner(Runner):
    """A job's runner that hands the partitions of its full reads to the workers."""

    def __init__(
        self,
        *args: Any,
        parts: PartitionStore,
        queue: PartQueue,
        size: int,
        take: Callable[[str, int], Awaitable[None]] | None = None,
        live_since: Callable[[], str] | None = None,
        poll_seconds: float = POLL_SECONDS,
        **kwargs: Any,
    ) -> None:
        """``size``: entities per partition, about (a read of fewer is not split); ``take``
        runs a partition here (of an entity type, by number) while waiting for the workers:
        one still queued, or whose worker has not beaten since ``live_since()`` (it died)."""
        super().__init__(*args, **kwargs)
        self.parts = parts
        self.queue = queue
        self.size = size
        self.take = take
        self.live_since = live_since
        self.poll_seconds = poll_seconds
        self.increments = Increments()  # the partitions add to the same statistics
        self.parts_failed = False  # an entity failed in a partition

    def _failed(self) -> bool:
        return self.parts_failed or super()._failed()

    async def _sync(self, entity_type: str, run: TypeRun) -> None:
        bounds = await self._split(entity_type, run)
        if bounds is None:
            await super()._sync(entity_type, run)
            return
        await asyncio.to_thread(self.parts.create, self.job, entity_type, bounds, self.queue)
        parts = await self._joined(entity_type)
        self._merge(run, parts)
        if run.complete:
            self.ledger.checkpoint[entity_type] = run.read  # a restart reads the type no more
            fields = {"checkpoint": self.ledger.checkpoint, "heartbeat": now()}
            await asyncio.to_thread(self.commit, fields)

    async def _split(self, entity_type: str, run: TypeRun) -> list[dict[str, Any]] | None:
        """The partitions of the read, when it is split (two or more)."""
        if run.mode is not ReadMode.FULL or self.spec.simulate or self.size <= 0:
            return None
        if self.ledger.checkpoint.get(entity_type):  # a restart goes on from its checkpoint
            return None
        try:
            bounds = await self.source.connector.split(entity_type, self.size)
        except ConnectorError:
            return None  # reading it in one go reports the failure
        return bounds if bounds is not None and len(bounds) > 1 else None

    async def _joined(self, entity_type: str) -> list[Part]:
        """The partitions once every one has ended (a stop request stops them)."""
        while True:
            parts = await asyncio.to_thread(self.parts.of, self.job.id, entity_type)
            if all(p.status.ended for p in parts):
                return parts
            if not self.ledger.stopped and await asyncio.to_thread(self._stop_requested):
                self.ledger.stopped = True
                self.ledger.outcome.append("The job was stopped: nothing was deleted.")
            waiting = await asyncio.to_thread(self._untaken, parts)
            if waiting is not None and self.take is not None:  # stopped: it ends stopped
                await self.take(entity_type, waiting.number)
                continue
            await self.work.sleep(self.poll_seconds)

    def _untaken(self, parts: list[Part]) -> Part | None:
        """A partition no worker runs: still queued, or its worker died."""
        queued = [p for p in parts if p.status is PartStatus.QUEUED]
        if queued:
            return queued[0]
        running = [p for p in parts if p.status is PartStatus.RUNNING]
        if not running or self.live_since is None:
            return None
        live = self.parts.live_workers(self.live_since())
        return next((p for p in running if p.worker not in live), None)

    def _merge(self, run: TypeRun, parts: list[Part]) -> None:
        """What the partitions' reads found, into the job's."""
        ledger = self.ledger
        run.read = sum(p.read for p in parts)
        newest = [p.newest for p in parts if p.newest]
        if newest:
            run.newest = max(newest)
        targets = {t.id: t for t in self.spec.targets}
        for part in parts:
            ledger.source_failed |= part.source_failed
            self.parts_failed |= part.failed
            for target_id, reason in part.fatal.items():
                if target_id in targets:
                    self.work.fail_target(targets[target_id], reason)
            ledger.errors.extend(e for e in part.errors if e not in ledger.errors)
        run.complete = all(p.status is PartStatus.DONE for p in parts)


class PartRunner(Runner):
    """One partition of a job's read, run by a worker: its pages read, written and
    committed one by one (a retried task goes on after the entities done)."""

    # Each commit adds the statistics since the last one to the job's: a page is read and
    # transformed only once the pages before it are committed, so that what a commit adds
    # is exactly its pages' (a retried partition counts its uncommitted pages again). The
    # job's parallelism is its partitions.
    page_by_page = True

    def __init__(self, *args: Any, part: Part, parts: PartitionStore, **kwargs: Any) -> None:
        super().__init__(*args, checkpoint={part.entity_type: part.done}, **kwargs)
        self.part = part
        self.parts = parts
        self.increments = Increments()

    def _pages(self, entity_type: str, delta: str | None) -> AsyncIterator[Page]:
        return self.source.connector.read_part(entity_type, self.part.bounds)

    def _stop_requested(self) -> bool:
        """The job was asked to stop, or ended (its runner's worker died: the job that
        continues it reads again)."""
        return not self.parts.going(self.job.id)

    def commit(self, fields: Mapping[str, Any], status: JobStatus | None = None) -> None:
        """A page: entity logs, statistics added to the job's, the entities done."""
        ledger = self.ledger
        assert self.increments is not None
        self.parts.commit(
            self.part,
            ledger.take_logs(),
            self.increments.since(ledger.counts),
            done=ledger.checkpoint.get(self.part.entity_type, 0),
            failed=ledger.failed,
        )

    async def run(self) -> JobStatus:
        raise NotImplementedError("a partition runs with run_part")

    async def run_part(self) -> PartStatus:
        """Read the partition to its end (or until the job stops); what it found is stored
        with its status, which is returned."""
        ledger, entity_type = self.ledger, self.part.entity_type
        run = ledger.runs[entity_type] = TypeRun(ReadMode.FULL, None)
        status = PartStatus.FAILED
        try:
            await self._sync(entity_type, run)
            if ledger.stopped:
                status = PartStatus.STOPPED
            elif run.complete:
                status = PartStatus.DONE
        except asyncio.CancelledError:
            self.interrupted = True  # the worker stops: the task is retried
            raise
        except Exception as exc:  # a bug or a storage failure: the partition fails
            ledger.errors.append(f"The job stopped on {unexpected(exc, self.job.id)}.")
            ledger.source_failed = True
        finally:
            await self._close()
            if not self.interrupted:
                await asyncio.to_thread(self._end, status, run)
        return status

    def _end(self, status: PartStatus, run: TypeRun) -> None:
        ledger = self.ledger
        try:
            self.commit({})  # what the last page's commit did not take (a close's failures)
        except Exception as exc:  # its logs and counts are lost: the read is not whole
            ledger.errors.append(
                "The job could not store a partition's last results: "
                f"{unexpected(exc, self.job.id)}."
            )
            ledger.source_failed = True
            status = PartStatus.FAILED
        self.parts.end(
            replace(
                self.part,
                status=status,
                read=run.read,
                newest=run.newest,
                source_failed=ledger.source_failed,
                failed=ledger.failed,
                fatal=dict(ledger.fatal),
                errors=list(ledger.errors),
            )
        )
