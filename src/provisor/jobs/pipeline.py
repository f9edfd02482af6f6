"""The job pipeline's public face: entities of a source provisioned into its targets, or
deprovisioned from them, the way a job does it (spec §3.1, §3.2, §3.5).

A :class:`Pipeline` works for one run (a :class:`~provisor.jobs.ledger.Run`). A job's
runner (runner.py) feeds it the pages it reads with :meth:`Pipeline.read` and
:meth:`Pipeline.write`, and deletes what a full read no longer found; a real-time push
(realtime/service.py) opens one with :meth:`Pipeline.open` for one entity and calls
:meth:`Pipeline.provision` or :meth:`Pipeline.deprovision`, which answer with what happened
in each system (:class:`Outcome`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provisor import tracing
from provisor.connectors.base import MAX_ID_LENGTH, ConnectorError, excerpt, storable_id
from provisor.context import Context
from provisor.jobs.coverage import Coverage
from provisor.jobs.deleting import Deleting
from provisor.jobs.ledger import Run, RunSpec, handling
from provisor.jobs.model import Action, JobType, Trigger
from provisor.jobs.plan import Item, Participant, digest, name_of
from provisor.jobs.ports import OperationalData, Settled
from provisor.jobs.writing import Writing
from provisor.metrics import instruments as metrics
from provisor.transform import Failed, Operation, Skipped, Transformed


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

    async def write(self, entity_type: str, items: list[Item]) -> None:
        """Items into every target that takes their type and has not failed, at once."""
        run = self.run
        await asyncio.gather(
            *(
                self.writing.write_page(target, entity_type, items)
                for target in run.targets
                if run.fatal(target) is None and target.handles(entity_type)
            )
        )


def _label(raw: Any) -> str:
    if isinstance(raw, dict):
        for key in ("id", "userName", "displayName", "dn"):
            value = raw.get(key)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, str | int):
                return excerpt(str(value), 200)  # no NUL or line breaks in a log's id
    return "(unknown)"
